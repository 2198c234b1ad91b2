#include "vmm/virtio_devices.h"

#include <memory>
#include <string>
#include <utility>

#include "base/status_macros.h"
#include "devices/virtio/block/virtio_block.h"

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

}  // namespace

absl::Status AddVirtioDevices(const VmConfig& config, DeviceManager& devices) {
  for (const DiskConfig& disk : config.disks) RETURN_IF_ERROR(AddDisk(disk, devices));
  return absl::OkStatus();
}

}  // namespace vmm
