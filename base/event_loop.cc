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

absl::Status EventLoop::Add(int fd, uint32_t events, Callback callback, Kind kind) {
  absl::MutexLock lock(&mu_);
  if (watches_.contains(fd)) {
    return absl::AlreadyExistsError(absl::StrFormat("fd %d already in the event loop", fd));
  }
  epoll_event ev{};
  // A device watch added while held waits, disarmed, for Release().
  ev.events = held_ && kind == Kind::kDevice ? 0 : events;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    return ErrnoStatus(absl::StrFormat("epoll_ctl add fd %d", fd));
  }
  watches_[fd] = Watch{std::make_shared<Callback>(std::move(callback)), events, kind};
  return absl::OkStatus();
}

absl::Status EventLoop::Remove(int fd) {
  absl::MutexLock lock(&mu_);
  if (watches_.erase(fd) == 0) {
    return absl::NotFoundError(absl::StrFormat("fd %d not in the event loop", fd));
  }
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr) != 0) {
    return ErrnoStatus(absl::StrFormat("epoll_ctl del fd %d", fd));
  }
  return absl::OkStatus();
}

void EventLoop::Arm(int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  // Fails only for an fd closed without Remove(), the owner's bug; its
  // events are then gone either way.
  (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
}

void EventLoop::Hold() {
  absl::MutexLock lock(&mu_);
  held_ = true;
  for (const auto& [fd, watch] : watches_) {
    if (watch.kind == Kind::kDevice) Arm(fd, 0);
  }
  if (std::this_thread::get_id() == loop_thread_) return;  // from a callback
  mu_.Await(absl::Condition(
      +[](std::atomic<bool>* busy) { return !busy->load(); }, &in_device_callback_));
}

void EventLoop::Release() {
  absl::MutexLock lock(&mu_);
  held_ = false;
  // Re-arming polls each fd: what became ready while held fires now.
  for (const auto& [fd, watch] : watches_) {
    if (watch.kind == Kind::kDevice) Arm(fd, watch.events);
  }
}

absl::Status EventLoop::Run() {
  {
    absl::MutexLock lock(&mu_);
    loop_thread_ = std::this_thread::get_id();
  }
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
      bool device = false;
      {
        absl::MutexLock lock(&mu_);
        auto it = watches_.find(fd);
        if (it == watches_.end()) continue;  // removed by an earlier callback
        device = it->second.kind == Kind::kDevice;
        // Reported before a Hold(): Release() re-arms it, it fires then.
        if (device && held_) continue;
        callback = it->second.callback;
        in_device_callback_ = device;
      }
      (*callback)(events[i].events);
      if (device) {
        absl::MutexLock lock(&mu_);
        in_device_callback_ = false;
      }
    }
  }
}

void EventLoop::Stop() { (void)stop_.Write(1); }

}  // namespace vmm
