#include "devices/virtio/console/console_backend.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/eventfd.h"
#include "base/status_macros.h"

namespace vmm {
namespace {

bool Ready(int fd, short events) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & (events | POLLHUP | POLLERR)) != 0;
}

// One fd watched for one kind of readiness on the loop, on demand.
class Watch {
 public:
  Watch(EventLoop& loop, uint32_t events) : loop_(&loop), events_(events) {}
  ~Watch() { Set(-1, false, nullptr); }
  // Watches `fd` (or stops, with on=false); returns whether it is watched.
  bool Set(int fd, bool on, const std::function<void()>* callback) {
    if (fd_ >= 0 && (!on || fd != fd_)) {
      (void)loop_->Remove(fd_);
      fd_ = -1;
    }
    if (on && fd >= 0 && fd_ < 0 && callback != nullptr) {
      std::function<void()> cb = *callback;
      if (loop_->Add(fd, events_, [cb](uint32_t) { cb(); }).ok()) fd_ = fd;
    }
    return fd_ >= 0;
  }

 private:
  EventLoop* loop_;
  uint32_t events_;
  int fd_ = -1;
};

// stdin/stdout or a file. stdio is not switched to non-blocking mode (COM1
// shares stdout, the shell shares both): poll() says whether a read or a
// PIPE_BUF-sized write can go ahead without blocking.
class FdBackend : public ConsoleBackend {
 public:
  FdBackend(EventLoop& loop, int in, int out, UniqueFd owned, bool is_file)
      : in_(in), out_(out), owned_(std::move(owned)), is_file_(is_file),
        input_watch_(loop, EPOLLIN), output_watch_(loop, EPOLLOUT), resize_watch_(loop, EPOLLIN) {}
  ~FdBackend() override {
    resize_watch_.Set(-1, false, nullptr);
    if (blocked_winch_) {
      sigset_t winch;
      sigemptyset(&winch);
      sigaddset(&winch, SIGWINCH);
      pthread_sigmask(SIG_UNBLOCK, &winch, nullptr);
    }
  }

  void Start(Callbacks callbacks) override {
    callbacks_ = std::move(callbacks);
    if (is_file_ || !TerminalSize() || !callbacks_.resized) return;
    sigset_t winch, old;
    sigemptyset(&winch);
    sigaddset(&winch, SIGWINCH);
    if (pthread_sigmask(SIG_BLOCK, &winch, &old) != 0) return;
    blocked_winch_ = !sigismember(&old, SIGWINCH);
    winch_.Reset(::signalfd(-1, &winch, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!winch_.valid()) return;
    const int fd = winch_.get();
    std::function<void()> resized = callbacks_.resized;
    on_winch_ = [fd, resized] {
      signalfd_siginfo info;
      while (::read(fd, &info, sizeof(info)) == sizeof(info)) {
      }
      resized();
    };
    resize_watch_.Set(fd, true, &on_winch_);
  }

  size_t Read(absl::Span<uint8_t> out) override {
    if (in_ < 0 || out.empty() || !Ready(in_, POLLIN)) return 0;
    ssize_t n = ::read(in_, out.data(), out.size());
    if (n > 0) return static_cast<size_t>(n);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    in_ = -1;  // end of input (or an error): no more input, ever
    input_watch_.Set(-1, false, nullptr);
    return 0;
  }

  size_t Write(absl::Span<const uint8_t> bytes) override {
    if (out_ < 0 || bytes.empty()) return bytes.size();
    if (!is_file_ && !Ready(out_, POLLOUT)) return 0;
    const size_t chunk = is_file_ ? bytes.size() : std::min<size_t>(bytes.size(), PIPE_BUF);
    ssize_t n;
    do {
      n = ::write(out_, bytes.data(), chunk);
    } while (n < 0 && errno == EINTR);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EAGAIN) return 0;
    out_ = -1;  // gone (EPIPE, a full disk): drop from now on
    output_watch_.Set(-1, false, nullptr);
    return bytes.size();
  }

  void WatchInput(bool watch) override {
    if (!input_watch_.Set(in_, watch, &callbacks_.readable) && watch) in_ = -1;
  }
  // A file or stdout epoll cannot watch is always writable (regular files).
  void WatchOutput(bool watch) override { output_watch_.Set(out_, watch, &callbacks_.writable); }

  std::optional<std::pair<uint16_t, uint16_t>> TerminalSize() const override {
    winsize ws{};
    if (is_file_ || out_ < 0 || ::ioctl(out_, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) {
      return std::nullopt;
    }
    return std::make_pair(ws.ws_col, ws.ws_row);
  }

 private:
  int in_;
  int out_;
  UniqueFd owned_;
  bool is_file_;
  Callbacks callbacks_;
  Watch input_watch_;
  Watch output_watch_;
  UniqueFd winch_;  // SIGWINCH, when stdout is a terminal
  bool blocked_winch_ = false;
  std::function<void()> on_winch_;
  Watch resize_watch_;
};

class SocketBackend : public ConsoleBackend {
 public:
  SocketBackend(EventLoop& loop, std::string path, UniqueFd listener, EventFd wake)
      : loop_(&loop), path_(std::move(path)), listener_(std::move(listener)),
        wake_(std::move(wake)), accept_watch_(loop, EPOLLIN), input_watch_(loop, EPOLLIN),
        output_watch_(loop, EPOLLOUT) {}
  ~SocketBackend() override {
    if (started_) (void)loop_->Remove(wake_.fd());
    absl::MutexLock lock(&mu_);
    Disconnect();
    accept_watch_.Set(-1, false, nullptr);
    ::unlink(path_.c_str());
  }

