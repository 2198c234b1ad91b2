// virtio-rng (virtio 1.x, 5.4): one request queue whose device-writable
// buffers the device fills with random bytes (getrandom() by default).
//
// Optional rate limit in bytes per second: a token bucket holding at most one
// second's worth. A chain is filled with what the bucket holds (a short fill
// is allowed by the spec: the used length says how much); when the bucket is
// empty the chains stay in the avail ring and a retry is scheduled (a timerfd
// on the event loop) for when it has refilled — no busy loop.
//
// Hostile drivers: a chain with device-readable buffers is returned unused
// (length 0) and counted; a request is filled with at most
// kMaxBytesPerRequest bytes, straight into guest memory (no host buffer).
//
// Threads: ProcessQueue (event loop) and Activate/Reset (vCPU threads) are
// serialised by the device mutex; context calls happen after it is released.
#ifndef VMM_DEVICES_VIRTIO_RNG_VIRTIO_RNG_H_
#define VMM_DEVICES_VIRTIO_RNG_VIRTIO_RNG_H_

#include <cstdint>
#include <functional>
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
#include "devices/virtio/virtio_device.h"

namespace vmm {

struct VirtioRngOptions {
  // 0: no limit.
  uint64_t rate_limit_bytes_per_second = 0;
  // Fills `out` entirely or returns false (getrandom() if empty).
  std::function<bool(absl::Span<uint8_t> out)> entropy;
  // Monotonic clock for the token bucket (absl::Now if empty).
  std::function<absl::Time()> clock;
  // Asks for ProcessQueue(0) after `delay` (rate limit exhausted with chains
  // pending). Create() wires it to a timerfd on the event loop.
  std::function<void(absl::Duration delay)> schedule_retry;
};

struct VirtioRngStats {
  uint64_t requests = 0;
  uint64_t bytes = 0;
  uint64_t malformed = 0;      // device-readable buffers: returned with length 0
  uint64_t throttled = 0;      // times the bucket was empty with chains pending
  uint64_t entropy_failures = 0;
};

class VirtioRng : public VirtioDevice {
 public:
  static constexpr uint32_t kDeviceType = 4;  // VIRTIO_ID_RNG
  static constexpr uint16_t kQueueSize = 64;
  static constexpr uint32_t kMaxBytesPerRequest = 64 * 1024;
  // Larger rate limits are clamped to this (1 GB/s; more is "no limit").
  static constexpr uint64_t kMaxRate = 1'000'000'000;

  // The device with its retry timer (a timerfd) on `loop`; options.entropy
  // and options.clock may be left empty.
  static absl::StatusOr<std::shared_ptr<VirtioRng>> Create(VirtioRngOptions options,
                                                           EventLoop& loop);

  explicit VirtioRng(VirtioRngOptions options);
  ~VirtioRng() override;

  uint32_t device_type() const override { return kDeviceType; }
  uint64_t device_features() const override {
    return kVirtioFVersion1 | kVirtioFEventIdx | kVirtioFIndirectDesc;
  }
  std::vector<uint16_t> queue_max_sizes() const override { return {kQueueSize}; }
  // No configuration space.
  void ReadConfig(uint64_t offset, absl::Span<uint8_t> data) override;
  void WriteConfig(uint64_t, absl::Span<const uint8_t>) override {}
  absl::Status Activate(VirtioActivation activation) override;
  void ProcessQueue(uint16_t queue) override;
  void Reset() override;
  // Snapshots: the queues' positions (a chain held back by the rate limit is
  // offered again; the bucket starts full). No state of its own to restore.
  absl::StatusOr<VirtioDeviceSnapshot> Snapshot() const override;

  // The retry scheduled through options.schedule_retry is due.
  void OnRetryTimer();

  VirtioRngStats stats() const;
  std::vector<DeviceCounter> counters() const override;

 private:
  struct Active : VirtioActiveQueues {
    // Popped while the bucket was empty; filled first when it has refilled.
    std::optional<DescriptorChain> held;
  };
  // Bytes the bucket allows now (refilled from the clock); UINT64_MAX when
  // unlimited.
  uint64_t Budget() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fills `chain`'s writable part with up to `limit` bytes; returns how many.
  uint32_t Fill(const DescriptorChain& chain, const GuestMemory& memory, uint64_t limit)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  VirtioRngOptions options_;
  EventLoop* loop_ = nullptr;  // set by Create, with timer_
  UniqueFd timer_;

  mutable absl::Mutex mu_;
  std::optional<Active> active_ ABSL_GUARDED_BY(mu_);
  static constexpr uint64_t kNanos = 1'000'000'000;
  // The bucket, in billionths of a byte (exact integer refills).
  uint64_t nano_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_refill_ ABSL_GUARDED_BY(mu_);
  bool retry_scheduled_ ABSL_GUARDED_BY(mu_) = false;
  VirtioRngStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_RNG_VIRTIO_RNG_H_
