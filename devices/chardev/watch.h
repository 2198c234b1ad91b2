// Internal to devices/chardev/: pieces the chardev kinds share.
#ifndef VMM_DEVICES_CHARDEV_WATCH_H_
#define VMM_DEVICES_CHARDEV_WATCH_H_

#include <poll.h>

#include <cstdint>
#include <functional>

#include "base/event_loop.h"

namespace vmm::chardev_internal {

// Whether `fd` is ready for `events` now (a hang-up or an error counts: the
// call that follows will see it).
inline bool Ready(int fd, short events) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & (events | POLLHUP | POLLERR)) != 0;
}

// One fd watched for one kind of readiness on the loop, on demand. The loop
// keys watches by fd: watch input and output of one file on two fds (a dup).
class Watch {
 public:
  Watch(EventLoop& loop, uint32_t events) : loop_(&loop), events_(events) {}
  ~Watch() { Off(); }
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  // Watches `fd` with `callback` (or stops, with on=false or no callback);
  // returns whether it is watched. A watched fd keeps the callback it was
  // given then: Off() first to change it.
  bool Set(int fd, bool on, const std::function<void()>& callback) {
    if (fd_ >= 0 && (!on || fd != fd_)) Off();
    if (on && fd >= 0 && fd_ < 0 && callback) {
      if (loop_->Add(fd, events_, [cb = callback](uint32_t) { cb(); }).ok()) fd_ = fd;
    }
    return fd_ >= 0;
  }
  void Off() {
    if (fd_ >= 0) (void)loop_->Remove(fd_);
    fd_ = -1;
  }

 private:
  EventLoop* loop_;
  uint32_t events_;
  int fd_ = -1;
};

}  // namespace vmm::chardev_internal

#endif  // VMM_DEVICES_CHARDEV_WATCH_H_
