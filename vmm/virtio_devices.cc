#include "vmm/virtio_devices.h"

#include <sys/random.h>
#include <unistd.h>

#include <array>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "devices/virtio/block/virtio_block.h"
#include "devices/virtio/console/virtio_console.h"
#include "devices/virtio/net/tap.h"
#include "devices/virtio/net/virtio_net.h"
#include "devices/virtio/rng/virtio_rng.h"
#include "devices/virtio/vsock/virtio_vsock.h"

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

absl::Status AddConsole(const ConsoleConfig& console, DeviceManager& devices) {
  absl::StatusOr<std::unique_ptr<ConsoleBackend>> backend;
  switch (console.mode) {
    case ConsoleConfig::Mode::kOff:
      return absl::OkStatus();
    case ConsoleConfig::Mode::kStdio:
      backend = MakeStdioConsoleBackend(devices.loop());
      break;
    case ConsoleConfig::Mode::kFile:
      backend = MakeFileConsoleBackend(console.path, devices.loop());
      break;
    case ConsoleConfig::Mode::kSocket:
      backend = MakeSocketConsoleBackend(console.path, devices.loop());
      break;
  }
  if (!backend.ok()) return backend.status();
  return devices.AddVirtioDevice(VirtioConsole::Create(std::move(*backend)), console.transport);
}

absl::Status AddRng(const RngConfig& rng, DeviceManager& devices) {
  VirtioRngOptions options;
  options.rate_limit_bytes_per_second = rng.rate_limit_bytes_per_second;
  ASSIGN_OR_RETURN(std::shared_ptr<VirtioRng> device,
                   VirtioRng::Create(std::move(options), devices.loop()));
  return devices.AddVirtioDevice(std::move(device), rng.transport);
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

absl::Status AddVsock(const VsockConfig& vsock, DeviceManager& devices) {
  VsockMuxerOptions options;
  options.guest_cid = vsock.guest_cid;
  options.socket_path = vsock.socket_path;
  // Listens on the socket now (refusing one in use); the device removes the
  // socket file when it goes.
  ASSIGN_OR_RETURN(std::shared_ptr<VirtioVsock> device,
                   VirtioVsock::Create(std::move(options), &devices.loop()));
  return devices.AddVirtioDevice(std::move(device), vsock.transport);
}

}  // namespace

absl::Status AddVirtioDevices(const VmConfig& config, DeviceManager& devices) {
  for (const DiskConfig& disk : config.disks) RETURN_IF_ERROR(AddDisk(disk, devices));
  for (const NetConfig& net : config.nets) RETURN_IF_ERROR(AddNet(net, devices));
  RETURN_IF_ERROR(AddConsole(config.console, devices));
  if (config.rng.enabled) RETURN_IF_ERROR(AddRng(config.rng, devices));
  if (config.vsock) RETURN_IF_ERROR(AddVsock(*config.vsock, devices));
  return absl::OkStatus();
}

}  // namespace vmm
