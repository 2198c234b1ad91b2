// Where a virtio-net device's frames come from and go to: one host queue per
// virtio queue pair (a tap queue in the VMM, a fake in unit tests). Frames
// carry the 12-byte virtio_net_hdr_v1 in front, in both directions, as a tap
// with IFF_VNET_HDR and TUNSETVNETHDRSZ 12 does.
#ifndef VMM_DEVICES_VIRTIO_NET_NET_BACKEND_H_
#define VMM_DEVICES_VIRTIO_NET_NET_BACKEND_H_

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace vmm {

class NetBackend {
 public:
  virtual ~NetBackend() = default;

  // Host queues (= the virtio queue pairs the device offers), at least 1.
  virtual int queue_count() const = 0;
  // A pollable fd that is readable (EPOLLIN) while queue `q` has a frame
  // waiting. The device watches it on the event loop.
  virtual int rx_fd(int q) const = 0;

  // Takes the next frame (header first) off queue `q` into `buf`; 0 when no
  // frame is waiting. A frame longer than `buf` may be cut short: the caller
  // gives room for more than it accepts and treats a full buffer as too big.
  virtual absl::StatusOr<size_t> ReadFrame(int q, absl::Span<uint8_t> buf) = 0;
  // Sends one frame (header first) gathered from `iov` on queue `q`.
  virtual absl::Status WriteFrame(int q, absl::Span<const iovec> iov) = 0;

  // TUN_F_* offload bits (linux/if_tun.h) the host side can deliver to the
  // guest; probed when the backend was opened.
  virtual unsigned supported_offloads() const = 0;
  // Which offloads the guest accepts (TUN_F_* bits, a subset of
  // supported_offloads()): frames read afterwards use no others.
  virtual absl::Status SetOffloads(unsigned tun_flags) = 0;
  // Attaches (true) or detaches queue `q` so the host stops steering frames
  // to a queue the guest does not use (virtio-net MQ).
  virtual absl::Status SetQueueEnabled(int q, bool enabled) = 0;
};

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_NET_NET_BACKEND_H_