  void Start(Callbacks callbacks) override {
    absl::MutexLock lock(&mu_);
    callbacks_ = std::move(callbacks);
    accept_ = [this] {
      absl::MutexLock lock(&mu_);
      Accept();
    };
    // A disconnect seen inside Read/Write is reported from here, outside the
    // device's call (and without mu_: the device calls back into us).
    started_ = loop_->Add(wake_.fd(), EPOLLIN, [this](uint32_t) {
                      (void)wake_.Read();
                      bool want;
                      {
                        absl::MutexLock lock(&mu_);
                        want = want_output_;
                      }
                      if (want) callbacks_.writable();
                    }).ok();
    accept_watch_.Set(listener_.get(), true, &accept_);
  }

  size_t Read(absl::Span<uint8_t> out) override {
    absl::MutexLock lock(&mu_);
    if (!client_.valid() || out.empty()) return 0;
    ssize_t n = ::recv(client_.get(), out.data(), out.size(), MSG_DONTWAIT);
    if (n > 0) return static_cast<size_t>(n);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    Disconnect();
    return 0;
  }

  size_t Write(absl::Span<const uint8_t> bytes) override {
    absl::MutexLock lock(&mu_);
    if (!client_.valid()) return bytes.size();  // nobody listening: dropped
    ssize_t n = ::send(client_.get(), bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EAGAIN || errno == EINTR) return 0;
    Disconnect();
    return bytes.size();
  }

  void WatchInput(bool watch) override {
    absl::MutexLock lock(&mu_);
    SetInputWatch(watch);
  }
  void WatchOutput(bool watch) override {
    absl::MutexLock lock(&mu_);
    SetOutputWatch(watch);
  }

 private:
  void SetInputWatch(bool watch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    want_input_ = watch;
    input_watch_.Set(client_.get(), watch && client_.valid(), &callbacks_.readable);
  }
  void SetOutputWatch(bool watch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    want_output_ = watch;
    output_watch_.Set(client_out_.get(), watch && client_.valid(), &callbacks_.writable);
  }

  void Accept() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    client_.Reset(fd);
    // The loop keys watches by fd: output readiness is watched on a dup.
    client_out_.Reset(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    accept_watch_.Set(-1, false, nullptr);  // one client at a time
    SetInputWatch(want_input_);
    SetOutputWatch(want_output_);
  }

  void Disconnect() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!client_.valid()) return;
    input_watch_.Set(-1, false, nullptr);
    output_watch_.Set(-1, false, nullptr);
    client_.Reset();
    client_out_.Reset();
    accept_watch_.Set(listener_.get(), true, &accept_);
    // Output that was waiting for this client is now dropped: let the
    // device know it can go on.
    if (want_output_) (void)wake_.Write(1);
  }

  EventLoop* const loop_;
  const std::string path_;
  const UniqueFd listener_;
  EventFd wake_;
  bool started_ = false;
  Callbacks callbacks_;  // set once in Start
  // Device calls come serialised by the device, possibly on a vCPU thread
  // (a notify that missed its ioeventfd); Accept runs on the loop thread.
  absl::Mutex mu_;
  std::function<void()> accept_;
  UniqueFd client_ ABSL_GUARDED_BY(mu_);
  UniqueFd client_out_ ABSL_GUARDED_BY(mu_);
  bool want_input_ ABSL_GUARDED_BY(mu_) = false;
  bool want_output_ ABSL_GUARDED_BY(mu_) = false;
  Watch accept_watch_ ABSL_GUARDED_BY(mu_);
  Watch input_watch_ ABSL_GUARDED_BY(mu_);
  Watch output_watch_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<ConsoleBackend>> MakeStdioConsoleBackend(EventLoop& loop) {
  return std::make_unique<FdBackend>(loop, STDIN_FILENO, STDOUT_FILENO, UniqueFd(), false);
}

absl::StatusOr<std::unique_ptr<ConsoleBackend>> MakeFileConsoleBackend(const std::string& path,
                                                                       EventLoop& loop) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(absl::StrCat("cannot open console output file ", path));
  return std::make_unique<FdBackend>(loop, -1, fd, UniqueFd(fd), true);
}

absl::StatusOr<std::unique_ptr<ConsoleBackend>> MakeSocketConsoleBackend(const std::string& path,
                                                                         EventLoop& loop) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("console socket path '", path, "' must be 1 to ",
                     sizeof(addr.sun_path) - 1, " bytes"));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listener.valid()) return ErrnoStatus("console socket");
  // A stale socket from an earlier run is replaced; any other file is not.
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
  if (::bind(listener.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(absl::StrCat("cannot listen on console socket ", path));
  }
  if (::listen(listener.get(), 4) != 0) {
    return ErrnoStatus(absl::StrCat("cannot listen on console socket ", path));
  }
  ASSIGN_OR_RETURN(EventFd wake, EventFd::Create());
  return std::make_unique<SocketBackend>(loop, path, std::move(listener), std::move(wake));
}

}  // namespace vmm
