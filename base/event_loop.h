// A small epoll loop: device work and host I/O (stdin, timers, eventfds) run
// as callbacks on one thread.
#ifndef VMM_BASE_EVENT_LOOP_H_
#define VMM_BASE_EVENT_LOOP_H_

#include <sys/epoll.h>

#include <cstdint>
#include <functional>
#include <memory>

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

  // Watches `fd` for `events`; the callback runs on the loop thread. The fd
  // stays owned by the caller and must outlive its registration.
  absl::Status Add(int fd, uint32_t events, Callback callback);
  absl::Status Remove(int fd);

  // Dispatches events until Stop(); returns an error only if epoll fails.
  absl::Status Run();
  // Makes Run() return. Safe from any thread and from callbacks.
  void Stop();

 private:
  EventLoop(UniqueFd epoll, EventFd stop) : epoll_(std::move(epoll)), stop_(std::move(stop)) {}

  UniqueFd epoll_;
  EventFd stop_;
  absl::Mutex mu_;
  absl::flat_hash_map<int, std::shared_ptr<Callback>> callbacks_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vmm

#endif  // VMM_BASE_EVENT_LOOP_H_
