// virtio-vsock with its data path in the host kernel (`--vsock
// cid=N,backend=vhost`): /dev/vhost-vsock runs the rx and tx queues on the
// host's own AF_VSOCK, so host programs reach the guest as CID N
// (`socat - VSOCK-CONNECT:N:PORT`) and the guest reaches host listeners at
// CID 2, with no vmm in between. Kicks and interrupts go through KVM's
// ioeventfds and irqfds (VirtioDevice::QueueInBackend).
//
// Queues: 0 rx and 1 tx in the kernel; 2 event stays here, and stays
// quiet: no transport reset events are sent (there is no migration), so
// the driver's event buffers are left in the ring. Config: le64 guest_cid.
// Offered: what the kernel offers of VERSION_1, RING_EVENT_IDX,
// INDIRECT_DESC and SEQPACKET.
//
// The CID is claimed when the device is created (VHOST_VSOCK_SET_GUEST_CID
// fails with EADDRINUSE while another VM has it): a clash is a start-up
// error, never a guest that cannot be reached.
//
// Threads: Activate/Reset on vCPU threads (or the loop at teardown),
// serialised by the device's lock; ProcessQueue only ever sees the event
// queue.
#ifndef VMM_DEVICES_VIRTIO_VSOCK_VHOST_VSOCK_H_
#define VMM_DEVICES_VIRTIO_VSOCK_VHOST_VSOCK_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "devices/vhost/vhost_kernel.h"
#include "devices/virtio/virtio_device.h"

namespace vmm {

class VhostVsock : public VirtioDevice {
 public:
  static constexpr uint32_t kDeviceType = 19;  // VIRTIO_ID_VSOCK
  static constexpr uint16_t kQueueSize = 256;
  static constexpr uint16_t kEventQueue = 2;
  static constexpr unsigned kFSeqpacket = 1;  // VIRTIO_VSOCK_F_SEQPACKET

  // Opens /dev/vhost-vsock (`device_path` overrides it) and claims
  // `guest_cid` on the host.
  static absl::StatusOr<std::shared_ptr<VhostVsock>> Create(uint64_t guest_cid,
                                                            const std::string& device_path = "");
  ~VhostVsock() override;

  uint32_t device_type() const override { return kDeviceType; }
  uint64_t device_features() const override { return features_; }
  std::vector<uint16_t> queue_max_sizes() const override {
    return {kQueueSize, kQueueSize, kQueueSize};
  }
  bool QueueInBackend(uint16_t queue) const override { return queue < kEventQueue; }
  void ReadConfig(uint64_t offset, absl::Span<uint8_t> data) override;
  void WriteConfig(uint64_t offset, absl::Span<const uint8_t> data) override;
  absl::Status Activate(VirtioActivation activation) override;
  // The event queue: its buffers wait for an event that is never sent.
  void ProcessQueue(uint16_t /*queue*/) override {}
  void Reset() override;

  bool running() const;

 private:
  VhostVsock(VhostKernel vhost, uint64_t guest_cid, uint64_t vhost_features);
  void StopLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const uint64_t guest_cid_;
  const uint64_t vhost_features_;
  const uint64_t features_;

  mutable absl::Mutex mu_;
  VhostKernel vhost_ ABSL_GUARDED_BY(mu_);
  bool running_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_VSOCK_VHOST_VSOCK_H_
