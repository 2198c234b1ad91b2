#include "vmm/host_root/kernel_modules.h"

#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "arch/x86_64/loader/bzimage_payload.h"
#include "base/status_macros.h"

namespace vmm::host_root {
namespace {

// "kernel/fs/fuse/virtiofs.ko.xz" -> "virtiofs"; '-' and '_' are one in
// module names.
std::string ModuleName(absl::string_view path) {
  absl::string_view base = path.substr(path.rfind('/') + 1);
  base = base.substr(0, base.find(".ko"));
  return absl::StrReplaceAll(base, {{"-", "_"}});
}

absl::StatusOr<std::string> ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

absl::StatusOr<std::vector<KernelModule>> ResolveModules(const std::string& dir,
                                                         absl::Span<const std::string> wanted,
                                                         absl::Span<const std::string> optional) {
  ASSIGN_OR_RETURN(std::string dep_text, ReadText(absl::StrCat(dir, "/modules.dep")));
  // modules.builtin may be missing (a kernel with every module outside).
  const std::string builtin_text =
      ReadText(absl::StrCat(dir, "/modules.builtin")).value_or(std::string());
  std::set<std::string> builtin;
  for (absl::string_view line : absl::StrSplit(builtin_text, '\n', absl::SkipEmpty())) {
    builtin.insert(ModuleName(absl::StripAsciiWhitespace(line)));
  }
  struct Entry {
    std::string path;
    std::vector<std::string> deps;  // as listed: the last is loaded first
  };
  std::map<std::string, Entry> entries;
  for (absl::string_view line : absl::StrSplit(dep_text, '\n', absl::SkipEmpty())) {
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    Entry entry{std::string(line.substr(0, colon)), {}};
    for (absl::string_view dep :
         absl::StrSplit(line.substr(colon + 1), ' ', absl::SkipWhitespace())) {
      entry.deps.push_back(ModuleName(dep));
    }
    entries[ModuleName(entry.path)] = std::move(entry);
  }
  std::vector<KernelModule> order;
  std::set<std::string> added;
  std::function<absl::Status(const std::string&, int)> add = [&](const std::string& name,
                                                                 int depth) -> absl::Status {
    if (added.contains(name) || builtin.contains(name)) return absl::OkStatus();
    const auto it = entries.find(name);
    if (it == entries.end()) {
      return absl::NotFoundError(absl::StrCat(
          "the kernel has no ", name, " module (not built in, and not in ", dir, "/modules.dep)"));
    }
    if (depth > 64) return absl::DataLossError(absl::StrCat(dir, "/modules.dep: a cycle"));
    const std::vector<std::string>& deps = it->second.deps;
    for (auto dep = deps.rbegin(); dep != deps.rend(); ++dep) RETURN_IF_ERROR(add(*dep, depth + 1));
    added.insert(name);
    order.push_back({name, absl::StrCat(dir, "/", it->second.path)});
    return absl::OkStatus();
  };
  for (const std::string& name : wanted) RETURN_IF_ERROR(add(absl::StrReplaceAll(name, {{"-", "_"}}), 0));
  for (const std::string& name : optional) {
    const std::string n = absl::StrReplaceAll(name, {{"-", "_"}});
    if (entries.contains(n)) RETURN_IF_ERROR(add(n, 0));
  }
  return order;
}

absl::StatusOr<std::string> ReadModule(const KernelModule& module) {
  ASSIGN_OR_RETURN(std::string bytes, ReadText(module.path));
  if (absl::EndsWith(module.path, ".ko")) return bytes;
  if (absl::EndsWith(module.path, ".zst")) {
    return absl::UnimplementedError(
        absl::StrCat(module.path, ": zstd-compressed modules are not supported (xz, gzip are)"));
  }
  absl::StatusOr<std::vector<uint8_t>> plain = x86_64::DecompressPayload(
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
      uint64_t{256} << 20);
  if (!plain.ok()) return Annotate(plain.status(), module.path);
  return std::string(plain->begin(), plain->end());
}

}  // namespace vmm::host_root
