// virtio-vsock (virtio 1.x, 5.10): guest<->host stream sockets without a
// network, bridged to Unix sockets the way Firecracker does it (see
// vsock_muxer.h for the host-side protocol, vsock_connection.h for the
// connection state machine and flow control).
//
// Queues: 0 rx (device -> driver), 1 tx (driver -> device), 2 event (used
// once, by a device restored from a snapshot: a transport reset, after which
// the driver drops its connections, whose host sockets were the old VM's;
// Firecracker does the same). Config: le64 guest_cid.
// Offered features: VERSION_1, RING_EVENT_IDX, INDIRECT_DESC (no SEQPACKET).
//
// Guest packets are checked before they reach a connection: a TX chain with
// device-writable buffers or fewer than 44 readable bytes is returned
// unused and counted; a wrong src_cid is dropped; a wrong dst_cid, a type
// other than STREAM, an unknown op, or a len beyond 64 KiB or the chain is
// answered with RST. An RX chain with readable buffers or room for less than
// a header is returned with length 0 and counted.
//
// Threads: ProcessQueue and HandleHostEvents run on the event loop,
// Activate/Reset on vCPU threads; the device mutex serialises them, and
// calls into the VirtioDeviceContext happen after it is released.
#ifndef VMM_DEVICES_VIRTIO_VSOCK_VIRTIO_VSOCK_H_
#define VMM_DEVICES_VIRTIO_VSOCK_VIRTIO_VSOCK_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/event_loop.h"
#include "devices/virtio/queue_pass.h"
#include "devices/virtio/virtio_device.h"
#include "devices/virtio/vsock/vsock_muxer.h"
#include "devices/virtio/vsock/vsock_packet.h"

namespace vmm {

class VirtioVsock : public VirtioDevice {
 public:
  static constexpr uint32_t kDeviceType = 19;  // VIRTIO_ID_VSOCK
  static constexpr uint16_t kQueueSize = 256;
  // virtio_vsock_event ids.
  static constexpr uint8_t kVsockEventTransportReset = 0;
  static constexpr uint16_t kRxQueue = 0;
  static constexpr uint16_t kTxQueue = 1;
  static constexpr uint16_t kEventQueue = 2;
  // Guest CIDs a user may give: 0-2 (hypervisor, local, host) and
  // 0xffffffff (VMADDR_CID_ANY) are reserved (virtio 1.2, 5.10.4).
  static constexpr uint64_t kMinGuestCid = 3;
  static constexpr uint64_t kMaxGuestCid = 0xfffffffe;

  // Listens on options.socket_path (see VsockMuxer::Create). With a `loop`,
  // host socket events are handled on it; without one (unit tests) the
  // caller calls HandleHostEvents.
  static absl::StatusOr<std::shared_ptr<VirtioVsock>> Create(VsockMuxerOptions options,
                                                             EventLoop* loop);
  ~VirtioVsock() override;

  uint32_t device_type() const override { return kDeviceType; }
  uint64_t device_features() const override;
  std::vector<uint16_t> queue_max_sizes() const override {
    return {kQueueSize, kQueueSize, kQueueSize};
  }
  void ReadConfig(uint64_t offset, absl::Span<uint8_t> data) override;
  void WriteConfig(uint64_t offset, absl::Span<const uint8_t> data) override;
  absl::Status Activate(VirtioActivation activation) override;
  void ProcessQueue(uint16_t queue) override;
  void Reset() override;
  // Snapshots: the queues' positions and the guest CID (a restore with
  // another CID is refused). Connections are not saved: a restored device
  // sends the driver VIRTIO_VSOCK_EVENT_TRANSPORT_RESET.
  absl::StatusOr<VirtioDeviceSnapshot> Snapshot() const override;
  absl::Status RestoreSnapshot(absl::string_view state) override;

  // Host sockets have events (the muxer's epoll fd is readable).
  void HandleHostEvents();
  // The fd the event loop watches for HandleHostEvents: readable while any
  // watched host socket has an event (tests check it goes quiet).
  int host_event_fd() const;

  VsockStats stats() const;
  std::vector<DeviceCounter> counters() const override;
  size_t connection_count() const;
  // Flow-control state of one connection, for tests; nullopt if none.
  struct ConnectionInfo {
    VsockConnection::State state;
    uint32_t peer_credit;
    uint32_t fwd_cnt;
    size_t buffered_bytes;
  };
  std::optional<ConnectionInfo> connection(uint32_t local_port, uint32_t peer_port) const;

 private:
  struct Active : VirtioActiveQueues {
    // An RX chain popped when there was work, kept when the work vanished
    // (a chain cannot be given back to the avail ring).
    std::optional<DescriptorChain> held_rx;
  };
  VirtioVsock(uint64_t guest_cid, EventLoop* loop) : guest_cid_(guest_cid), loop_(loop) {}

  bool QueueUsable(uint16_t queue) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ProcessTx(QueuePass& pass) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleTxChain(const DescriptorChain& chain, const GuestMemory& memory)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PumpRx(QueuePass& pass) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const uint64_t guest_cid_;
  EventLoop* const loop_;

  mutable absl::Mutex mu_;
  VsockStats stats_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<VsockMuxer> muxer_ ABSL_GUARDED_BY(mu_);
  std::optional<Active> active_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_VSOCK_VIRTIO_VSOCK_H_
