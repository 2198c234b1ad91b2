#include "devices/virtio/vsock/virtio_vsock.h"

#include <sys/epoll.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/state_file.h"
#include "base/status_macros.h"

namespace vmm {

absl::StatusOr<std::shared_ptr<VirtioVsock>> VirtioVsock::Create(VsockMuxerOptions options,
                                                                 EventLoop* loop) {
  if (options.guest_cid < 3 || options.guest_cid > UINT32_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("vsock: guest cid ", options.guest_cid, " is reserved or too large"));
  }
  std::shared_ptr<VirtioVsock> dev(new VirtioVsock(options.guest_cid, loop));
  {
    absl::MutexLock lock(&dev->mu_);
    ASSIGN_OR_RETURN(dev->muxer_, VsockMuxer::Create(std::move(options), &dev->stats_));
  }
  if (loop != nullptr) {
    VirtioVsock* self = dev.get();  // the destructor removes the callback
    RETURN_IF_ERROR(Annotate(loop->Add(dev->host_event_fd(), EPOLLIN,
                                       [self](uint32_t) { self->HandleHostEvents(); }),
                             "vsock: event loop"));
  }
  return dev;
}

VirtioVsock::~VirtioVsock() {
  // The VMM tears devices down after its event loop stopped.
  if (loop_ != nullptr && muxer_ != nullptr) (void)loop_->Remove(host_event_fd());
  absl::MutexLock lock(&mu_);
  active_.reset();
  muxer_.reset();  // closes the host sockets, removes the socket file
}

uint64_t VirtioVsock::device_features() const {
  return kVirtioFVersion1 | kVirtioFEventIdx | kVirtioFIndirectDesc;
}

void VirtioVsock::ReadConfig(uint64_t offset, absl::Span<uint8_t> data) {
  virtio_vsock_config config{};
  config.guest_cid = guest_cid_;
  ReadConfigBytes(config, offset, data);
}

// guest_cid is read-only.
void VirtioVsock::WriteConfig(uint64_t /*offset*/, absl::Span<const uint8_t> /*data*/) {}

absl::Status VirtioVsock::Activate(VirtioActivation activation) {
  Active a;
  RETURN_IF_ERROR(TakeActivation("virtio-vsock", std::move(activation), a));
  QueuePass pass("virtio-vsock");
  {
    absl::MutexLock lock(&mu_);
    active_ = std::move(a);
    pass.Begin(*active_);
    // Host clients may have connected before the driver was ready.
    PumpRx(pass);
    pass.Settle();
  }
  pass.Deliver();
  return absl::OkStatus();
}

absl::StatusOr<VirtioDeviceSnapshot> VirtioVsock::Snapshot() const {
  absl::MutexLock lock(&mu_);
  if (!active_) return absl::FailedPreconditionError("virtio-vsock: not active");
  size_t held[3] = {};
  held[kRxQueue] = active_->held_rx ? 1 : 0;
  StateWriter out;
  out.Put<uint64_t>(guest_cid_);
  return VirtioDeviceSnapshot{SnapshotPositions(*active_, held), out.Take()};
}

absl::Status VirtioVsock::RestoreSnapshot(absl::string_view state) {
  StateReader in("virtio-vsock", state);
  uint64_t cid = 0;
  RETURN_IF_ERROR(in.Get("guest CID", &cid));
  RETURN_IF_ERROR(in.Finish());
  if (cid != guest_cid_) {
    return absl::FailedPreconditionError(
        absl::StrCat("the guest CID is ", guest_cid_, ", the snapshot's was ", cid));
  }
  QueuePass pass("virtio-vsock");
  {
    absl::MutexLock lock(&mu_);
    if (!QueueUsable(kEventQueue)) return absl::OkStatus();
    pass.Begin(*active_);
    // struct virtio_vsock_event: le32 id. Without an event buffer the
    // driver hears nothing, and its connections fail as their peers' RSTs
    // arrive.
    if (std::optional<DescriptorChain> chain = pass.Pop(kEventQueue)) {
      const uint8_t event[4] = {kVsockEventTransportReset, 0, 0, 0};
      const size_t written = chain->WriteTo(*active_->memory, 0, event);
      pass.AddUsed(kEventQueue, std::move(*chain), static_cast<uint32_t>(written));
    }
    pass.Settle();
  }
  pass.Deliver();
  return absl::OkStatus();
}

void VirtioVsock::Reset() {
  absl::MutexLock lock(&mu_);
  // A driver that had the device running forgot its sockets: the host ends
  // of every connection close. The reset a driver does before its first
  // DRIVER_OK keeps host clients that connected early waiting.
  if (active_ && muxer_ != nullptr) muxer_->DropConnections();
  active_.reset();
}

VsockStats VirtioVsock::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

std::vector<DeviceCounter> VirtioVsock::counters() const {
  const VsockStats s = stats();
  return {
      {"tx_packets", s.tx_packets},
      {"rx_packets", s.rx_packets},
      {"malformed", s.malformed},
      {"bad_address", s.bad_address},
      {"bad_packet", s.bad_packet},
      {"credit_violations", s.credit_violations},
      {"connections_refused", s.connections_refused},
      {"host_rejected", s.host_rejected},
      {"rst_dropped", s.rst_dropped},
      {"shutdown_timeouts", s.shutdown_timeouts},
  };
}

