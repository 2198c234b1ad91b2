#include "devices/virtio/vsock/vsock_muxer.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/status_macros.h"
#include "base/unix_socket.h"

namespace vmm {
namespace {


int64_t MonotonicNs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

absl::StatusOr<std::unique_ptr<VsockMuxer>> VsockMuxer::Create(VsockMuxerOptions options,
                                                               VsockStats* stats) {
  const std::string& path = options.socket_path;
  ASSIGN_OR_RETURN(UniqueFd listener, ListenUnix(path, 16, "vsock socket"));
  UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
  UniqueFd timer(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenerToken;
  epoll_event timer_ev{};
  timer_ev.events = EPOLLIN;
  timer_ev.data.u64 = kTimerToken;
  if (!epoll.valid() || !timer.valid() ||
      ::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, listener.get(), &ev) != 0 ||
      ::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, timer.get(), &timer_ev) != 0) {
    absl::Status s = ErrnoStatus("vsock: epoll");
    ::unlink(path.c_str());
    return s;
  }
  return std::unique_ptr<VsockMuxer>(new VsockMuxer(std::move(options), stats, std::move(listener),
                                                    std::move(epoll), std::move(timer)));
}

VsockMuxer::~VsockMuxer() {
  DropConnections();
  handshakes_.clear();
  ::unlink(options_.socket_path.c_str());
}

const VsockConnection* VsockMuxer::connection(uint32_t local_port, uint32_t peer_port) const {
  auto it = connections_.find(Key(local_port, peer_port));
  return it == connections_.end() ? nullptr : it->second.conn.get();
}

void VsockMuxer::HandleHostEvents() {
  constexpr int kMaxEvents = 32;
  epoll_event events[kMaxEvents];
  int n;
  do {
    n = ::epoll_wait(epoll_.get(), events, kMaxEvents, 0);
  } while (n < 0 && errno == EINTR);
  for (int i = 0; i < n; ++i) {
    const uint64_t token = events[i].data.u64;
    if (token == kListenerToken) {
      Accept();
    } else if (token == kTimerToken) {
      ExpireDeadlines();
    } else if (handshakes_.contains(token)) {
      ReadHandshake(token);
    } else if (auto it = by_token_.find(token); it != by_token_.end()) {
      const uint64_t key = it->second;
      connections_[key].conn->OnHostEvent(events[i].events);
      Sync(key);
    }
  }
}

void VsockMuxer::Accept() {
  for (int i = 0; i < 16; ++i) {  // a bounded batch; epoll is level-triggered
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) return;
    if (handshakes_.size() >= options_.max_connections) {
      ++stats_->host_rejected;
      continue;  // closed
    }
    const uint64_t token = next_token_++;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = token;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd.get(), &ev) != 0) continue;
    handshakes_[token] = Handshake{std::move(fd), {}};
    ReadHandshake(token);  // the line is often there already
  }
}

void VsockMuxer::CloseHandshake(uint64_t token) {
  auto it = handshakes_.find(token);
  if (it == handshakes_.end()) return;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.fd.get(), nullptr);
  handshakes_.erase(it);
}

void VsockMuxer::ReadHandshake(uint64_t token) {
  Handshake& h = handshakes_[token];
  // Byte by byte: whatever follows the line belongs to the guest.
  for (;;) {
    char c;
    ssize_t n = ::recv(h.fd.get(), &c, 1, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0 || h.line.size() >= kMaxConnectLine) {
      ++stats_->host_rejected;
      return CloseHandshake(token);
    }
    if (c == '\n') break;
    h.line.push_back(c);
  }
  absl::string_view line = h.line;
  uint32_t port = 0;
  if (!absl::ConsumePrefix(&line, "CONNECT ") || !absl::SimpleAtoi(line, &port) ||
      connections_.size() >= options_.max_connections) {
    ++stats_->host_rejected;
    return CloseHandshake(token);
  }
  UniqueFd fd = std::move(h.fd);
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd.get(), nullptr);
  handshakes_.erase(token);
  // A host port not in use towards this guest port (connections are bounded,
  // so this ends).
  uint32_t local = next_local_port_;
  while (connections_.contains(Key(local, port))) ++local;
  next_local_port_ = local + 1 < kFirstLocalPort ? kFirstLocalPort : local + 1;
  AddConnection(VsockConnection::HostInitiated(std::move(fd), options_.guest_cid, local, port,
                                               options_.buffer_size, stats_));
}

void VsockMuxer::AddConnection(VsockConnection conn) {
  const uint64_t key = Key(conn.local_port(), conn.peer_port());
  Entry& e = connections_[key];
  e.conn = std::make_unique<VsockConnection>(std::move(conn));
  e.token = next_token_++;
  by_token_[e.token] = key;
  Sync(key);
}

void VsockMuxer::OnGuestPacket(const VsockHeader& header, absl::Span<const iovec> payload) {
  const uint64_t key = Key(header.dst_port, header.src_port);
  if (auto it = connections_.find(key); it != connections_.end()) {
    it->second.conn->OnGuestPacket(header, payload);
    Sync(key);
    return;
  }
  if (header.op == VIRTIO_VSOCK_OP_REQUEST) return ConnectToHost(header);
  // Anything else for a connection we do not know.
  QueueRst(header);
}

void VsockMuxer::Refuse(const VsockHeader& header) {
  const uint64_t key = Key(header.dst_port, header.src_port);
  if (auto it = connections_.find(key); it != connections_.end()) {
    it->second.conn->Kill();
    Sync(key);
    return;
  }
  QueueRst(header);
}

