// virtio-fs (virtio 1.x, 5.11; device type 26): a host directory the guest
// mounts (`mount -t virtiofs TAG /mnt`), served by a vhost-user back-end —
// virtiofsd — that vmm talks to over `socket`. The FUSE requests travel
// between the guest and virtiofsd through shared guest RAM; vmm keeps the
// transport and the config space (tag, request queues), built here, as the
// back-end does not provide one.
#ifndef VMM_DEVICES_VIRTIO_FS_FS_CONFIG_H_
#define VMM_DEVICES_VIRTIO_FS_FS_CONFIG_H_

#include <cstdint>
#include <string>

#include "devices/virtio/device_spec.h"

namespace vmm {

inline constexpr uint32_t kVirtioFsDeviceType = 26;  // VIRTIO_ID_FS
// The tag is at most 36 bytes (the config field), not NUL-terminated when full.
inline constexpr size_t kVirtioFsTagBytes = 36;
inline constexpr int kVirtioFsMaxRequestQueues = 16;

struct FsConfig : VirtioDeviceConfig {
  const VirtioDeviceSpec& spec() const override;
  bool needs_shared_memory() const override { return true; }

  std::string tag;          // what the guest mounts
  std::string socket_path;  // where virtiofsd listens
  int request_queues = 1;   // besides the high-priority queue
  int reconnect_seconds = 0;  // retry a virtiofsd that went away (0: off)
  bool operator==(const FsConfig&) const = default;
};

const VirtioDeviceSpec& VirtioFsSpec();

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_FS_FS_CONFIG_H_
