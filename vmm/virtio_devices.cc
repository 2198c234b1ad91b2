#include "vmm/virtio_devices.h"

#include <sys/random.h>
#include <unistd.h>

#include <array>
#include <memory>
#include <string>
#include <utility>

#include "base/status_macros.h"
#include "absl/strings/str_cat.h"
#include "devices/virtio/block/virtio_block.h"
#include "devices/virtio/net/tap.h"
#include "devices/virtio/net/virtio_net.h"

namespace vmm {
namespace {

absl::Status AddDisk(const DiskConfig& disk, DeviceManager& devices) {
  VirtioBlockOptions options;
  options.path = disk.path;
  options.read_only = disk.read_only;
  options.serial = disk.serial;
  options.direct = disk.direct;
  std::string warning;
  ASSIGN_OR_RETURN(std::unique_ptr<VirtioBlock> block, VirtioBlock::Open(options, &warning));
  if (!warning.empty()) devices.Notice(warning);
  return devices.AddVirtioDevice(std::move(block), disk.transport);
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

absl::Status AddNet(const NetConfig& net, DeviceManager& devices) {
  std::unique_ptr<Tap> tap;
  if (net.tap_fd >= 0) {
    ASSIGN_OR_RETURN(tap, Tap::Adopt(net.tap_fd));
  } else {
    bool created = false;
    ASSIGN_OR_RETURN(tap, Tap::Open(net.tap, net.queue_pairs, &created));
    if (created) {
      devices.Notice(absl::StrCat("created tap ", net.tap, "; it is down until configured (ip link set ",
                                  net.tap, " up)"));
    }
  }
  auto device = std::make_shared<VirtioNet>(std::move(tap), net.mac.value_or(RandomMac()),
                                            &devices.loop());
  return devices.AddVirtioDevice(std::move(device), net.transport);
}

}  // namespace

absl::Status AddVirtioDevices(const VmConfig& config, DeviceManager& devices) {
  for (const DiskConfig& disk : config.disks) RETURN_IF_ERROR(AddDisk(disk, devices));
  for (const NetConfig& net : config.nets) RETURN_IF_ERROR(AddNet(net, devices));
  return absl::OkStatus();
}

}  // namespace vmm
