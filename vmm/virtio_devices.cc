#include "vmm/virtio_devices.h"

#include <memory>
#include <string>
#include <utility>

#include "base/status_macros.h"
#include "devices/virtio/block/virtio_block.h"
#include "devices/virtio/console/virtio_console.h"
#include "devices/virtio/rng/virtio_rng.h"

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

}  // namespace

absl::Status AddVirtioDevices(const VmConfig& config, DeviceManager& devices) {
  for (const DiskConfig& disk : config.disks) RETURN_IF_ERROR(AddDisk(disk, devices));
  RETURN_IF_ERROR(AddConsole(config.console, devices));
  if (config.rng.enabled) RETURN_IF_ERROR(AddRng(config.rng, devices));
  return absl::OkStatus();
}

}  // namespace vmm