void VsockMuxer::ConnectToHost(const VsockHeader& request) {
  if (connections_.size() >= options_.max_connections) {
    ++stats_->connections_refused;
    return QueueRst(request);
  }
  UniqueFd fd = ConnectUnix(absl::StrCat(options_.socket_path, "_", request.dst_port));
  if (!fd.valid()) {
    ++stats_->connections_refused;
    return QueueRst(request);
  }
  AddConnection(VsockConnection::GuestInitiated(std::move(fd), request, options_.buffer_size,
                                                stats_));
}

void VsockMuxer::QueueRst(const VsockHeader& header) {
  if (header.op == VIRTIO_VSOCK_OP_RST) return;  // never answer an RST
  if (orphan_rsts_.size() >= kMaxOrphanRsts) {
    ++stats_->rst_dropped;
    return;
  }
  VsockHeader rst{};
  rst.src_cid = kVsockHostCid;
  rst.dst_cid = options_.guest_cid;
  rst.src_port = header.dst_port;
  rst.dst_port = header.src_port;
  rst.type = VIRTIO_VSOCK_TYPE_STREAM;
  rst.op = VIRTIO_VSOCK_OP_RST;
  orphan_rsts_.push_back(rst);
}

void VsockMuxer::SetInterest(int fd, uint64_t token, uint32_t* registered, uint32_t wanted) {
  if (wanted == *registered) return;
  epoll_event ev{};
  ev.events = wanted;
  ev.data.u64 = token;
  int op = *registered == 0 ? EPOLL_CTL_ADD : wanted == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
  // A failure leaves the socket unwatched: it then only moves when the guest
  // does, which is safe.
  if (::epoll_ctl(epoll_.get(), op, fd, &ev) == 0 || op == EPOLL_CTL_DEL) *registered = wanted;
}

void VsockMuxer::Sync(uint64_t key) {
  auto it = connections_.find(key);
  if (it == connections_.end()) return;
  Entry& e = it->second;
  if (e.conn->Finished()) {
    SetInterest(e.conn->fd(), e.token, &e.registered, 0);
    by_token_.erase(e.token);
    connections_.erase(it);  // closes the host socket; rx_queue_ skips the key
    return;
  }
  SetInterest(e.conn->fd(), e.token, &e.registered, e.conn->WantedEvents());
  if (e.conn->AwaitingPeer() && e.deadline_ns == 0) {
    e.deadline_ns = MonotonicNs() + options_.shutdown_timeout_ms * 1'000'000;
    if (armed_ns_ == 0 || e.deadline_ns < armed_ns_) ArmTimer(e.deadline_ns);
  }
  if (!e.queued && e.conn->HasRxWork()) {
    e.queued = true;
    rx_queue_.push_back(key);
  }
}

void VsockMuxer::ArmTimer(int64_t deadline_ns) {
  itimerspec spec{};
  spec.it_value.tv_sec = deadline_ns / 1'000'000'000;
  spec.it_value.tv_nsec = deadline_ns % 1'000'000'000;
  // 0 disarms; an absolute time in the past fires at once.
  if (deadline_ns == 0 || ::timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME, &spec, nullptr) != 0) {
    spec = {};
    ::timerfd_settime(timer_.get(), 0, &spec, nullptr);
    deadline_ns = 0;
  }
  armed_ns_ = deadline_ns;
}

void VsockMuxer::ExpireDeadlines() {
  uint64_t expirations;
  (void)!::read(timer_.get(), &expirations, sizeof(expirations));
  const int64_t now = MonotonicNs();
  std::vector<uint64_t> expired;
  int64_t next = 0;
  for (auto& [key, e] : connections_) {
    if (e.deadline_ns == 0) continue;
    if (e.deadline_ns <= now) {
      expired.push_back(key);
    } else if (next == 0 || e.deadline_ns < next) {
      next = e.deadline_ns;
    }
  }
  ArmTimer(next);
  for (uint64_t key : expired) {
    ++stats_->shutdown_timeouts;
    Entry& e = connections_[key];
    e.deadline_ns = 0;
    e.conn->Kill();
    Sync(key);
  }
}

uint32_t VsockMuxer::FillRx(const DescriptorChain& chain, const GuestMemory& memory) {
  if (!orphan_rsts_.empty()) {
    const VsockHeader& rst = orphan_rsts_.front();
    chain.WriteTo(memory, 0,
                  absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(&rst), sizeof(rst)));
    orphan_rsts_.pop_front();
    ++stats_->rx_packets;
    return sizeof(VsockHeader);
  }
  // Round robin: a connection with more to send goes to the back.
  for (size_t tries = rx_queue_.size(); tries > 0 && !rx_queue_.empty(); --tries) {
    const uint64_t key = rx_queue_.front();
    rx_queue_.pop_front();
    auto it = connections_.find(key);
    if (it == connections_.end()) continue;
    it->second.queued = false;
    const uint32_t len = it->second.conn->FillRx(chain, memory);
    Sync(key);
    if (len != 0) return len;
  }
  return 0;
}

void VsockMuxer::DropConnections() {
  for (auto& [key, e] : connections_) SetInterest(e.conn->fd(), e.token, &e.registered, 0);
  connections_.clear();
  by_token_.clear();
  rx_queue_.clear();
  orphan_rsts_.clear();
}

}  // namespace vmm
