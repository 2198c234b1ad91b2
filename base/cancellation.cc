#include "base/cancellation.h"

#include <string>

namespace vmm {

absl::StatusOr<std::unique_ptr<Cancellation>> Cancellation::Create() {
  absl::StatusOr<EventFd> event = EventFd::Create();
  if (!event.ok()) return event.status();
  return std::unique_ptr<Cancellation>(new Cancellation(std::move(*event)));
}

void Cancellation::Cancel(absl::string_view reason) {
  {
    absl::MutexLock lock(&mu_);
    if (cancelled_.load(std::memory_order_relaxed)) return;
    reason_ = std::string(reason);
    cancelled_.store(true, std::memory_order_release);
  }
  // The counter only grows and nobody reads it: the fd stays readable.
  (void)event_.Write(1);
}

absl::Status Cancellation::status() const {
  if (!cancelled()) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  return absl::CancelledError(reason_);
}

}  // namespace vmm
