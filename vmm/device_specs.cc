#include "vmm/device_specs.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace vmm::cli {
namespace {

// VIRTIO_BLK_ID_BYTES: the GET_ID answer is at most this long.
constexpr size_t kMaxSerialBytes = 20;

absl::StatusOr<bool> ParseOnOff(absl::string_view key, absl::string_view value) {
  if (value == "on" || value == "true" || value == "yes" || value == "1") return true;
  if (value == "off" || value == "false" || value == "no" || value == "0") return false;
  return absl::InvalidArgumentError(
      absl::StrCat("'", key, "=", value, "': expected on or off"));
}

// Splits "a=1,b=2" into pairs, refusing empty keys, missing '=' and repeats.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> SplitSpec(
    absl::string_view spec) {
  std::vector<std::pair<std::string, std::string>> pairs;
  absl::flat_hash_set<std::string> seen;
  for (absl::string_view item : absl::StrSplit(spec, ',')) {
    size_t eq = item.find('=');
    if (eq == absl::string_view::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", item, "': expected key=value"));
    }
    std::string key(item.substr(0, eq));
    if (!seen.insert(key).second) {
      return absl::InvalidArgumentError(absl::StrCat("'", key, "' given twice"));
    }
    pairs.emplace_back(std::move(key), std::string(item.substr(eq + 1)));
  }
  return pairs;
}

}  // namespace

absl::StatusOr<DiskConfig> ParseDiskSpec(absl::string_view spec) {
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> pairs = SplitSpec(spec);
  if (!pairs.ok()) return pairs.status();
  DiskConfig disk;
  bool have_path = false;
  for (const auto& [key, value] : *pairs) {
    if (key == "path") {
      if (value.empty()) return absl::InvalidArgumentError("'path=' needs an image file");
      disk.path = value;
      have_path = true;
    } else if (key == "readonly") {
      absl::StatusOr<bool> on = ParseOnOff(key, value);
      if (!on.ok()) return on.status();
      disk.read_only = *on;
    } else if (key == "direct") {
      absl::StatusOr<bool> on = ParseOnOff(key, value);
      if (!on.ok()) return on.status();
      disk.direct = *on;
    } else if (key == "serial") {
      if (value.size() > kMaxSerialBytes) {
        return absl::InvalidArgumentError(
            absl::StrCat("'serial=", value, "' is longer than ", kMaxSerialBytes, " bytes"));
      }
      disk.serial = value;
    } else if (key == "transport") {
      if (value == "pci") {
        disk.transport = DiskConfig::Transport::kPci;
      } else if (value == "mmio") {
        disk.transport = DiskConfig::Transport::kMmio;
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("'transport=", value, "': expected pci or mmio"));
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown key '", key, "' (expected path, readonly, serial, transport, direct)"));
    }
  }
  if (!have_path) return absl::InvalidArgumentError("path=IMAGE is required");
  return disk;
}

}  // namespace vmm::cli
