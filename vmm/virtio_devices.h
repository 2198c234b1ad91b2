// Which virtio devices a VM gets: the registry that turns a VmConfig's device
// entries into device models behind their transports. A new device kind is
// one .h/.cc pair under devices/virtio/<kind>/, a parser line in
// device_specs.cc, and one registration block in virtio_devices.cc.
#ifndef VMM_VMM_VIRTIO_DEVICES_H_
#define VMM_VMM_VIRTIO_DEVICES_H_

#include "absl/status/status.h"
#include "vmm/device_manager.h"
#include "vmm/vmm.h"

namespace vmm {

// Creates every virtio device `config` asks for, in a fixed order (disks,
// network, console, rng, vsock), and adds each to `devices`. Errors name the
// device and what was wrong with it (a missing image, a tap that cannot be
// opened, ...).
absl::Status AddVirtioDevices(const VmConfig& config, DeviceManager& devices);

}  // namespace vmm

#endif  // VMM_VMM_VIRTIO_DEVICES_H_
