// For tests of host-side I/O on a real event loop: the loop on its own
// thread, a per-process temporary path, a Unix-socket client, and waiting for
// a condition with a deadline.
#ifndef VMM_TESTS_FAKES_LOOP_THREAD_H_
#define VMM_TESTS_FAKES_LOOP_THREAD_H_

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/time/clock.h"
#include "base/event_loop.h"
#include "base/unix_socket.h"

namespace vmm::testing {

class LoopThread {
 public:
  LoopThread() : loop_(std::move(EventLoop::Create()).value()) {
    thread_ = std::thread([this] { (void)loop_->Run(); });
  }
  ~LoopThread() {
    loop_->Stop();
    thread_.join();
  }
  EventLoop& loop() { return *loop_; }

 private:
  std::unique_ptr<EventLoop> loop_;
  std::thread thread_;
};

// $TEST_TMPDIR (or /tmp)/vmm-test-PID-NAME.
inline std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/vmm-test-" + std::to_string(getpid()) +
         "-" + name;
}

// A connected, blocking client of the Unix stream socket at `path`, or -1.
inline int ConnectUnix(const std::string& path) {
  sockaddr_un addr;
  if (!MakeUnixAddress(path, &addr)) return -1;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Polls `done` until it holds (true) or 5 s pass (false).
template <typename F>
bool Eventually(F done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

}  // namespace vmm::testing

#endif  // VMM_TESTS_FAKES_LOOP_THREAD_H_
