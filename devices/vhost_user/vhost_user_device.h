// A virtio device whose data path is another program, over vhost-user: the
// back-end (qemu-storage-daemon's vhost-user-blk export, virtiofsd) maps
// guest RAM from the memfds SET_MEM_TABLE hands it, is kicked through the
// queues' ioeventfds and raises their irqfds (VirtioDevice::QueueInBackend).
// vmm keeps the virtio transport, feature negotiation and the config space.
//
// What a kind of device adds is in VhostUserDeviceOptions: its type, the
// device feature bits it lets through, how many queues, where its config
// space comes from (GET_CONFIG, or bytes vmm makes, as virtio-fs's tag).
//
// Life of a session: Create connects and does the handshake (so a missing or
// broken back-end is a start-up error naming the socket); DRIVER_OK sends
// the features, the memory table and every enabled ring (size, addresses as
// vmm's own addresses, base 0, kick, call, enable); a reset stops each ring
// (GET_VRING_BASE). The back-end's replies are untrusted (channel.h).
//
// A back-end that dies or breaks the protocol: the channel is broken for
// good; the loop sees the socket hang up, and an active device asks the
// driver for a reset (DEVICE_NEEDS_RESET), an inactive one fails its next
// activation the same way. The guest gets an error, never a hang of the VM;
// vmm and the other devices go on.
//
// With `reconnect` (QEMU's reconnect=), a hang-up is not an error: the loop
// tries the socket again every `reconnect`, and once a back-end answers
// (with at least the features the driver negotiated) the session is built
// again and every ring resumes where the guest's used ring says it stopped
// (requests the dead back-end had taken but not finished are taken again),
// then is kicked. The guest sees a pause. A back-end that comes back
// without those features puts the device in DEVICE_NEEDS_RESET.
//
// Threads: Activate/Reset on vCPU threads (or the loop at teardown), the
// hang-up callback on the loop; the device lock serialises them and covers
// the channel (one request at a time). Context calls happen after it is
// released.
#ifndef VMM_DEVICES_VHOST_USER_VHOST_USER_DEVICE_H_
#define VMM_DEVICES_VHOST_USER_VHOST_USER_DEVICE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/event_loop.h"
#include "base/unique_fd.h"
#include "devices/vhost_user/frontend.h"
#include "devices/virtio/virtio_device.h"

namespace vmm {

struct VhostUserDeviceOptions {
  std::string name;          // "vhost-user-blk": in errors
  uint32_t device_type = 0;  // VIRTIO_ID_*
  std::string socket_path;   // where the back-end listens
  // Device-specific feature bits (below 24) vmm offers when the back-end
  // does; VERSION_1, RING_EVENT_IDX and INDIRECT_DESC are added the same way.
  uint64_t device_features = 0;
  // Queues: `max_queues` without MQ; with MQ, the back-end's GET_QUEUE_NUM
  // capped at it. Each of `queue_size` entries at most.
  uint16_t max_queues = 1;
  uint16_t queue_size = 128;
  // Config space: the first `config_size` bytes from the back-end
  // (GET_CONFIG, which it must then offer), or `config` when config_size is 0.
  uint32_t config_size = 0;
  std::vector<uint8_t> config;
  absl::Duration timeout = absl::Seconds(5);  // per reply
  // Zero: a back-end that goes away stays gone (DEVICE_NEEDS_RESET).
  absl::Duration reconnect = absl::ZeroDuration();
};

class VhostUserDevice : public VirtioDevice {
 public:
  // Connects to the back-end and learns what it offers. With a `loop`, a
  // back-end hanging up is noticed there. `cancel` (may be null) ends a wait
  // for the back-end's answers early with its Cancelled status.
  static absl::StatusOr<std::shared_ptr<VhostUserDevice>> Create(
      VhostUserDeviceOptions options, EventLoop* loop, const Cancellation* cancel = nullptr);
  ~VhostUserDevice() override;

  uint32_t device_type() const override { return options_.device_type; }
  uint64_t device_features() const override { return features_; }
  std::vector<uint16_t> queue_max_sizes() const override {
    return std::vector<uint16_t>(num_queues_, options_.queue_size);
  }
  bool QueueInBackend(uint16_t /*queue*/) const override { return true; }
  void ReadConfig(uint64_t offset, absl::Span<uint8_t> data) override;
  // Config writes (virtio-blk's writeback toggle...) are not passed on: no
  // config-writable feature is offered.
  void WriteConfig(uint64_t /*offset*/, absl::Span<const uint8_t> /*data*/) override {}
  absl::Status Activate(VirtioActivation activation) override;
  void ProcessQueue(uint16_t /*queue*/) override {}  // every queue is the back-end's
  void Reset() override;

  // The back-end hung up (the loop's callback; public for tests).
  void OnBackendHangUp();
  // Why the session ended ("" while it is up or being re-established).
  std::string failure() const;
  // Waiting for the back-end to come back (reconnect).
  bool reconnecting() const;
  // Sessions re-established after a hang-up.
  uint64_t reconnects() const;

 private:
  // A ring handed to the back-end: what a resumed session sends again.
  struct Ring {
    uint32_t index = 0;
    VirtqueueConfig config;
    int kick = -1, call = -1;
  };
  VhostUserDevice(VhostUserDeviceOptions options, vhost_user::Frontend frontend,
                  uint16_t num_queues, uint64_t features, std::vector<uint8_t> config,
                  EventLoop* loop);
  // Features, memory table and every ring in rings_; `resume`: each ring's
  // base is its used index in guest RAM, and each is kicked afterwards.
  absl::Status StartRingsLocked(bool resume) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StopRingsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The channel failed (or hung up): remembered, and the loop stops watching.
  void FailLocked(absl::string_view why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WatchLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnwatchLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // reconnect: the timer's tick on the loop; tries the socket once.
  void OnReconnectTimer();

  const VhostUserDeviceOptions options_;
  const uint16_t num_queues_;
  const uint64_t features_;  // what vmm offers: the back-end's, as far as vmm lets through
  const std::vector<uint8_t> config_;
  EventLoop* const loop_;
  std::weak_ptr<VhostUserDevice> self_;  // for the loop's callbacks; set by Create
  UniqueFd timer_;                       // reconnect's timerfd (reconnect > 0)

  mutable absl::Mutex mu_;
  vhost_user::Frontend frontend_ ABSL_GUARDED_BY(mu_);
  std::string failure_ ABSL_GUARDED_BY(mu_);
  bool watching_ ABSL_GUARDED_BY(mu_) = false;
  bool reconnecting_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t reconnects_ ABSL_GUARDED_BY(mu_) = 0;
  // While active: what the driver set up.
  VirtioDeviceContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  const GuestMemory* memory_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint64_t negotiated_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Ring> rings_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vmm

#endif  // VMM_DEVICES_VHOST_USER_VHOST_USER_DEVICE_H_
