// virtio-blk's config and spec: --disk / --device virtio-blk (block_config.cc
// holds the keys, their parsing and the factory).
#ifndef VMM_DEVICES_VIRTIO_BLOCK_BLOCK_CONFIG_H_
#define VMM_DEVICES_VIRTIO_BLOCK_BLOCK_CONFIG_H_

#include <optional>
#include <string>

#include "devices/virtio/device_spec.h"

namespace vmm {

// What virtio-blk itself needs to open a disk (VirtioBlock::Open).
struct VirtioBlockOptions {
  std::string path;     // raw image file or block device
  bool read_only = false;
  std::string serial;   // VIRTIO_BLK_T_GET_ID answer, at most VIRTIO_BLK_ID_BYTES (20)
  bool direct = false;  // O_DIRECT: bypass the host page cache (blk_size 4096)
  // The polling window's maximum in µs (0: never poll); unset:
  // QueuePoller::DefaultMax().
  std::optional<int> poll_us;
  bool operator==(const VirtioBlockOptions&) const = default;
};

// One virtio-blk disk: the device's options and where it is attached. With
// `vhost_user` (instead of a path) the disk is another program's — a
// vhost-user-blk back-end listening on that socket, such as
// `qemu-storage-daemon --export type=vhost-user-blk` — and guest RAM is
// shared with it (memfd).
struct DiskConfig : VirtioDeviceConfig, VirtioBlockOptions {
  const VirtioDeviceSpec& spec() const override;
  bool needs_shared_memory() const override { return !vhost_user.empty(); }
  std::string vhost_user;
  int reconnect_seconds = 0;  // vhost_user: retry a back-end that went away
  bool operator==(const DiskConfig&) const = default;
};

const VirtioDeviceSpec& VirtioBlockSpec();

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_BLOCK_BLOCK_CONFIG_H_
