// virtio-net's config and spec: --net / --device virtio-net.
#ifndef VMM_DEVICES_VIRTIO_NET_NET_CONFIG_H_
#define VMM_DEVICES_VIRTIO_NET_NET_CONFIG_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "devices/virtio/device_spec.h"

namespace vmm {

// One virtio-net device on a host tap interface.
struct NetConfig : VirtioDeviceConfig {
  const VirtioDeviceSpec& spec() const override;

  // Either the name of a tap interface (opened, or created if it does not
  // exist and the process may), or an open tap file descriptor handed over by
  // the caller (an orchestrator's way). Exactly one of the two is set. vmm
  // duplicates `tap_fd`; the caller keeps (and closes) its own.
  std::string tap;
  int tap_fd = -1;
  // The guest's MAC address; nullopt: a locally administered address chosen
  // by vmm.
  std::optional<std::array<uint8_t, 6>> mac;
  // Queue pairs (one per tap queue, IFF_MULTI_QUEUE when more than one).
  int queue_pairs = 1;
  // The data path in the host kernel: one /dev/vhost-net per queue pair.
  bool vhost = false;
  bool operator==(const NetConfig&) const = default;
};

const VirtioDeviceSpec& VirtioNetSpec();

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_NET_NET_CONFIG_H_
