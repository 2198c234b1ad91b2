// An eventfd: the currency between devices and KVM (ioeventfd, irqfd) and the
// event loop.
#ifndef VMM_BASE_EVENTFD_H_
#define VMM_BASE_EVENTFD_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace vmm {

class EventFd {
 public:
  // A non-blocking, close-on-exec eventfd with counter 0.
  static absl::StatusOr<EventFd> Create();

  int fd() const { return fd_.get(); }
  // Adds `value` to the counter.
  absl::Status Write(uint64_t value = 1) const;
  // Reads and resets the counter; returns 0 if it was 0 (non-blocking).
  absl::StatusOr<uint64_t> Read() const;

 private:
  explicit EventFd(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace vmm

#endif  // VMM_BASE_EVENTFD_H_
