// An IrqLine that records every level change, for device tests.
#ifndef VMM_TESTS_FAKES_FAKE_IRQ_LINE_H_
#define VMM_TESTS_FAKES_FAKE_IRQ_LINE_H_

#include <cstddef>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "devices/irq_line.h"

namespace vmm {

class FakeIrqLine : public IrqLine {
 public:
  void SetLevel(bool asserted) override {
    absl::MutexLock lock(&mu_);
    if (asserted && !level_) ++rising_edges_;
    level_ = asserted;
    levels_.push_back(asserted);
  }

  // The current level (deasserted before the first call).
  bool asserted() const {
    absl::MutexLock lock(&mu_);
    return level_;
  }
  // Every SetLevel call since construction or ClearHistory(), in order.
  std::vector<bool> levels() const {
    absl::MutexLock lock(&mu_);
    return levels_;
  }
  // Low-to-high transitions since construction or ClearHistory(): what an
  // edge-triggered interrupt controller delivers.
  size_t rising_edges() const {
    absl::MutexLock lock(&mu_);
    return rising_edges_;
  }
  // Forgets the history; the current level stays.
  void ClearHistory() {
    absl::MutexLock lock(&mu_);
    levels_.clear();
    rising_edges_ = 0;
  }

 private:
  mutable absl::Mutex mu_;
  bool level_ ABSL_GUARDED_BY(mu_) = false;
  size_t rising_edges_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<bool> levels_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vmm

#endif  // VMM_TESTS_FAKES_FAKE_IRQ_LINE_H_
