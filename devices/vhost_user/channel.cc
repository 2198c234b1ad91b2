#include "devices/vhost_user/channel.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/unix_socket.h"

namespace vmm::vhost_user {

absl::StatusOr<Channel> Channel::Connect(const std::string& path, absl::Duration timeout) {
  sockaddr_un addr;
  if (!MakeUnixAddress(path, &addr)) {
    return absl::InvalidArgumentError(absl::StrCat("vhost-user socket path '", path,
                                                   "' must be 1 to ",
                                                   sizeof(addr.sun_path) - 1, " bytes"));
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus("vhost-user socket");
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(absl::StrCat("cannot connect to the vhost-user back-end at ", path));
  }
  return Channel(std::move(fd), timeout);
}

absl::Status Channel::Fail(absl::Status status) {
  if (error_.ok()) error_ = status;
  return status;
}

absl::Status Channel::Send(Request request, uint32_t flags, absl::Span<const uint8_t> payload,
                           absl::Span<const int> fds) {
  if (!error_.ok()) return error_;
  if (fds.size() > kMaxFds || payload.size() > kMaxPayload) {
    return absl::InvalidArgumentError(absl::StrCat(RequestName(request), ": ", fds.size(),
                                                   " fds, ", payload.size(), " bytes"));
  }
  std::vector<uint8_t> bytes = Encode(request, flags, payload);
  iovec iov{bytes.data(), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
  }
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::sendmsg(socket_.get(), &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return Fail(ErrnoStatus(absl::StrCat("vhost-user: sending ", RequestName(request))));
    }
    sent += static_cast<size_t>(n);
    // The fds went with the first bytes; the rest (if the socket took a
    // part) goes plain.
    iov.iov_base = bytes.data() + sent;
    iov.iov_len = bytes.size() - sent;
    msg.msg_control = nullptr;
    msg.msg_controllen = 0;
  }
  return absl::OkStatus();
}

absl::Status Channel::ReadFully(absl::Span<uint8_t> out, absl::Time deadline,
                                int* fds_received) {
  size_t got = 0;
  while (got < out.size()) {
    const absl::Duration left = deadline - absl::Now();
    pollfd p[2] = {{socket_.get(), POLLIN, 0}, {cancel_ ? cancel_->fd() : -1, POLLIN, 0}};
    const int ready =
        left <= absl::ZeroDuration() ? 0 : ::poll(p, 2, static_cast<int>(
                                                         absl::ToInt64Milliseconds(left) + 1));
    if (ready < 0 && errno == EINTR) continue;
    if (cancel_ != nullptr && cancel_->cancelled()) return cancel_->status();
    if (ready <= 0) {
      return absl::DeadlineExceededError(absl::StrCat(
          "the vhost-user back-end did not answer within ", absl::FormatDuration(timeout_)));
    }
    iovec iov{out.data() + got, out.size() - got};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = ::recvmsg(socket_.get(), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return ErrnoStatus("vhost-user: reading a reply");
    // Whatever fds came are closed here, whether or not the bytes are good.
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        ::close(fd);
        ++*fds_received;
      }
    }
    if (msg.msg_flags & MSG_CTRUNC) ++*fds_received;  // more than fit: refused all the same
    if (n == 0) {
      return absl::UnavailableError("the vhost-user back-end closed the connection");
    }
    got += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<Reply> Channel::Receive(Request request, ReplyShape shape, uint32_t config_size) {
  if (!error_.ok()) return error_;
  const absl::Time deadline = absl::Now() + timeout_;
  int fds = 0;
  Header header;
  absl::Status read = ReadFully(
      absl::MakeSpan(reinterpret_cast<uint8_t*>(&header), sizeof(header)), deadline, &fds);
  if (!read.ok()) {
    return Fail(absl::Status(read.code(), absl::StrCat("waiting for the reply to ",
                                                       RequestName(request), ": ",
                                                       read.message())));
  }
  if (header.size > kMaxPayload) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("vhost-user back-end's reply to ", RequestName(request), ": ", header.size,
                     " payload bytes (at most ", kMaxPayload, ")")));
  }
  std::vector<uint8_t> payload(header.size);
  read = ReadFully(absl::MakeSpan(payload), deadline, &fds);
  if (!read.ok()) {
    return Fail(absl::Status(read.code(), absl::StrCat("reading the reply to ",
                                                       RequestName(request), ": ",
                                                       read.message())));
  }
  if (fds > 0) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("vhost-user back-end's reply to ", RequestName(request), " carried ", fds,
                     " file descriptor(s); closed")));
  }
  absl::StatusOr<Reply> reply = ParseReply(request, shape, header, payload, config_size);
  if (!reply.ok()) return Fail(reply.status());
  return reply;
}

}  // namespace vmm::vhost_user
