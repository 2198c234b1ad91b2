// virtio-vsock's config and spec: --vsock / --device virtio-vsock.
#ifndef VMM_DEVICES_VIRTIO_VSOCK_VSOCK_CONFIG_H_
#define VMM_DEVICES_VIRTIO_VSOCK_VSOCK_CONFIG_H_

#include <cstdint>
#include <string>

#include "devices/virtio/device_spec.h"

namespace vmm {

// The virtio-vsock device. Bridged to Unix sockets as Firecracker does (the
// default): a host program connects to `socket_path` and writes
// "CONNECT <port>\n" to reach a guest listener on <port>; a guest connection
// to host port P goes to the Unix socket "<socket_path>_P". Or, with
// `vhost`, in the host kernel: host AF_VSOCK sockets reach the guest at
// `guest_cid` (vhost_vsock.h); no socket path.
struct VsockConfig : VirtioDeviceConfig {
  const VirtioDeviceSpec& spec() const override;

  uint64_t guest_cid = 3;  // 3 or more (0-2 are reserved), at most 2^32 - 1
  std::string socket_path;
  bool vhost = false;
  bool operator==(const VsockConfig&) const = default;
};

const VirtioDeviceSpec& VirtioVsockSpec();

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_VSOCK_VSOCK_CONFIG_H_
