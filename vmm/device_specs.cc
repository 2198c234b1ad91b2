#include "vmm/device_specs.h"

#include <sys/un.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"

namespace vmm::cli {
namespace {

// VIRTIO_BLK_ID_BYTES: the GET_ID answer is at most this long.
constexpr size_t kMaxSerialBytes = 20;

absl::Status ApplyDisk(absl::string_view value, VmConfig& config) {
  ASSIGN_OR_RETURN(DiskConfig disk, ParseDiskSpec(value));
  config.disks.push_back(std::move(disk));
  return absl::OkStatus();
}

absl::Status ApplyVsock(absl::string_view value, VmConfig& config) {
  ASSIGN_OR_RETURN(config.vsock, ParseVsockSpec(value));
  return absl::OkStatus();
}

// The registry: one line per device kind.
constexpr DeviceOption kDeviceOptions[] = {
    {"disk", "SPEC",
     "Add a virtio-blk disk (repeatable): path=IMG[,readonly=on][,serial=STR]"
     "[,transport=pci|mmio][,direct=on]. Default transport pci.",
     true, ApplyDisk},
    {"vsock", "SPEC",
     "Add a virtio-vsock device bridged to Unix sockets (Firecracker's protocol): "
     "cid=N,socket=PATH[,transport=pci|mmio].",
     false, ApplyVsock},
};

}  // namespace

absl::Span<const DeviceOption> DeviceOptions() { return kDeviceOptions; }

const DeviceOption* FindDeviceOption(absl::string_view flag) {
  for (const DeviceOption& option : kDeviceOptions) {
    if (option.flag == flag) return &option;
  }
  return nullptr;
}

absl::StatusOr<bool> ParseOnOff(absl::string_view key, absl::string_view value) {
  if (value == "on" || value == "true" || value == "yes" || value == "1") return true;
  if (value == "off" || value == "false" || value == "no" || value == "0") return false;
  return absl::InvalidArgumentError(
      absl::StrCat("'", key, "=", value, "': expected on or off"));
}

absl::StatusOr<SpecPairs> SplitSpec(absl::string_view spec) {
  SpecPairs pairs;
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

absl::StatusOr<VirtioTransport> ParseTransport(absl::string_view value) {
  if (value == "pci") return VirtioTransport::kPci;
  if (value == "mmio") return VirtioTransport::kMmio;
  return absl::InvalidArgumentError(absl::StrCat("'transport=", value, "': expected pci or mmio"));
}

absl::StatusOr<DiskConfig> ParseDiskSpec(absl::string_view spec) {
  ASSIGN_OR_RETURN(const SpecPairs pairs, SplitSpec(spec));
  DiskConfig disk;
  bool have_path = false;
  for (const auto& [key, value] : pairs) {
    if (key == "path") {
      if (value.empty()) return absl::InvalidArgumentError("'path=' needs an image file");
      disk.path = value;
      have_path = true;
    } else if (key == "readonly") {
      ASSIGN_OR_RETURN(disk.read_only, ParseOnOff(key, value));
    } else if (key == "direct") {
      ASSIGN_OR_RETURN(disk.direct, ParseOnOff(key, value));
    } else if (key == "serial") {
      if (value.size() > kMaxSerialBytes) {
        return absl::InvalidArgumentError(
            absl::StrCat("'serial=", value, "' is longer than ", kMaxSerialBytes, " bytes"));
      }
      disk.serial = value;
    } else if (key == "transport") {
      ASSIGN_OR_RETURN(disk.transport, ParseTransport(value));
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown key '", key, "' (expected path, readonly, serial, transport, direct)"));
    }
  }
  if (!have_path) return absl::InvalidArgumentError("path=IMAGE is required");
  return disk;
}

absl::StatusOr<VsockConfig> ParseVsockSpec(absl::string_view spec) {
  ASSIGN_OR_RETURN(const SpecPairs pairs, SplitSpec(spec));
  VsockConfig vsock;
  bool have_cid = false;
  for (const auto& [key, value] : pairs) {
    if (key == "cid") {
      uint64_t cid = 0;
      if (!absl::SimpleAtoi(value, &cid) || cid < 3 || cid > UINT32_MAX) {
        return absl::InvalidArgumentError(absl::StrCat(
            "'cid=", value, "': expected a number from 3 to 4294967295 (0-2 are reserved)"));
      }
      vsock.guest_cid = cid;
      have_cid = true;
    } else if (key == "socket") {
      // Guest connections to host port P go to PATH_P: leave room for "_4294967295".
      constexpr size_t kMaxPath = sizeof(sockaddr_un{}.sun_path) - 1 - 11;
      if (value.empty()) return absl::InvalidArgumentError("'socket=' needs a path");
      if (value.size() > kMaxPath) {
        return absl::InvalidArgumentError(absl::StrCat(
            "'socket=", value, "' is longer than ", kMaxPath,
            " bytes (a Unix socket path, with room for _<port>)"));
      }
      vsock.socket_path = value;
    } else if (key == "transport") {
      ASSIGN_OR_RETURN(vsock.transport, ParseTransport(value));
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown key '", key, "' (expected cid, socket, transport)"));
    }
  }
  if (!have_cid) return absl::InvalidArgumentError("cid=N is required");
  if (vsock.socket_path.empty()) return absl::InvalidArgumentError("socket=PATH is required");
  return vsock;
}

}  // namespace vmm::cli
