// stdio, file and callback chardevs (socket_chardev.cc and pty_chardev.cc
// hold the other kinds).
#include "devices/chardev/chardev.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/unique_fd.h"
#include "devices/chardev/watch.h"

namespace vmm {
namespace {

using chardev_internal::Ready;
using chardev_internal::Watch;

// stdin/stdout or a file. stdio is not switched to non-blocking mode (the
// shell shares it): poll() says whether a read or a PIPE_BUF-sized write can
// go ahead without blocking.
class FdChardev : public Chardev {
 public:
  FdChardev(EventLoop& loop, int in, int out, UniqueFd owned, bool is_file)
      : in_(in), out_(out), owned_(std::move(owned)), is_file_(is_file),
        input_watch_(loop, EPOLLIN), output_watch_(loop, EPOLLOUT), resize_watch_(loop, EPOLLIN) {}
  ~FdChardev() override {
    Stop();
    if (blocked_winch_) {
      sigset_t winch;
      sigemptyset(&winch);
      sigaddset(&winch, SIGWINCH);
      pthread_sigmask(SIG_UNBLOCK, &winch, nullptr);
    }
  }

  void Start(Callbacks callbacks) override {
    callbacks_ = std::move(callbacks);
    if (is_file_ || !callbacks_.resized || !TerminalSize()) return;
    if (!winch_.valid()) {  // once for the chardev's life: a restarted user keeps it
      sigset_t winch, old;
      sigemptyset(&winch);
      sigaddset(&winch, SIGWINCH);
      if (pthread_sigmask(SIG_BLOCK, &winch, &old) != 0) return;
      blocked_winch_ = !sigismember(&old, SIGWINCH);
      winch_.Reset(::signalfd(-1, &winch, SFD_CLOEXEC | SFD_NONBLOCK));
      if (!winch_.valid()) return;
    }
    const int fd = winch_.get();
    std::function<void()> resized = callbacks_.resized;
    resize_watch_.Set(fd, true, [fd, resized] {
      signalfd_siginfo info;
      while (::read(fd, &info, sizeof(info)) == sizeof(info)) {
      }
      resized();
    });
  }

  void Stop() override {
    input_watch_.Off();
    output_watch_.Off();
    resize_watch_.Off();
    callbacks_ = {};
  }

  size_t Read(absl::Span<uint8_t> out) override {
    if (in_ < 0 || out.empty() || !Ready(in_, POLLIN)) return 0;
    ssize_t n = ::read(in_, out.data(), out.size());
    if (n > 0) return static_cast<size_t>(n);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    in_ = -1;  // end of input (or an error): no more input, ever
    input_watch_.Off();
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
    output_watch_.Off();
    return bytes.size();
  }

  bool InputEnded() const override { return had_input_ && in_ < 0; }

  // stdin that epoll cannot watch (a regular file, /dev/null) gives no input.
  void WatchInput(bool watch) override {
    if (!input_watch_.Set(in_, watch, callbacks_.readable) && watch && callbacks_.readable) {
      in_ = -1;
    }
  }
  // A file or stdout epoll cannot watch is always writable (regular files).
  void WatchOutput(bool watch) override { output_watch_.Set(out_, watch, callbacks_.writable); }

  std::optional<std::pair<uint16_t, uint16_t>> TerminalSize() const override {
    winsize ws{};
    if (is_file_ || out_ < 0 || ::ioctl(out_, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) {
      return std::nullopt;
    }
    return std::make_pair(ws.ws_col, ws.ws_row);
  }

 private:
  int in_;
  const bool had_input_ = in_ >= 0;
  int out_;
  UniqueFd owned_;
  bool is_file_;
  Callbacks callbacks_;
  Watch input_watch_;
  Watch output_watch_;
  UniqueFd winch_;  // SIGWINCH, when stdout is a terminal
  bool blocked_winch_ = false;
  Watch resize_watch_;
};


}  // namespace

absl::StatusOr<std::unique_ptr<Chardev>> MakeStdioChardev(EventLoop& loop, bool with_input) {
  return std::make_unique<FdChardev>(loop, with_input ? STDIN_FILENO : -1, STDOUT_FILENO,
                                     UniqueFd(), false);
}

absl::StatusOr<std::unique_ptr<Chardev>> MakeFileChardev(const std::string& path,
                                                         EventLoop& loop) {
  // O_NONBLOCK: a FIFO with no reader fails at once (ENXIO) instead of
  // hanging start-up; one with a reader is written without blocking, as the
  // chardev contract wants (regular files ignore the flag).
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK, 0644);
  if (fd < 0) {
    return ErrnoStatus(absl::StrCat("cannot open output file ", path,
                                    errno == ENXIO ? " (a FIFO nobody reads)" : ""));
  }
  return std::make_unique<FdChardev>(loop, -1, fd, UniqueFd(fd), true);
}

struct CallbackChardev::Input {
  UniqueFd read_end;
  UniqueFd write_end;
  Watch watch;
  Input(EventLoop& loop, UniqueFd r, UniqueFd w)
      : read_end(std::move(r)), write_end(std::move(w)), watch(loop, EPOLLIN) {}
};

absl::StatusOr<std::unique_ptr<CallbackChardev>> CallbackChardev::Create(
    std::function<void(std::string_view)> sink, EventLoop* loop) {
  std::unique_ptr<Input> input;
  if (loop != nullptr) {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
      return ErrnoStatus("console input: pipe2");
    }
    input = std::make_unique<Input>(*loop, UniqueFd(fds[0]), UniqueFd(fds[1]));
  }
  return std::unique_ptr<CallbackChardev>(new CallbackChardev(std::move(sink), std::move(input)));
}

CallbackChardev::CallbackChardev(std::function<void(std::string_view)> sink,
                                 std::unique_ptr<Input> input)
    : sink_(std::move(sink)), input_(std::move(input)) {}

CallbackChardev::~CallbackChardev() { Stop(); }

size_t CallbackChardev::SendInput(std::string_view bytes) {
  if (input_ == nullptr || bytes.empty()) return 0;
  ssize_t n;
  do {
    n = ::write(input_->write_end.get(), bytes.data(), bytes.size());
  } while (n < 0 && errno == EINTR);
  return n > 0 ? static_cast<size_t>(n) : 0;
}

void CallbackChardev::Start(Callbacks callbacks) { callbacks_ = std::move(callbacks); }

void CallbackChardev::Stop() {
  if (input_ != nullptr) input_->watch.Off();
  callbacks_ = {};
}

size_t CallbackChardev::Read(absl::Span<uint8_t> out) {
  if (input_ == nullptr || out.empty()) return 0;
  ssize_t n = ::read(input_->read_end.get(), out.data(), out.size());
  return n > 0 ? static_cast<size_t>(n) : 0;
}

size_t CallbackChardev::Write(absl::Span<const uint8_t> bytes) {
  if (sink_ && !bytes.empty()) {
    sink_(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  }
  return bytes.size();
}

void CallbackChardev::WatchInput(bool watch) {
  if (input_ != nullptr) input_->watch.Set(input_->read_end.get(), watch, callbacks_.readable);
}

std::unique_ptr<Chardev> MakeCallbackChardev(std::function<void(std::string_view)> sink) {
  absl::StatusOr<std::unique_ptr<CallbackChardev>> made =
      CallbackChardev::Create(std::move(sink), nullptr);  // no pipe: cannot fail
  return *std::move(made);
}

}  // namespace vmm
