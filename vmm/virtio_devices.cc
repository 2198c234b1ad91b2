#include "vmm/virtio_devices.h"

#include <memory>
#include <string>
#include <utility>

#include "base/status_macros.h"
#include "devices/virtio/block/virtio_block.h"
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
  if (config.vsock) RETURN_IF_ERROR(AddVsock(*config.vsock, devices));
  return absl::OkStatus();
}

}  // namespace vmm
