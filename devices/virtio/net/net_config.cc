#include "devices/virtio/net/net_config.h"

#include <net/if.h>
#include <sys/random.h>
#include <unistd.h>

#include <array>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "devices/virtio/net/tap.h"
#include "devices/virtio/net/virtio_net.h"

namespace vmm {
namespace {

using Spec = DeviceSpecOf<NetConfig>;

// Linux interface names: IFNAMSIZ - 1 bytes at most.
constexpr size_t kMaxTapNameBytes = IFNAMSIZ - 1;

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

// 52:54:00 (locally administered, the prefix QEMU and others use) and three
// random octets.
std::array<uint8_t, 6> RandomMac() {
  std::array<uint8_t, 6> mac = {0x52, 0x54, 0x00, 0, 0, 0};
  if (::getrandom(&mac[3], 3, 0) != 3) {
    const pid_t pid = ::getpid();
    mac[3] = static_cast<uint8_t>(pid >> 16);
    mac[4] = static_cast<uint8_t>(pid >> 8);
    mac[5] = static_cast<uint8_t>(pid);
  }
  return mac;
}

absl::StatusOr<std::shared_ptr<VirtioDevice>> CreateNet(const NetConfig& net,
                                                        VirtioDeviceHost& host) {
  absl::StatusOr<std::unique_ptr<Tap>> tap;
  if (net.tap_fd >= 0) {
    tap = Tap::Adopt(net.tap_fd);
  } else {
    bool created = false;
    tap = Tap::Open(net.tap, net.queue_pairs, &created);
    if (tap.ok() && created) {
      host.Notice(absl::StrCat("created tap ", net.tap,
                               "; it is down until configured (ip link set ", net.tap, " up)"));
    }
  }
  if (!tap.ok()) return tap.status();
  std::vector<VhostKernel> vhost;
  if (net.vhost) {
    for (int p = 0; p < (*tap)->queue_count(); ++p) {
      absl::StatusOr<VhostKernel> v = VhostKernel::Open(VhostKernel::Kind::kNet);
      if (!v.ok()) return absl::Status(v.status().code(), absl::StrCat("vhost=on: ", v.status().message()));
      vhost.push_back(*std::move(v));
    }
  }
  return std::make_shared<VirtioNet>(*std::move(tap), net.mac.value_or(RandomMac()),
                                     &host.loop(), std::move(vhost));
}

}  // namespace

const VirtioDeviceSpec& VirtioNetSpec() {
  static const Spec spec(Spec::Definition{
      .name = "virtio-net",
      .flag = "net",
      .summary = "a network card on a host tap interface",
      .repeatable = true,
      .keys =
          {
              {{"tap", "NAME", "",
                "the tap interface (created when missing and vmm may; down until set up)"},
               [](absl::string_view value, NetConfig& net) {
                 if (value.empty() || value.size() > kMaxTapNameBytes || value == "." ||
                     value == ".." || value.find_first_of("/: \t\n") != std::string::npos) {
                   return absl::InvalidArgumentError(absl::StrCat(
                       "'tap=", value, "': not an interface name (1 to ", kMaxTapNameBytes,
                       " characters, no '/', ':' or spaces)"));
                 }
                 net.tap = std::string(value);
                 return absl::OkStatus();
               }},
              {{"fd", "N", "", "an open tap file descriptor handed to vmm (one queue)"},
               [](absl::string_view value, NetConfig& net) {
                 int fd = -1;
                 if (!absl::SimpleAtoi(value, &fd) || fd < 0) {
                   return absl::InvalidArgumentError(absl::StrCat(
                       "'fd=", value, "': expected an open file descriptor number"));
                 }
                 net.tap_fd = fd;
                 return absl::OkStatus();
               }},
              {{"mac", "xx:xx:xx:xx:xx:xx", "52:54:00 and three random octets",
                "the guest's MAC address (unicast, not zero)"},
               [](absl::string_view value, NetConfig& net) {
                 absl::StatusOr<std::array<uint8_t, 6>> mac = ParseMac(value);
                 if (mac.ok()) net.mac = *mac;
                 return mac.status();
               }},
              {{"queues", absl::StrCat("1..", VirtioNet::kMaxQueuePairs), "1",
                "queue pairs (multiqueue: one tap queue and two virtqueues each)"},
               [](absl::string_view value, NetConfig& net) {
                 int queues = 0;
                 if (!absl::SimpleAtoi(value, &queues) || queues < 1 ||
                     queues > VirtioNet::kMaxQueuePairs) {
                   return absl::InvalidArgumentError(
                       absl::StrCat("'queues=", value, "': expected 1 to ",
                                    VirtioNet::kMaxQueuePairs, " queue pairs"));
                 }
                 net.queue_pairs = queues;
                 return absl::OkStatus();
               }},
              {{"vhost", "on|off", "off",
                "the data path in the host kernel (/dev/vhost-net, vhost_net.ko)"},
               [](absl::string_view value, NetConfig& net) {
                 absl::StatusOr<bool> on = ParseOnOff("vhost", value);
                 if (on.ok()) net.vhost = *on;
                 return on.status();
               }},
          },
      .exactly_one_of = {{"tap", "fd"}},
      .check =
          [](NetConfig& net) {
            if (net.tap_fd >= 0 && net.queue_pairs != 1) {
              return absl::InvalidArgumentError(
                  "'fd=' hands over one tap queue: queues must be 1 (use tap=NAME for more)");
            }
            return absl::OkStatus();
          },
      .create = CreateNet,
  });
  return spec;
}

const VirtioDeviceSpec& NetConfig::spec() const { return VirtioNetSpec(); }

}  // namespace vmm
