// A VirtioDeviceContext that records what a device asked of its transport:
// used-buffer notifications per queue, configuration-change notifications
// and DEVICE_NEEDS_RESET reasons. Thread-safe (devices call it from the
// event-loop thread while the test thread inspects it).
#ifndef VMM_TESTS_FAKES_FAKE_VIRTIO_CONTEXT_H_
#define VMM_TESTS_FAKES_FAKE_VIRTIO_CONTEXT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "devices/virtio/virtio_device.h"

namespace vmm::testing {

class FakeVirtioContext : public VirtioDeviceContext {
 public:
  void NotifyUsed(uint16_t queue) override {
    absl::MutexLock lock(&mu_);
    notified_queues_.push_back(queue);
  }
  void NotifyConfigChanged() override {
    absl::MutexLock lock(&mu_);
    ++config_changes_;
  }
  void DeviceNeedsReset(absl::string_view why) override {
    absl::MutexLock lock(&mu_);
    reset_reasons_.emplace_back(why);
  }
  void ProcessAgain(uint16_t queue) override {
    absl::MutexLock lock(&mu_);
    process_again_.push_back(queue);
  }

  // Every ProcessAgain call, in order (a pass that ran out of budget).
  std::vector<uint16_t> process_again() const {
    absl::MutexLock lock(&mu_);
    return process_again_;
  }
  void clear_process_again() {
    absl::MutexLock lock(&mu_);
    process_again_.clear();
  }

  // Every NotifyUsed call, in order.
  std::vector<uint16_t> notified_queues() const {
    absl::MutexLock lock(&mu_);
    return notified_queues_;
  }
  // How many NotifyUsed calls named `queue`.
  size_t notify_count(uint16_t queue) const {
    absl::MutexLock lock(&mu_);
    size_t n = 0;
    for (uint16_t q : notified_queues_) n += (q == queue);
    return n;
  }
  size_t config_changes() const {
    absl::MutexLock lock(&mu_);
    return config_changes_;
  }
  // The `why` of every DeviceNeedsReset call, in order.
  std::vector<std::string> reset_reasons() const {
    absl::MutexLock lock(&mu_);
    return reset_reasons_;
  }
  bool needs_reset() const {
    absl::MutexLock lock(&mu_);
    return !reset_reasons_.empty();
  }

  // Blocks until `queue` has been notified at least `count` times in total
  // or `timeout` passes; returns whether it was. For tests whose device runs
  // on another thread.
  bool WaitForNotifyCount(uint16_t queue, size_t count,
                          absl::Duration timeout = absl::Seconds(5)) const {
    auto reached = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      size_t n = 0;
      for (uint16_t q : notified_queues_) n += (q == queue);
      return n >= count;
    };
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }

  // Forgets everything recorded so far.
  void Clear() {
    absl::MutexLock lock(&mu_);
    notified_queues_.clear();
    config_changes_ = 0;
    reset_reasons_.clear();
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<uint16_t> notified_queues_ ABSL_GUARDED_BY(mu_);
  size_t config_changes_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> reset_reasons_ ABSL_GUARDED_BY(mu_);
  std::vector<uint16_t> process_again_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vmm::testing

#endif  // VMM_TESTS_FAKES_FAKE_VIRTIO_CONTEXT_H_
