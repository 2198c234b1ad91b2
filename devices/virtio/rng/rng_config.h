// virtio-rng's config and spec: --rng / --device virtio-rng.
#ifndef VMM_DEVICES_VIRTIO_RNG_RNG_CONFIG_H_
#define VMM_DEVICES_VIRTIO_RNG_RNG_CONFIG_H_

#include <cstdint>

#include "devices/virtio/device_spec.h"

namespace vmm {

// The virtio-rng device, filled from getrandom(). Present by default.
struct RngConfig : VirtioDeviceConfig {
  const VirtioDeviceSpec& spec() const override;

  bool enabled = true;  // off: no device
  // At most this many bytes per second to the guest; 0: no limit.
  uint64_t rate_limit_bytes_per_second = 0;
  bool operator==(const RngConfig&) const = default;
};

const VirtioDeviceSpec& VirtioRngSpec();

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_RNG_RNG_CONFIG_H_
