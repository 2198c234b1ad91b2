#include "devices/virtio/vsock/vsock_connection.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"

namespace vmm {

VsockConnection::VsockConnection(UniqueFd fd, State state, uint64_t guest_cid,
                                 uint32_t local_port, uint32_t peer_port, uint32_t buffer_size,
                                 VsockStats* stats)
    : fd_(std::move(fd)),
      state_(state),
      guest_cid_(guest_cid),
      local_port_(local_port),
      peer_port_(peer_port),
      stats_(stats),
      buffer_size_(buffer_size) {}

VsockConnection VsockConnection::HostInitiated(UniqueFd fd, uint64_t guest_cid,
                                               uint32_t local_port, uint32_t peer_port,
                                               uint32_t buffer_size, VsockStats* stats) {
  VsockConnection c(std::move(fd), State::kLocalInit, guest_cid, local_port, peer_port,
                    buffer_size, stats);
  c.pending_ = kRequest;
  return c;
}

VsockConnection VsockConnection::GuestInitiated(UniqueFd fd, const VsockHeader& request,
                                                uint32_t buffer_size, VsockStats* stats) {
  VsockConnection c(std::move(fd), State::kPeerInit, request.src_cid, request.dst_port,
                    request.src_port, buffer_size, stats);
  c.TakePeerCredit(request);
  c.pending_ = kResponse;
  return c;
}

uint32_t VsockConnection::peer_credit() const {
  const uint32_t in_flight = tx_cnt_ - peer_fwd_cnt_;  // wraps like the counters
  return in_flight > peer_buf_alloc_ ? 0 : peer_buf_alloc_ - in_flight;
}

void VsockConnection::TakePeerCredit(const VsockHeader& header) {
  peer_buf_alloc_ = header.buf_alloc;
  peer_fwd_cnt_ = header.fwd_cnt;
}

void VsockConnection::Kill() {
  if (state_ == State::kKilled) return;
  state_ = State::kKilled;
  pending_ = kRst;
  buffer_.clear();
  local_bytes_ = 0;
  host_readable_ = false;
  // The host client sees the connection end now, not when we drop it.
  if (fd_.valid()) ::shutdown(fd_.get(), SHUT_RDWR);
}

void VsockConnection::OnGuestPacket(const VsockHeader& header, absl::Span<const iovec> payload) {
  if (state_ == State::kKilled) return;
  TakePeerCredit(header);  // every header carries the guest's credit
  const uint16_t op = header.op;
  if (op == VIRTIO_VSOCK_OP_RST) {
    // The guest is done with it; no answer.
    state_ = State::kKilled;
    pending_ = 0;
    return;
  }
  if (op == VIRTIO_VSOCK_OP_CREDIT_UPDATE) return;
  if (op == VIRTIO_VSOCK_OP_CREDIT_REQUEST) {
    pending_ |= kCreditUpdate;
    return;
  }
  switch (state_) {
    case State::kLocalInit:
      if (op != VIRTIO_VSOCK_OP_RESPONSE) return Kill();
      state_ = State::kEstablished;
      // Firecracker's answer to the host client once the guest accepted.
      SendLocalBytes(absl::StrCat("OK ", local_port_, "\n"));
      return;
    case State::kPeerInit:
      // Nothing but credit traffic before our RESPONSE.
      return Kill();
    case State::kEstablished:
    case State::kLocalClosed:
      break;
    case State::kKilled:
      return;
  }
  if (op == VIRTIO_VSOCK_OP_SHUTDOWN) return OnPeerShutdown(header.flags);
  if (op != VIRTIO_VSOCK_OP_RW) {
    ++stats_->bad_packet;  // REQUEST/RESPONSE on a live connection, unknown ops
    return Kill();
  }
  if (peer_shut_send_) {
    ++stats_->bad_packet;  // data after it said it would send no more
    return Kill();
  }
  const uint32_t len = header.len;
  // Honour the credit we granted: this is what bounds buffer_.
  if (uint64_t{rx_cnt_ - fwd_cnt_} + len > buffer_size_) {
    ++stats_->credit_violations;
    return Kill();
  }
  rx_cnt_ += len;
  if (len != 0) SendToHost(payload);
}

void VsockConnection::OnPeerShutdown(uint32_t flags) {
  if (flags & VIRTIO_VSOCK_SHUTDOWN_RCV) peer_shut_rcv_ = true;
  if (flags & VIRTIO_VSOCK_SHUTDOWN_SEND) peer_shut_send_ = true;
  FinishPeerShutdown();
}

void VsockConnection::FinishPeerShutdown() {
  if (state_ == State::kKilled || !buffer_.empty()) return;
  if (peer_shut_send_ && peer_shut_rcv_) {
    // Linux completes its close when the peer answers with RST.
    Kill();
  } else if (peer_shut_send_ && !host_write_shut_) {
    ::shutdown(fd_.get(), SHUT_WR);
    host_write_shut_ = true;
  }
}

void VsockConnection::SendToHost(absl::Span<const iovec> payload) {
  size_t sent = 0;
  if (buffer_.empty()) {
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(payload.data());
    msg.msg_iovlen = payload.size();
    ssize_t n;
    do {
      n = ::sendmsg(fd_.get(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return Kill();
    sent = n < 0 ? 0 : static_cast<size_t>(n);
    Forwarded(static_cast<uint32_t>(sent));
  }
  // The rest waits for EPOLLOUT; the credit check keeps it within buf_alloc.
  size_t skip = sent;
  for (const iovec& v : payload) {
    if (skip >= v.iov_len) {
      skip -= v.iov_len;
      continue;
    }
    buffer_.append(static_cast<const char*>(v.iov_base) + skip, v.iov_len - skip);
    skip = 0;
  }
}

void VsockConnection::SendLocalBytes(const std::string& bytes) {
  buffer_.append(bytes);
  local_bytes_ += static_cast<uint32_t>(bytes.size());
  Flush();
}

void VsockConnection::Flush() {
  while (!buffer_.empty()) {
    ssize_t n = ::send(fd_.get(), buffer_.data(), buffer_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) return Kill();
    const uint32_t ours = std::min<uint32_t>(local_bytes_, static_cast<uint32_t>(n));
    local_bytes_ -= ours;
    buffer_.erase(0, static_cast<size_t>(n));
    Forwarded(static_cast<uint32_t>(n) - ours);
  }
  FinishPeerShutdown();
}

void VsockConnection::Forwarded(uint32_t n) {
  if (n == 0) return;
  fwd_cnt_ += n;
  // What the guest believes it may still send, from our last header.
  const uint32_t guest_view_used = rx_cnt_ - last_sent_fwd_cnt_;
  if (guest_view_used > buffer_size_ / 2) pending_ |= kCreditUpdate;
}

bool VsockConnection::CanReadHost() const {
  return state_ == State::kEstablished && !peer_shut_rcv_;
}

uint32_t VsockConnection::WantedEvents() const {
  if (state_ == State::kKilled) return 0;
  uint32_t events = 0;
  if (CanReadHost() && !host_readable_ && peer_credit() > 0) events |= EPOLLIN;
  if (!buffer_.empty()) events |= EPOLLOUT;
  return events;
}

void VsockConnection::OnHostEvent(uint32_t events) {
  if (state_ == State::kKilled) return;
  if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && CanReadHost()) host_readable_ = true;
  if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && !buffer_.empty()) Flush();
}

bool VsockConnection::HasRxWork() const {
  return pending_ != 0 || (CanReadHost() && host_readable_ && peer_credit() > 0);
}

VsockHeader VsockConnection::MakeHeader(uint16_t op, uint32_t len, uint32_t flags) {
  VsockHeader h{};
  h.src_cid = kVsockHostCid;
  h.dst_cid = guest_cid_;
  h.src_port = local_port_;
  h.dst_port = peer_port_;
  h.len = len;
  h.type = VIRTIO_VSOCK_TYPE_STREAM;
  h.op = op;
  h.flags = flags;
  h.buf_alloc = buffer_size_;
  h.fwd_cnt = fwd_cnt_;
  // Every header tells the guest our credit: no separate update owed.
  last_sent_fwd_cnt_ = fwd_cnt_;
  pending_ &= ~kCreditUpdate;
  return h;
}

uint32_t VsockConnection::FillRx(const DescriptorChain& chain, const GuestMemory& memory) {
  const uint64_t writable = chain.writable_bytes();
  if (writable < sizeof(VsockHeader)) return 0;
  constexpr uint32_t kBothWays = VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND;
  VsockHeader h;
  uint32_t payload = 0;
  if (pending_ & kRst) {
    pending_ = 0;
    h = MakeHeader(VIRTIO_VSOCK_OP_RST, 0, 0);
  } else if (pending_ & kRequest) {
    pending_ &= ~kRequest;
    h = MakeHeader(VIRTIO_VSOCK_OP_REQUEST, 0, 0);
  } else if (pending_ & kResponse) {
    pending_ &= ~kResponse;
    state_ = State::kEstablished;
    h = MakeHeader(VIRTIO_VSOCK_OP_RESPONSE, 0, 0);
  } else if (pending_ & kCreditRequest) {
    pending_ &= ~kCreditRequest;
    h = MakeHeader(VIRTIO_VSOCK_OP_CREDIT_REQUEST, 0, 0);
  } else if (pending_ & kCreditUpdate) {
    h = MakeHeader(VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, 0);
  } else if (CanReadHost() && host_readable_ && peer_credit() > 0) {
    const uint32_t want = static_cast<uint32_t>(std::min<uint64_t>(
        {writable - sizeof(VsockHeader), peer_credit(), kVsockMaxPayload}));
    if (want == 0) return 0;  // a header-only buffer: data waits for a bigger one
    absl::StatusOr<std::vector<iovec>> iov =
        chain.WritableIovecs(memory, sizeof(VsockHeader), want);
    if (!iov.ok()) return 0;
    msghdr msg{};
    msg.msg_iov = iov->data();
    msg.msg_iovlen = iov->size();
    ssize_t n;
    do {
      n = ::recvmsg(fd_.get(), &msg, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
      payload = static_cast<uint32_t>(n);
      tx_cnt_ += payload;
      if (payload < want) host_readable_ = false;  // drained; epoll tells us of more
      // Out of credit with data likely waiting: ask the guest to tell us
      // when it has read some.
      if (payload == want && peer_credit() == 0) pending_ |= kCreditRequest;
      h = MakeHeader(VIRTIO_VSOCK_OP_RW, payload, 0);
    } else if (n == 0) {
      // The host client closed: tell the guest, which answers with RST.
      state_ = State::kLocalClosed;
      host_readable_ = false;
      h = MakeHeader(VIRTIO_VSOCK_OP_SHUTDOWN, 0, kBothWays);
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      host_readable_ = false;
      return 0;
    } else {
      Kill();
      pending_ = 0;
      h = MakeHeader(VIRTIO_VSOCK_OP_RST, 0, 0);
    }
  } else {
    return 0;
  }
  chain.WriteTo(memory, 0, absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(&h), sizeof(h)));
  ++stats_->rx_packets;
  return static_cast<uint32_t>(sizeof(VsockHeader)) + payload;
}

}  // namespace vmm
