#include "base/event_loop.h"

#include <cerrno>

#include "absl/strings/str_format.h"
#include "base/status_macros.h"

namespace vmm {

absl::StatusOr<std::unique_ptr<EventLoop>> EventLoop::Create() {
  int epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) return ErrnoStatus("epoll_create1");
  UniqueFd epoll(epfd);
  ASSIGN_OR_RETURN(EventFd stop, EventFd::Create());
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = stop.fd();
  if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, stop.fd(), &ev) != 0) {
    return ErrnoStatus("epoll_ctl add stop eventfd");
  }
  return std::unique_ptr<EventLoop>(new EventLoop(std::move(epoll), std::move(stop)));
}

absl::Status EventLoop::Add(int fd, uint32_t events, Callback callback) {
  absl::MutexLock lock(&mu_);
  if (callbacks_.contains(fd)) {
    return absl::AlreadyExistsError(absl::StrFormat("fd %d already in the event loop", fd));
  }
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    return ErrnoStatus(absl::StrFormat("epoll_ctl add fd %d", fd));
  }
  callbacks_[fd] = std::make_shared<Callback>(std::move(callback));
  return absl::OkStatus();
}

absl::Status EventLoop::Remove(int fd) {
  absl::MutexLock lock(&mu_);
  if (callbacks_.erase(fd) == 0) {
    return absl::NotFoundError(absl::StrFormat("fd %d not in the event loop", fd));
  }
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr) != 0) {
    return ErrnoStatus(absl::StrFormat("epoll_ctl del fd %d", fd));
  }
  return absl::OkStatus();
}

absl::Status EventLoop::Run() {
  constexpr int kMaxEvents = 32;
  epoll_event events[kMaxEvents];
  for (;;) {
    int n = ::epoll_wait(epoll_.get(), events, kMaxEvents, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == stop_.fd()) {
        (void)stop_.Read();
        return absl::OkStatus();
      }
      std::shared_ptr<Callback> callback;
      {
        absl::MutexLock lock(&mu_);
        auto it = callbacks_.find(fd);
        if (it == callbacks_.end()) continue;  // removed by an earlier callback
        callback = it->second;
      }
      (*callback)(events[i].events);
    }
  }
}

void EventLoop::Stop() { (void)stop_.Write(1); }

}  // namespace vmm
