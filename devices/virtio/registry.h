// Every virtio device kind vmm knows, in one list: the CLI, --help,
// `--device help`, VmConfig's defaults and the device manager read it. A new
// device is its folder (config struct + spec, device_spec.h) and one line in
// registry.cc. devices/virtio/README.md walks through it with rng.
#ifndef VMM_DEVICES_VIRTIO_REGISTRY_H_
#define VMM_DEVICES_VIRTIO_REGISTRY_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "devices/virtio/device_spec.h"

namespace vmm {

// The specs in registry order: the order devices are created and given PCI
// slots and virtio-mmio slots (disks, network, console, rng, vsock).
absl::Span<const VirtioDeviceSpec* const> VirtioDeviceSpecs();
// By device name ("virtio-blk") or short flag ("disk"); nullptr if none.
const VirtioDeviceSpec* FindVirtioDeviceSpec(absl::string_view name_or_flag);
// The configs of the kinds present by default (VmConfig starts with these).
std::vector<DeviceConfig> DefaultVirtioDevices();
// `--device help`: one line per device kind.
std::string VirtioDeviceListHelp();

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_REGISTRY_H_
