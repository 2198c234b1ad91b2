// A pseudo-terminal: the VMM holds the master, the user opens /dev/pts/N.
//
// Whether somebody has the terminal open shows on the master as a hang-up
// (POLLHUP) once the last opener closed it. The terminal is opened and
// closed once at creation (to put it in raw mode), so "nobody" reads as a
// hang-up from the start. While it is hung up, output is dropped (written,
// the kernel would keep it for the next opener, stale) and a timer polls for
// an opener; epoll cannot wait for a hang-up to end.
//
// Output that would block is retried on the master's EPOLLOUT and, as a
// safety net, every kPtyOutputRetryMs: the kernel frees room in a pty when
// its reader reads, but wakes the master's writers only if the terminal had
// been throttled (seen here: a writer waiting on EPOLLOUT after a short
// write was never woken although the reader drained everything).
#include <fcntl.h>
#include <stdlib.h>
#include <sys/timerfd.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/status_macros.h"
#include "base/unique_fd.h"
#include "devices/chardev/chardev.h"
#include "devices/chardev/watch.h"

namespace vmm {
namespace {

using chardev_internal::Watch;

static_assert(kPtyReconnectPollMs > 0 && kPtyReconnectPollMs < 1000);
static_assert(kPtyOutputRetryMs > 0 && kPtyOutputRetryMs < 1000);

bool HungUp(int fd) {
  pollfd p{fd, 0, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLHUP) != 0;
}

class PtyChardev : public Chardev {
 public:
  PtyChardev(EventLoop& loop, UniqueFd master, std::string path, UniqueFd timer)
      : master_(std::move(master)), master_out_(::fcntl(master_.get(), F_DUPFD_CLOEXEC, 0)),
        path_(std::move(path)), timer_(std::move(timer)), timer_watch_(loop, EPOLLIN),
        input_watch_(loop, EPOLLIN), output_watch_(loop, EPOLLOUT) {}
  ~PtyChardev() override { Stop(); }

  void Start(Callbacks callbacks) override {
    absl::MutexLock lock(&mu_);
    callbacks_ = std::move(callbacks);
    started_ = true;
    timer_watch_.Set(timer_.get(), true, [this] { OnTimer(); });
    connected_ = !HungUp(master_.get());
    UpdateTimer();
  }

  void Stop() override {
    absl::MutexLock lock(&mu_);
    timer_watch_.Off();
    input_watch_.Off();
    output_watch_.Off();
    want_input_ = want_output_ = false;
    callbacks_ = {};
    started_ = false;
    UpdateTimer();
  }

  size_t Read(absl::Span<uint8_t> out) override {
    absl::MutexLock lock(&mu_);
    if (!connected_ || out.empty()) return 0;
    ssize_t n = ::read(master_.get(), out.data(), out.size());
    if (n > 0) return static_cast<size_t>(n);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    Disconnect();  // EIO: the last opener closed it
    return 0;
  }

  size_t Write(absl::Span<const uint8_t> bytes) override {
    absl::MutexLock lock(&mu_);
    if (connected_ && HungUp(master_.get())) Disconnect();
    if (!connected_ || bytes.empty()) return bytes.size();  // nobody reading: dropped
    ssize_t n = ::write(master_.get(), bytes.data(), bytes.size());
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EAGAIN || errno == EINTR) return 0;  // the reader is behind
    Disconnect();
    return bytes.size();
  }

  void WatchInput(bool watch) override {
    absl::MutexLock lock(&mu_);
    want_input_ = watch;
    input_watch_.Set(master_.get(), watch && connected_, callbacks_.readable);
  }
  void WatchOutput(bool watch) override {
    absl::MutexLock lock(&mu_);
    want_output_ = watch;
    output_watch_.Set(master_out_.get(), watch && connected_, callbacks_.writable);
    UpdateTimer();
  }

  std::string path() const override { return path_; }

 private:
  // Polls for an opener while nobody has the terminal, and retries output
  // while some waits; idle otherwise.
  void UpdateTimer() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int ms = !started_ ? 0
                   : !connected_ ? kPtyReconnectPollMs
                   : want_output_ ? kPtyOutputRetryMs
                                  : 0;
    if (ms == timer_ms_) return;
    timer_ms_ = ms;
    itimerspec spec{};
    spec.it_value.tv_nsec = spec.it_interval.tv_nsec = ms * 1000000L;
    (void)::timerfd_settime(timer_.get(), 0, &spec, nullptr);
  }

  void Disconnect() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    connected_ = false;
    input_watch_.Off();
    output_watch_.Off();
    UpdateTimer();
  }

  // Loop thread, while the timer runs (see UpdateTimer).
  void OnTimer() {
    std::function<void()> writable;
    {
      absl::MutexLock lock(&mu_);
      uint64_t ticks;
      (void)::read(timer_.get(), &ticks, sizeof(ticks));
      if (!connected_ && !HungUp(master_.get())) {
        connected_ = true;
        input_watch_.Set(master_.get(), want_input_, callbacks_.readable);
        output_watch_.Set(master_out_.get(), want_output_, callbacks_.writable);
      }
      UpdateTimer();
      // Output waiting is tried again (if the reader left, it is dropped now).
      if (want_output_) writable = callbacks_.writable;
    }
    if (writable) writable();
  }

  const UniqueFd master_;
  const UniqueFd master_out_;  // the master, for the output watch
  const std::string path_;
  const UniqueFd timer_;
  absl::Mutex mu_;
  Callbacks callbacks_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  bool want_input_ ABSL_GUARDED_BY(mu_) = false;
  bool want_output_ ABSL_GUARDED_BY(mu_) = false;
  int timer_ms_ ABSL_GUARDED_BY(mu_) = 0;  // the timer's period; 0: disarmed
  Watch timer_watch_ ABSL_GUARDED_BY(mu_);
  Watch input_watch_ ABSL_GUARDED_BY(mu_);
  Watch output_watch_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<Chardev>> MakePtyChardev(EventLoop& loop) {
  UniqueFd master(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK));
  if (!master.valid()) return ErrnoStatus("cannot create a pty");
  if (::grantpt(master.get()) != 0 || ::unlockpt(master.get()) != 0) {
    return ErrnoStatus("cannot unlock the new pty");
  }
  char name[64];
  if (::ptsname_r(master.get(), name, sizeof(name)) != 0) {
    return ErrnoStatus("cannot name the new pty");
  }
  // Raw mode (no echo, no line editing, no CR/LF mapping), set once through
  // a first open; the terminal keeps it for later openers.
  UniqueFd slave(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  termios mode;
  if (!slave.valid() || ::tcgetattr(slave.get(), &mode) != 0) {
    return ErrnoStatus(absl::StrCat("cannot open the new pty ", name));
  }
  ::cfmakeraw(&mode);
  if (::tcsetattr(slave.get(), TCSANOW, &mode) != 0) {
    return ErrnoStatus(absl::StrCat("cannot set raw mode on ", name));
  }
  slave.Reset();
  UniqueFd timer(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!timer.valid()) return ErrnoStatus("timerfd_create");
  return std::make_unique<PtyChardev>(loop, std::move(master), name, std::move(timer));
}

}  // namespace vmm
