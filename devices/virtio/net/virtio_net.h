// virtio-net (virtio 1.x, 5.1) over a NetBackend (a tap in the VMM), its
// data path in the VMM or, with vhost (`vhost=on`), in the host kernel.
//
// vhost-net: one /dev/vhost-net per queue pair, its rings 0 (receiveq) and 1
// (transmitq) on the pair's tap queue (VHOST_NET_SET_BACKEND), kicked by the
// queues' ioeventfds and calling their irqfds (VirtioDevice::QueueInBackend):
// no frame and no notification of the data path passes through vmm. The
// control queue stays here, as do offloads (TUNSETOFFLOAD) and which tap
// queues are attached (MQ). The features the kernel's vhost-net lacks
// (of INDIRECT_DESC, RING_EVENT_IDX, MRG_RXBUF, VERSION_1) are not offered.
// Activation starts vhost for each pair whose queues the driver enabled;
// reset stops it (GET_VRING_BASE, backend detached), and the next activation
// starts it again on the new rings.
//
// Queues: receiveq/transmitq per queue pair (2k, 2k+1), then the control
// queue: queue 2 * max_virtqueue_pairs when the driver negotiated MQ, else
// queue 2 (5.1.2). Frames keep the 12-byte virtio_net_hdr_v1 in front both
// ways, so the guest's offload metadata passes straight to and from the tap.
//
// Offered: VERSION_1, MAC, STATUS (link up), MRG_RXBUF, CSUM, HOST_TSO4/6,
// HOST_ECN, GUEST_CSUM/TSO4/TSO6/ECN (when the backend takes TSO offloads),
// HOST_UFO/GUEST_UFO (when it takes UFO), CTRL_VQ, CTRL_RX, MQ (more than one
// pair), RING_EVENT_IDX, INDIRECT_DESC. The negotiated guest offloads are
// mirrored to the backend (TUNSETOFFLOAD) on activation.
//
// TX: each chain is one frame, written to the backend from guest memory.
// RX: while a receiveq has buffers the device watches the backend's fd on the
// event loop; a frame is read into a per-queue bounce buffer and copied into
// one chain (or, with MRG_RXBUF, as many as it needs: num_buffers). When the
// guest has no buffers the device stops watching the backend (frames wait in
// the kernel's tap queue, one in our bounce buffer at most) until the guest
// kicks the receiveq. Nothing is dropped for want of buffers; only a frame
// that no buffer could ever hold (larger than a whole chain without
// MRG_RXBUF, or than every chain the ring has with it) is dropped, and
// counted (rx_too_big). Chains popped ahead of a frame are held, at most the
// ring's size of them, whatever the driver puts in its avail ring.
//
// Guest input: a chain that breaks the ring protocol puts the device in
// DEVICE_NEEDS_RESET (virtqueue.h). A request that is well-formed as a chain
// but wrong for its queue (a TX chain with device-writable buffers, shorter
// than the header or longer than kMaxFrame; an RX chain with readable
// buffers or too short for the header; a control command without room for
// its ack) is counted in stats() and returned with used length 0.
//
// Threads: ProcessQueue and OnBackendReadable run on the event loop;
// Activate/Reset come from vCPU threads. The device mutex serialises them;
// context calls happen after it is released.
#ifndef VMM_DEVICES_VIRTIO_NET_VIRTIO_NET_H_
#define VMM_DEVICES_VIRTIO_NET_VIRTIO_NET_H_

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "base/event_loop.h"
#include "devices/vhost/vhost_kernel.h"
#include "devices/virtio/net/net_backend.h"
#include "devices/virtio/net/virtio_net_spec.h"
#include "devices/virtio/queue_pass.h"
#include "devices/virtio/virtio_device.h"

namespace vmm {

struct VirtioNetStats {
  uint64_t tx_frames = 0;
  uint64_t tx_bytes = 0;        // headers included
  uint64_t tx_malformed = 0;    // writable buffers, shorter than the header, or oversize
  uint64_t tx_dropped = 0;      // the backend refused the frame
  uint64_t rx_frames = 0;
  uint64_t rx_bytes = 0;        // headers included
  uint64_t rx_malformed = 0;    // RX chains with readable buffers or shorter than the header
  uint64_t rx_too_big = 0;      // frames no buffer the guest offers could hold
  uint64_t rx_errors = 0;       // backend read errors, runt frames
  uint64_t rx_stalls = 0;       // times the device stopped reading for want of buffers
  uint64_t ctrl_commands = 0;
  uint64_t ctrl_errors = 0;     // answered VIRTIO_NET_ERR, or with no room for an ack
};

class VirtioNet : public VirtioDevice {
 public:
  static constexpr uint32_t kDeviceType = 1;  // VIRTIO_ID_NET
  static constexpr uint16_t kQueueSize = 256;
  static constexpr uint16_t kCtrlQueueSize = 64;
  // Queue pairs one device offers at most (queues=): each is a tap queue and
  // two virtqueues, with their ioeventfds and interrupt vectors.
  static constexpr int kMaxQueuePairs = 16;
  static constexpr uint32_t kHeaderSize = sizeof(virtio_net::Header);  // 12
  // The largest frame either way, header excluded: a 64 KiB GSO frame plus
  // an Ethernet and VLAN header (the 65562-byte buffers of the spec).
  static constexpr uint32_t kMaxFrame = 65550;
  // Frames handled per queue per event-loop callback, so one busy tap cannot
  // starve the other devices.
  static constexpr int kBudget = 256;

