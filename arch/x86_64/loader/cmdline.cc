#include "arch/x86_64/loader/cmdline.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "arch/x86_64/layout.h"
#include "base/status_macros.h"

namespace vmm::x86_64 {

namespace {

absl::string_view ParameterName(absl::string_view token) {
  return token.substr(0, token.find('='));
}

// Whether the kernel's part of `cmdline` (before a lone "--", which starts
// init's arguments) has parameter `name`. Quoted values are rare enough on
// these lines to be taken token by token.
bool HasParameter(absl::string_view cmdline, absl::string_view name) {
  for (absl::string_view token : absl::StrSplit(cmdline, absl::ByAnyChar(" \t\n"), absl::SkipEmpty())) {
    if (token == "--") return false;
    if (ParameterName(token) == name) return true;
  }
  return false;
}

}  // namespace

std::string WithPvmLinuxSwitches(absl::string_view cmdline, std::string* added) {
  std::string kernel_part(cmdline);
  std::string init_part;
  // Kernel parameters must come before a "--".
  for (size_t at = 0; (at = kernel_part.find("--", at)) != std::string::npos; at += 2) {
    const bool starts = at == 0 || kernel_part[at - 1] == ' ';
    const bool ends = at + 2 == kernel_part.size() || kernel_part[at + 2] == ' ';
    if (starts && ends) {
      init_part = kernel_part.substr(at);
      kernel_part.resize(at);
      while (!kernel_part.empty() && kernel_part.back() == ' ') kernel_part.pop_back();
      break;
    }
  }
  added->clear();
  for (absl::string_view sw : kPvmLinuxSwitches) {
    if (HasParameter(kernel_part, ParameterName(sw))) continue;
    absl::StrAppend(&kernel_part, kernel_part.empty() ? "" : " ", sw);
    absl::StrAppend(added, added->empty() ? "" : " ", sw);
  }
  if (!init_part.empty()) absl::StrAppend(&kernel_part, " ", init_part);
  return kernel_part;
}

uint64_t CmdlineCapacity(const LoadedKernel& kernel) {
  if (!kernel.bzimage_header) return kCmdlineMaxSize;
  // cmdline_size (protocol 2.06+) excludes the NUL.
  return std::min<uint64_t>(uint64_t{kernel.bzimage_header->cmdline_size} + 1, kCmdlineMaxSize);
}

absl::StatusOr<GuestCmdline> WriteCmdline(const GuestMemory& mem, const LoadedKernel& kernel,
                                          absl::string_view cmdline) {
  if (cmdline.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("kernel command line contains a NUL byte");
  }
  const uint64_t capacity = CmdlineCapacity(kernel);
  const uint64_t size = cmdline.size() + 1;
  if (size > capacity) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "kernel command line is %d bytes; the kernel accepts at most %d", cmdline.size(),
        capacity - 1));
  }
  const GuestAddress addr(kCmdlineStart);
  ASSIGN_OR_RETURN(absl::Span<uint8_t> dst, mem.Slice(addr, size));
  std::copy(cmdline.begin(), cmdline.end(), dst.begin());
  dst[cmdline.size()] = 0;
  return GuestCmdline{addr, size};
}

}  // namespace vmm::x86_64
