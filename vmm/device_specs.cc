#include "vmm/device_specs.h"

#include <sys/un.h>

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"

namespace vmm::cli {
namespace {

// VIRTIO_BLK_ID_BYTES: the GET_ID answer is at most this long.
constexpr size_t kMaxSerialBytes = 20;
// VirtioRng::kMaxRate: a higher limit would be no limit at all.
constexpr uint64_t kMaxRngRate = 1'000'000'000;
// IFNAMSIZ - 1.
constexpr size_t kMaxTapNameBytes = 15;
// Queue pairs of one virtio-net device: each is a tap queue, two virtqueues
// with their ioeventfds and interrupt vectors.
constexpr int kMaxNetQueuePairs = 16;

// "52:54:00:12:34:56": six hex octets; a multicast or all-zero address is
// refused (it cannot be a station's address).
absl::StatusOr<std::array<uint8_t, 6>> ParseMac(absl::string_view value) {
  std::array<uint8_t, 6> mac{};
  std::vector<absl::string_view> parts = absl::StrSplit(value, ':');
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("'mac=", value, "': ", why));
  };
  if (parts.size() != 6) return bad("expected six hex octets like 52:54:00:12:34:56");
  for (size_t i = 0; i < 6; ++i) {
    int octet = 0;
    if (parts[i].size() != 2 || !absl::ascii_isxdigit(parts[i][0]) ||
        !absl::ascii_isxdigit(parts[i][1]) || !absl::SimpleHexAtoi(parts[i], &octet)) {
      return bad("expected six hex octets like 52:54:00:12:34:56");
    }
    mac[i] = static_cast<uint8_t>(octet);
  }
  if (mac[0] & 1) return bad("a multicast address (first octet odd)");
  if (mac == std::array<uint8_t, 6>{}) return bad("all zero");
  return mac;
}

absl::Status ApplyDisk(absl::string_view value, VmConfig& config) {
  ASSIGN_OR_RETURN(DiskConfig disk, ParseDiskSpec(value));
  config.disks.push_back(std::move(disk));
  return absl::OkStatus();
}

absl::Status ApplyConsole(absl::string_view value, VmConfig& config) {
  ASSIGN_OR_RETURN(config.console, ParseConsoleSpec(value));
  return absl::OkStatus();
}

absl::Status ApplyRng(absl::string_view value, VmConfig& config) {
  ASSIGN_OR_RETURN(config.rng, ParseRngSpec(value));
  return absl::OkStatus();
}

absl::Status ApplyNet(absl::string_view value, VmConfig& config) {
  ASSIGN_OR_RETURN(NetConfig net, ParseNetSpec(value));
  config.nets.push_back(std::move(net));
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
    {"net", "SPEC",
     "Add a virtio-net device on a tap (repeatable): tap=NAME or fd=N (an open tap)"
     "[,mac=52:54:00:xx:xx:xx][,queues=N][,transport=pci|mmio]. Default transport pci.",
     true, ApplyNet},
    {"console", "SPEC",
     "The virtio console (hvc0): stdio|file=PATH|socket=PATH|off[,transport=pci|mmio]. "
     "file= appends; socket= listens on a Unix socket, one client at a time. With stdio "
     "the console owns stdin and COM1 gets no input. Default off.",
     false, ApplyConsole},
    {"rng", "SPEC",
     "The virtio-rng device, filled from getrandom(): on|off|[rate=BYTES_PER_SEC]"
     "[,transport=pci|mmio]. Default on, no rate limit.",
     false, ApplyRng},
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

absl::StatusOr<ConsoleConfig> ParseConsoleSpec(absl::string_view spec) {
  ConsoleConfig console;
  // The mode comes first, as a word (stdio, off) or a key (file=, socket=).
  const size_t comma = spec.find(',');
  const absl::string_view mode = spec.substr(0, comma);
  SpecPairs pairs;
  if (comma != absl::string_view::npos) {
    ASSIGN_OR_RETURN(pairs, SplitSpec(spec.substr(comma + 1)));
  }
  if (mode == "stdio") {
    console.mode = ConsoleConfig::Mode::kStdio;
  } else if (mode == "off") {
    console.mode = ConsoleConfig::Mode::kOff;
  } else if (absl::StartsWith(mode, "file=") || absl::StartsWith(mode, "socket=")) {
    const bool file = absl::StartsWith(mode, "file=");
    console.mode = file ? ConsoleConfig::Mode::kFile : ConsoleConfig::Mode::kSocket;
    console.path = std::string(mode.substr(mode.find('=') + 1));
    if (console.path.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", file ? "file" : "socket", "=' needs a path"));
    }
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("'", mode, "': expected stdio, file=PATH, socket=PATH or off"));
  }
  for (const auto& [key, value] : pairs) {
    if (key == "transport") {
      ASSIGN_OR_RETURN(console.transport, ParseTransport(value));
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown key '", key, "' (expected transport)"));
    }
  }
  return console;
}