int VirtioVsock::host_event_fd() const {
  absl::MutexLock lock(&mu_);
  return muxer_->epoll_fd();
}

size_t VirtioVsock::connection_count() const {
  absl::MutexLock lock(&mu_);
  return muxer_->connection_count();
}

std::optional<VirtioVsock::ConnectionInfo> VirtioVsock::connection(uint32_t local_port,
                                                                  uint32_t peer_port) const {
  absl::MutexLock lock(&mu_);
  const VsockConnection* c = muxer_->connection(local_port, peer_port);
  if (c == nullptr) return std::nullopt;
  return ConnectionInfo{c->state(), c->peer_credit(), c->fwd_cnt(), c->buffered_bytes()};
}

bool VirtioVsock::QueueUsable(uint16_t queue) const {
  return active_ && active_->QueueUsable(queue);
}

void VirtioVsock::ProcessQueue(uint16_t queue) {
  QueuePass pass("virtio-vsock");
  {
    absl::MutexLock lock(&mu_);
    if (!active_ || active_->broken) return;
    pass.Begin(*active_);
    if (queue == kTxQueue) ProcessTx(pass);
    // The event queue's buffers are never used; an RX kick means new
    // buffers; TX may have produced answers.
    if (queue != kEventQueue) PumpRx(pass);
    pass.Settle();
  }
  pass.Deliver();
}

void VirtioVsock::HandleHostEvents() {
  QueuePass pass("virtio-vsock");
  {
    absl::MutexLock lock(&mu_);
    if (muxer_ == nullptr) return;
    muxer_->HandleHostEvents();
    if (!active_ || active_->broken) return;
    pass.Begin(*active_);
    PumpRx(pass);
    pass.Settle();
  }
  pass.Deliver();
}

void VirtioVsock::ProcessTx(QueuePass& pass) {
  while (std::optional<DescriptorChain> chain = pass.Pop(kTxQueue)) {
    HandleTxChain(*chain, *active_->memory);
    if (!pass.AddUsed(kTxQueue, std::move(*chain), 0)) return;
  }
}

void VirtioVsock::HandleTxChain(const DescriptorChain& chain, const GuestMemory& memory) {
  ++stats_.tx_packets;
  const uint64_t readable = chain.readable_bytes();
  if (!chain.writable().empty() || readable < sizeof(VsockHeader)) {
    ++stats_.malformed;  // a TX packet is driver-to-device only, header first
    return;
  }
  VsockHeader h;  // read once: the guest may change it under us
  chain.ReadFrom(memory, 0, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&h), sizeof(h)));
  if (h.src_cid != guest_cid_) {
    ++stats_.bad_address;  // not from this guest's address: nobody to answer
    return;
  }
  if (h.dst_cid != kVsockHostCid) {
    ++stats_.bad_address;
    return muxer_->Refuse(h);
  }
  const bool known_op = h.op >= VIRTIO_VSOCK_OP_REQUEST && h.op <= VIRTIO_VSOCK_OP_CREDIT_REQUEST;
  if (h.type != VIRTIO_VSOCK_TYPE_STREAM || !known_op || h.len > kVsockMaxPayload ||
      h.len > readable - sizeof(VsockHeader)) {
    ++stats_.bad_packet;
    return muxer_->Refuse(h);
  }
  std::vector<iovec> payload;
  if (h.op == VIRTIO_VSOCK_OP_RW && h.len != 0) {
    absl::StatusOr<std::vector<iovec>> iov =
        chain.ReadableIovecs(memory, sizeof(VsockHeader), h.len);
    if (!iov.ok()) {
      ++stats_.bad_packet;
      return muxer_->Refuse(h);
    }
    payload = std::move(*iov);
  } else {
    h.len = 0;  // control packets carry no payload
  }
  muxer_->OnGuestPacket(h, payload);
}

void VirtioVsock::PumpRx(QueuePass& pass) {
  if (!QueueUsable(kRxQueue)) return;
  while (!active_->broken && muxer_->HasRxWork()) {
    if (!active_->held_rx) {
      std::optional<DescriptorChain> chain = pass.Pop(kRxQueue);
      if (!chain) return;  // no buffers: the guest's RX kick brings us back
      if (!chain->readable().empty() || chain->writable_bytes() < sizeof(VsockHeader)) {
        ++stats_.malformed;
        if (!pass.AddUsed(kRxQueue, std::move(*chain), 0)) return;
        continue;
      }
      active_->held_rx = std::move(chain);
    }
    const uint32_t len = muxer_->FillRx(*active_->held_rx, *active_->memory);
    if (len == 0) return;  // nothing after all: keep the chain for later
    DescriptorChain chain = std::move(*active_->held_rx);
    active_->held_rx.reset();
    if (!pass.AddUsed(kRxQueue, std::move(chain), len)) return;
  }
}

}  // namespace vmm
