// A one-way "give up" for work that may wait a long time, such as a VM's
// start-up waiting on another process (a vhost-user back-end): one thread
// cancels (the signal thread on Ctrl-C, a library user's own thread), the
// working thread checks status() between its steps and polls fd() beside
// whatever it waits on, then unwinds with the Cancelled status, so that
// everything built so far is torn down the ordinary way.
#ifndef VMM_BASE_CANCELLATION_H_
#define VMM_BASE_CANCELLATION_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "base/eventfd.h"

namespace vmm {

class Cancellation {
 public:
  static absl::StatusOr<std::unique_ptr<Cancellation>> Create();

  // Thread-safe; the first reason is the one kept ("start-up interrupted by
  // SIGINT"). Later calls change nothing.
  void Cancel(absl::string_view reason);
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }
  // OK, or CancelledError(reason) once cancelled.
  absl::Status status() const;
  // Readable (POLLIN) from the first Cancel on, for good.
  int fd() const { return event_.fd(); }

 private:
  explicit Cancellation(EventFd event) : event_(std::move(event)) {}

  EventFd event_;
  std::atomic<bool> cancelled_{false};
  mutable absl::Mutex mu_;
  std::string reason_ ABSL_GUARDED_BY(mu_);
};

// `cancel`'s status, or OK when there is none (work nobody can cancel).
inline absl::Status CancellationStatus(const Cancellation* cancel) {
  return cancel == nullptr ? absl::OkStatus() : cancel->status();
}

}  // namespace vmm

#endif  // VMM_BASE_CANCELLATION_H_