absl::StatusOr<RngConfig> ParseRngSpec(absl::string_view spec) {
  RngConfig rng;
  if (spec == "on") return rng;
  if (spec == "off") {
    rng.enabled = false;
    return rng;
  }
  ASSIGN_OR_RETURN(const SpecPairs pairs, SplitSpec(spec));
  for (const auto& [key, value] : pairs) {
    if (key == "rate") {
      if (!absl::SimpleAtoi(value, &rng.rate_limit_bytes_per_second) ||
          rng.rate_limit_bytes_per_second == 0 ||
          rng.rate_limit_bytes_per_second > kMaxRngRate) {
        return absl::InvalidArgumentError(absl::StrCat(
            "'rate=", value, "': expected bytes per second, 1 to ", kMaxRngRate));
      }
    } else if (key == "transport") {
      ASSIGN_OR_RETURN(rng.transport, ParseTransport(value));
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown key '", key, "' (expected on, off, rate, transport)"));
    }
  }
  return rng;
}

absl::StatusOr<NetConfig> ParseNetSpec(absl::string_view spec) {
  ASSIGN_OR_RETURN(const SpecPairs pairs, SplitSpec(spec));
  NetConfig net;
  bool have_fd = false;
  bool have_queues = false;
  for (const auto& [key, value] : pairs) {
    if (key == "tap") {
      // Linux interface names: 1..15 bytes, no '/', ':' or white space.
      if (value.empty() || value.size() > kMaxTapNameBytes || value == "." || value == ".." ||
          value.find_first_of("/: \t\n") != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat(
            "'tap=", value, "': not an interface name (1 to ", kMaxTapNameBytes,
            " characters, no '/', ':' or spaces)"));
      }
      net.tap = value;
    } else if (key == "fd") {
      int fd = -1;
      if (!absl::SimpleAtoi(value, &fd) || fd < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("'fd=", value, "': expected an open file descriptor number"));
      }
      net.tap_fd = fd;
      have_fd = true;
    } else if (key == "mac") {
      ASSIGN_OR_RETURN(net.mac, ParseMac(value));
    } else if (key == "queues") {
      int queues = 0;
      if (!absl::SimpleAtoi(value, &queues) || queues < 1 || queues > kMaxNetQueuePairs) {
        return absl::InvalidArgumentError(absl::StrCat("'queues=", value, "': expected 1 to ",
                                                       kMaxNetQueuePairs, " queue pairs"));
      }
      net.queue_pairs = queues;
      have_queues = true;
    } else if (key == "transport") {
      ASSIGN_OR_RETURN(net.transport, ParseTransport(value));
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown key '", key, "' (expected tap, fd, mac, queues, transport)"));
    }
  }
  if (net.tap.empty() == !have_fd) {
    return absl::InvalidArgumentError("give exactly one of tap=NAME and fd=N");
  }
  if (have_fd && have_queues && net.queue_pairs != 1) {
    return absl::InvalidArgumentError(
        "'fd=' hands over one tap queue: queues must be 1 (use tap=NAME for more)");
  }
  return net;
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
