// A NetBackend for virtio-net tests: per-queue lists of frames to deliver to
// the guest and of frames the guest sent, the offloads and queue states the
// device set, and an eventfd per queue as the pollable fd, readable exactly
// while frames wait (a semaphore eventfd: one count per frame), so the
// device can run on a real EventLoop. Thread-safe.
#ifndef VMM_TESTS_UNIT_DEVICES_VIRTIO_NET_FAKE_NET_BACKEND_H_
#define VMM_TESTS_UNIT_DEVICES_VIRTIO_NET_FAKE_NET_BACKEND_H_

#include <linux/if_tun.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "base/unique_fd.h"
#include "devices/virtio/net/net_backend.h"

namespace vmm::testing {

class FakeNetBackend : public NetBackend {
 public:
  static constexpr unsigned kAllOffloads =
      TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_UFO;

  explicit FakeNetBackend(int queues = 1, unsigned supported = kAllOffloads)
      : queues_(static_cast<size_t>(queues)), supported_(supported) {
    for (Queue& q : queues_) {
      q.event = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE));
    }
  }

  int queue_count() const override { return static_cast<int>(queues_.size()); }
  int rx_fd(int q) const override { return queues_[q].event.get(); }
  absl::StatusOr<size_t> ReadFrame(int q, absl::Span<uint8_t> buf) override {
    absl::MutexLock lock(&mu_);
    ++reads_;
    std::deque<std::vector<uint8_t>>& rx = queues_[q].rx;
    if (rx.empty()) return 0;
    std::vector<uint8_t> frame = std::move(rx.front());
    rx.pop_front();
    uint64_t one;
    (void)!::read(queues_[q].event.get(), &one, sizeof(one));
    const size_t n = std::min(frame.size(), buf.size());
    std::memcpy(buf.data(), frame.data(), n);
    return n;
  }
  absl::Status WriteFrame(int q, absl::Span<const iovec> iov) override {
    absl::MutexLock lock(&mu_);
    if (refuse_writes) return absl::UnavailableError("fake: refused");
    std::vector<uint8_t> frame;
    for (const iovec& v : iov) {
      const auto* p = static_cast<const uint8_t*>(v.iov_base);
      frame.insert(frame.end(), p, p + v.iov_len);
    }
    queues_[q].tx.push_back(std::move(frame));
    return absl::OkStatus();
  }
  unsigned supported_offloads() const override { return supported_; }
  absl::Status SetOffloads(unsigned tun_flags) override {
    offloads = tun_flags;
    return absl::OkStatus();
  }
  absl::Status SetQueueEnabled(int q, bool enabled) override {
    queues_[q].enabled = enabled;
    return absl::OkStatus();
  }

  // Test side.
  void Inject(int q, std::vector<uint8_t> frame) {
    absl::MutexLock lock(&mu_);
    queues_[q].rx.push_back(std::move(frame));
    const uint64_t one = 1;
    (void)!::write(queues_[q].event.get(), &one, sizeof(one));
  }
  size_t waiting(int q) const {
    absl::MutexLock lock(&mu_);
    return queues_[q].rx.size();
  }
  int reads() const {
    absl::MutexLock lock(&mu_);
    return reads_;
  }
  const std::vector<std::vector<uint8_t>>& sent(int q) const { return queues_[q].tx; }
  bool queue_enabled(int q) const { return queues_[q].enabled; }

  // Set from the test thread before the device runs.
  unsigned offloads = 0xffff;  // what SetOffloads last set (0xffff: never called)
  bool refuse_writes = false;

 private:
  struct Queue {
    std::deque<std::vector<uint8_t>> rx;
    std::vector<std::vector<uint8_t>> tx;
    bool enabled = true;
    UniqueFd event;
  };
  mutable absl::Mutex mu_;
  std::vector<Queue> queues_;  // the deques under mu_
  unsigned supported_;
  int reads_ = 0;
};

}  // namespace vmm::testing

#endif  // VMM_TESTS_UNIT_DEVICES_VIRTIO_NET_FAKE_NET_BACKEND_H_
