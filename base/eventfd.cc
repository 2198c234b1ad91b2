#include "base/eventfd.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "base/status_macros.h"

namespace vmm {

absl::StatusOr<EventFd> EventFd::Create() {
  int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return ErrnoStatus("eventfd");
  return EventFd(UniqueFd(fd));
}

absl::Status EventFd::Write(uint64_t value) const {
  ssize_t n;
  do {
    n = ::write(fd_.get(), &value, sizeof(value));
  } while (n < 0 && errno == EINTR);
  if (n != sizeof(value)) return ErrnoStatus("eventfd write");
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> EventFd::Read() const {
  uint64_t value = 0;
  ssize_t n;
  do {
    n = ::read(fd_.get(), &value, sizeof(value));
  } while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN) return 0;
  if (n != sizeof(value)) return ErrnoStatus("eventfd read");
  return value;
}

}  // namespace vmm
