#include "devices/virtio/queue_poller.h"

#include <sched.h>

#include <algorithm>

namespace vmm {

absl::Duration QueuePoller::DefaultMax() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return absl::ZeroDuration();
  return CPU_COUNT(&set) >= 2 ? kDefaultMax : absl::ZeroDuration();
}

void QueuePoller::PassStarted(absl::Time now) {
  if (armed_ && last_end_) Adjust(now - *last_end_);
  armed_ = false;
}

void QueuePoller::Adjust(absl::Duration blocked) {
  if (max_ == absl::ZeroDuration()) return;
  if (blocked <= window_) return;  // polling would have caught it
  if (blocked > max_) {
    window_ = absl::ZeroDuration();  // polling that long costs more than a kick
    return;
  }
  window_ = std::min(max_, window_ == absl::ZeroDuration() ? kInitialWindow : window_ * 2);
}

bool QueuePoller::Spin(absl::Duration window, absl::FunctionRef<bool()> has_work) {
  if (window <= absl::ZeroDuration()) return false;
  const absl::Time deadline = absl::Now() + window;
  do {
    if (has_work()) return true;
#if defined(__x86_64__)
    __builtin_ia32_pause();  // a spin-wait hint: yields to a sibling hyperthread
#endif
  } while (absl::Now() < deadline);
  return has_work();
}

}  // namespace vmm
