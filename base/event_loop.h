// A small epoll loop: device work and host I/O (stdin, timers, eventfds) run
// as callbacks on one thread.
#ifndef VMM_BASE_EVENT_LOOP_H_
#define VMM_BASE_EVENT_LOOP_H_

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/eventfd.h"
#include "base/unique_fd.h"

namespace vmm {

class EventLoop {
 public:
  // Called with the epoll events that fired (EPOLLIN, EPOLLHUP, ...).
  using Callback = std::function<void(uint32_t events)>;

  static absl::StatusOr<std::unique_ptr<EventLoop>> Create();

  // What a watch is for: device work (the default) is held back by Hold();
  // control work (a VM's timeout, a control socket) runs regardless.
  enum class Kind { kDevice, kControl };

  // Watches `fd` for `events`; the callback runs on the loop thread. The fd
  // stays owned by the caller and must outlive its registration.
  absl::Status Add(int fd, uint32_t events, Callback callback, Kind kind = Kind::kDevice);
  absl::Status Remove(int fd);

  // Dispatches events until Stop(); returns an error only if epoll fails.
  absl::Status Run();
  // Makes Run() return. Safe from any thread and from callbacks.
  void Stop();

  // Quiesces the devices (a paused VM): from Hold() until Release() no
  // kDevice callback runs; their fds stay registered and what became ready
  // meanwhile is dispatched after Release() (level- and edge-triggered
  // alike: each fd is re-armed). Returns once no kDevice callback is
  // running (at once when called from a callback). Safe from any thread;
  // Hold/Release pairs must not overlap.
  void Hold();
  void Release();

 private:
  struct Watch {
    std::shared_ptr<Callback> callback;
    uint32_t events = 0;
    Kind kind = Kind::kDevice;
  };
  EventLoop(UniqueFd epoll, EventFd stop) : epoll_(std::move(epoll)), stop_(std::move(stop)) {}
  // epoll_ctl MOD of a watch to `events` (0: disarmed).
  void Arm(int fd, uint32_t events) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  UniqueFd epoll_;
  EventFd stop_;
  absl::Mutex mu_;
  absl::flat_hash_map<int, Watch> watches_ ABSL_GUARDED_BY(mu_);
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  // Written under mu_; atomic because abseil may evaluate Hold()'s wait
  // condition on another thread.
  std::atomic<bool> in_device_callback_{false};
  std::thread::id loop_thread_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vmm

#endif  // VMM_BASE_EVENT_LOOP_H_