  // `loop` is where the backend's fds are watched (ProcessQueue runs there
  // too); it must outlive the device. With `vhost` (one per backend queue,
  // each an open /dev/vhost-net), the data queues run in the host kernel on
  // the backend's queue fds (rx_fd: the tap queues).
  VirtioNet(std::unique_ptr<NetBackend> backend, std::array<uint8_t, 6> mac, EventLoop* loop,
            std::vector<VhostKernel> vhost = {});
  ~VirtioNet() override;

  uint32_t device_type() const override { return kDeviceType; }
  uint64_t device_features() const override { return features_; }
  std::vector<uint16_t> queue_max_sizes() const override;
  // With vhost, every receiveq and transmitq; never the control queue.
  bool QueueInBackend(uint16_t queue) const override {
    return in_kernel_ && queue < 2 * max_pairs_;
  }
  void ReadConfig(uint64_t offset, absl::Span<uint8_t> data) override;
  void WriteConfig(uint64_t offset, absl::Span<const uint8_t> data) override;
  absl::Status Activate(VirtioActivation activation) override;
  void ProcessQueue(uint16_t queue) override;
  void Reset() override;
  // Snapshots: the queues' positions (receive buffers held for frames that
  // had not come are offered again; a frame half-delivered is dropped, as a
  // network may), the MAC, the pairs in use and the receive mode. A
  // restored device takes the snapshot's MAC (the guest has it). vhost-net
  // is refused: its rings are in the host kernel.
  absl::StatusOr<VirtioDeviceSnapshot> Snapshot() const override;
  absl::Status RestoreSnapshot(absl::string_view state) override;

  // The event loop's callback for the backend's queue `pair` (public so unit
  // tests can drive it without running a loop).
  void OnBackendReadable(int pair);

  VirtioNetStats stats() const;
  std::vector<DeviceCounter> counters() const override;
  // Whether the device is watching backend queue `pair` for frames.
  bool rx_watching(int pair) const;
  // Queue pairs in use (1 until the driver sends MQ_VQ_PAIRS_SET).
  int active_pairs() const;
  bool promiscuous() const;
  bool all_multicast() const;

 private:
  struct RxState {
    std::vector<uint8_t> frame;   // bounce buffer: kHeaderSize + kMaxFrame + slack
    size_t pending = 0;           // bytes of a frame read but not yet delivered
    std::deque<DescriptorChain> held;  // popped, validated, not yet used
    uint64_t held_bytes = 0;
    bool watching = false;
  };
  struct Active : VirtioActiveQueues {
    int pairs = 1;            // in use (MQ_VQ_PAIRS_SET)
    int negotiated_pairs = 1; // max_virtqueue_pairs with MQ, else 1
    uint16_t ctrl = 2;        // the control queue: 2 * negotiated_pairs
    bool promiscuous = true;   // the spec's defaults before any CTRL_RX command
    bool all_multicast = true;
  };
  // How gathering receive buffers went.
  enum class Hold {
    kEnough,  // the buffers asked for are held
    kEmpty,   // the ring ran dry first (kicks re-armed)
    kFull,    // as many chains held as the ring has entries
    kBroken,  // the driver broke the ring protocol (the pass failed)
  };

  bool QueueUsable(uint16_t queue) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Under mu_, after a pass: stops reading the backend for a driver that
  // broke a ring, then settles the pass (delivered without mu_).
  void EndPass(QueuePass& pass) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void ProcessTx(int pair, QueuePass& pass) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint32_t HandleTx(int pair, const DescriptorChain& chain) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ProcessRx(int pair, QueuePass& pass) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Pops receive chains until `needed` bytes are held (with MRG_RXBUF) or
  // one chain is (without). Malformed chains are counted and returned.
  Hold HoldBuffers(int pair, uint64_t needed, QueuePass& pass) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Copies the pending frame into held chains and returns them used:
  // kEnough when the frame is gone (delivered or dropped as too big).
  Hold DeliverPending(int pair, QueuePass& pass) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Does nothing with vhost: the kernel reads the tap.
  void SetWatching(int pair, bool watch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // vhost: starts the kernel on every pair whose two queues are enabled.
  absl::Status StartVhost() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StopVhost() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void ProcessCtrl(QueuePass& pass) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint8_t HandleCtrl(uint8_t cls, uint8_t cmd, const DescriptorChain& chain, uint64_t data_len,
                     QueuePass& pass) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint8_t SetPairs(uint16_t pairs, QueuePass& pass) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);


  const std::unique_ptr<NetBackend> backend_;
  EventLoop* const loop_;
  const int max_pairs_;
  const bool in_kernel_;        // vhost-net runs the data queues
  const uint64_t vhost_features_;  // what the kernel offers (in_kernel_)
  const uint64_t features_;

  mutable absl::Mutex mu_;
  virtio_net::Config config_ ABSL_GUARDED_BY(mu_);  // the MAC changes on a restore
  std::optional<Active> active_ ABSL_GUARDED_BY(mu_);
  std::vector<RxState> rx_ ABSL_GUARDED_BY(mu_);
  std::vector<VhostKernel> vhost_ ABSL_GUARDED_BY(mu_);   // one per pair, or none
  std::vector<bool> vhost_running_ ABSL_GUARDED_BY(mu_);  // same length
  // vhost without MQ: the control queue's kick eventfd, watched by the
  // device itself (-1: none).
  int ctrl_kick_watched_ ABSL_GUARDED_BY(mu_) = -1;
  VirtioNetStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_NET_VIRTIO_NET_H_
