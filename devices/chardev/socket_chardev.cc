// A Unix stream socket the VMM listens on, one client at a time.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/eventfd.h"
#include "base/status_macros.h"
#include "base/unique_fd.h"
#include "base/unix_socket.h"
#include "devices/chardev/chardev.h"
#include "devices/chardev/watch.h"

namespace vmm {
namespace {

using chardev_internal::Watch;

class SocketChardev : public Chardev {
 public:
  SocketChardev(EventLoop& loop, std::string path, UniqueFd listener, EventFd wake)
      : path_(std::move(path)), listener_(std::move(listener)),
        wake_(std::move(wake)), wake_watch_(loop, EPOLLIN), accept_watch_(loop, EPOLLIN),
        input_watch_(loop, EPOLLIN), output_watch_(loop, EPOLLOUT) {}
  ~SocketChardev() override {
    Stop();
    absl::MutexLock lock(&mu_);
    Disconnect();
    ::unlink(path_.c_str());
  }

  void Start(Callbacks callbacks) override {
    absl::MutexLock lock(&mu_);
    callbacks_ = std::move(callbacks);
    started_ = true;
    // A disconnect seen inside Read/Write is reported from here, outside the
    // device's call (and without mu_: the device calls back into us).
    wake_watch_.Set(wake_.fd(), true, [this] {
      (void)wake_.Read();
      std::function<void()> writable;
      {
        absl::MutexLock lock(&mu_);
        if (want_output_) writable = callbacks_.writable;
      }
      if (writable) writable();
    });
    if (!client_.valid()) ArmAccept();
  }

  void Stop() override {
    absl::MutexLock lock(&mu_);
    wake_watch_.Off();
    accept_watch_.Off();
    input_watch_.Off();
    output_watch_.Off();
    want_input_ = want_output_ = false;
    callbacks_ = {};
    started_ = false;
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
    input_watch_.Set(client_.get(), watch && client_.valid(), callbacks_.readable);
  }
  void SetOutputWatch(bool watch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    want_output_ = watch;
    output_watch_.Set(client_out_.get(), watch && client_.valid(), callbacks_.writable);
  }

  void ArmAccept() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    accept_watch_.Set(listener_.get(), true, [this] {
      absl::MutexLock lock(&mu_);
      Accept();
    });
  }

  void Accept() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    client_.Reset(fd);
    client_out_.Reset(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    accept_watch_.Off();  // one client at a time
    SetInputWatch(want_input_);
    SetOutputWatch(want_output_);
  }

  void Disconnect() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!client_.valid()) return;
    input_watch_.Off();
    output_watch_.Off();
    client_.Reset();
    client_out_.Reset();
    if (started_) ArmAccept();
    // Output that was waiting for this client is now dropped: let the
    // device know it can go on.
    if (want_output_) (void)wake_.Write(1);
  }

  const std::string path_;
  const UniqueFd listener_;
  EventFd wake_;
  // Device calls come serialised by the device, possibly on a vCPU thread
  // (the UART's transmit); Accept and the wake-up run on the loop thread.
  absl::Mutex mu_;
  Callbacks callbacks_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  UniqueFd client_ ABSL_GUARDED_BY(mu_);
  UniqueFd client_out_ ABSL_GUARDED_BY(mu_);  // the client, for the output watch
  bool want_input_ ABSL_GUARDED_BY(mu_) = false;
  bool want_output_ ABSL_GUARDED_BY(mu_) = false;
  Watch wake_watch_ ABSL_GUARDED_BY(mu_);
  Watch accept_watch_ ABSL_GUARDED_BY(mu_);
  Watch input_watch_ ABSL_GUARDED_BY(mu_);
  Watch output_watch_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<Chardev>> MakeSocketChardev(const std::string& path,
                                                           EventLoop& loop) {
  // A live socket there (another VM's console) is refused, a stale one replaced.
  ASSIGN_OR_RETURN(UniqueFd listener, ListenUnix(path, 4, "socket"));
  ASSIGN_OR_RETURN(EventFd wake, EventFd::Create());
  return std::make_unique<SocketChardev>(loop, path, std::move(listener), std::move(wake));
}

}  // namespace vmm
