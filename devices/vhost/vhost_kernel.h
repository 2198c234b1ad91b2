// A virtio device's data path in the host kernel (vhost: /dev/vhost-net,
// /dev/vhost-vsock), driven through the ioctls of linux/vhost.h. The kernel
// worker reads and writes the rings and buffers in vmm's own address space
// (user addresses, so guest RAM need not be shared memory), is kicked through
// the queue's eventfd and signals its call eventfd: wired to KVM's ioeventfd
// and irqfd, no guest notification passes through vmm.
//
// Not thread-safe: the device calls it under its lock.
#ifndef VMM_DEVICES_VHOST_VHOST_KERNEL_H_
#define VMM_DEVICES_VHOST_VHOST_KERNEL_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/guest_memory.h"
#include "base/unique_fd.h"
#include "absl/types/span.h"
#include "devices/virtio/virtio_device.h"
#include "devices/virtio/virtqueue.h"

namespace vmm {

class VhostKernel {
 public:
  enum class Kind { kNet, kVsock };
  // Opens the kind's device node (/dev/vhost-net, /dev/vhost-vsock; `path`
  // overrides it) and takes ownership (VHOST_SET_OWNER). A missing node is
  // a one-line error naming the module to load.
  static absl::StatusOr<VhostKernel> Open(Kind kind, const std::string& path = "");

  absl::StatusOr<uint64_t> GetFeatures();
  absl::Status SetFeatures(uint64_t features);
  // Every region of `memory`, by its address in this process.
  absl::Status SetMemTable(const GuestMemory& memory);
  // A queue's ring: its size, where its parts are (translated through
  // `memory`), and the avail index to start from.
  absl::Status SetVring(uint32_t index, const VirtqueueConfig& config, const GuestMemory& memory,
                        uint16_t avail_base);
  // Stops the ring; returns the avail index the kernel reached.
  absl::StatusOr<uint16_t> GetVringBase(uint32_t index);
  // fd < 0 unbinds.
  absl::Status SetVringKick(uint32_t index, int fd);
  absl::Status SetVringCall(uint32_t index, int fd);

  // What a device's activation does with it: ring i runs virtqueue
  // queues[i] of `active` (its size, addresses, avail index 0, kick and call
  // eventfds), after the features (`features`: what the driver negotiated,
  // limited to what the kernel offered) and the memory table.
  absl::Status StartRings(const VirtioActiveQueues& active, absl::Span<const uint16_t> queues,
                          uint64_t features);
  // Stops rings 0..count-1 (GET_VRING_BASE) and unbinds their eventfds; what
  // a reset does. Best effort: the rings are gone either way.
  void StopRings(uint32_t count);

  // vhost-net: the tap queue behind ring `index` (fd < 0 detaches).
  absl::Status NetSetBackend(uint32_t index, int tap_fd);
  // vhost-vsock: the guest's CID, and starting or stopping the device.
  absl::Status VsockSetGuestCid(uint64_t cid);
  absl::Status VsockSetRunning(bool running);

  int fd() const { return fd_.get(); }

 private:
  VhostKernel(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  absl::Status Ioctl(unsigned long request, const void* arg, const char* what);

  UniqueFd fd_;
  std::string path_;
};

}  // namespace vmm

#endif  // VMM_DEVICES_VHOST_VHOST_KERNEL_H_
