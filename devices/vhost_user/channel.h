// One vhost-user connection, front-end side: requests out (with file
// descriptors in SCM_RIGHTS), replies in, checked.
//
// The back-end is another program and not trusted: a reply is read only up
// to kMaxPayload, must come within the timeout, and may not carry file
// descriptors (any it does carry are closed and the reply refused). After
// any failure the connection is out of step, so the channel stays broken:
// every later call returns the first error (the device then asks the guest
// for a reset; vmm and the other devices go on).
//
// Not thread-safe: one caller at a time (the device, under its lock).
#ifndef VMM_DEVICES_VHOST_USER_CHANNEL_H_
#define VMM_DEVICES_VHOST_USER_CHANNEL_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "base/cancellation.h"
#include "base/unique_fd.h"
#include "devices/vhost_user/message.h"

namespace vmm::vhost_user {

class Channel {
 public:
  // Over an already connected stream socket (tests: one end of a socketpair).
  explicit Channel(UniqueFd socket, absl::Duration timeout = absl::Seconds(5))
      : socket_(std::move(socket)), timeout_(timeout) {}
  // Connects to the back-end listening at `path`.
  static absl::StatusOr<Channel> Connect(const std::string& path,
                                         absl::Duration timeout = absl::Seconds(5));

  // Sends `request` with `payload` and `fds` (at most kMaxFds; they stay
  // owned by the caller).
  absl::Status Send(Request request, uint32_t flags, absl::Span<const uint8_t> payload,
                    absl::Span<const int> fds = {});
  // Reads and checks the reply to `request`.
  absl::StatusOr<Reply> Receive(Request request, ReplyShape shape, uint32_t config_size = 0);

  // While set, a wait for a reply also ends when `cancel` is cancelled (its
  // Cancelled status; the channel is then broken). For the handshake at
  // start-up, which a user's Ctrl-C must be able to cut short; cleared
  // (nullptr) before `cancel` goes away.
  void set_cancel(const Cancellation* cancel) { cancel_ = cancel; }

  bool broken() const { return !error_.ok(); }
  int fd() const { return socket_.get(); }

 private:
  // Reads exactly `out.size()` bytes by the deadline; fds that come along
  // are counted in `fds_received` and closed.
  absl::Status ReadFully(absl::Span<uint8_t> out, absl::Time deadline, int* fds_received);
  absl::Status Fail(absl::Status status);

  UniqueFd socket_;
  absl::Duration timeout_;
  const Cancellation* cancel_ = nullptr;
  absl::Status error_;  // the first failure; OK while the channel is usable
};

}  // namespace vmm::vhost_user

#endif  // VMM_DEVICES_VHOST_USER_CHANNEL_H_
