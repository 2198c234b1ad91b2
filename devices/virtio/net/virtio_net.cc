#include "devices/virtio/net/virtio_net.h"

#include <limits.h>
#include <linux/if_tun.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/state_file.h"
#include "base/status_macros.h"

namespace vmm {
namespace {

using namespace virtio_net;  // NOLINT: the spec's names, local to this file

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__);

constexpr uint64_t Bit(unsigned n) { return 1ull << n; }

// Room in each bounce buffer: more than the largest frame accepted, so a
// frame that fills it is known to be too big.
constexpr size_t kRxBufferSize = VirtioNet::kHeaderSize + VirtioNet::kMaxFrame + 4096;
// Offset of num_buffers in virtio_net_hdr_v1.
constexpr size_t kNumBuffersOffset = 10;

uint64_t OfferedFeatures(unsigned offloads, int pairs) {
  uint64_t f = kVirtioFVersion1 | kVirtioFEventIdx | kVirtioFIndirectDesc |
               Bit(kFMac) | Bit(kFStatus) | Bit(kFMrgRxbuf) |
               Bit(kFCtrlVq) | Bit(kFCtrlRx) |
               // What the guest sends the tap takes as it is (partial
               // checksums, GSO frames): the kernel finishes them.
               Bit(kFCsum) | Bit(kFHostTso4) |
               Bit(kFHostTso6) | Bit(kFHostEcn);
  // What the tap may send the guest depends on what TUNSETOFFLOAD accepts.
  if (offloads & TUN_F_CSUM) f |= Bit(kFGuestCsum);
  constexpr unsigned kTso = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
  if ((offloads & kTso) == kTso) {
    f |= Bit(kFGuestTso4) | Bit(kFGuestTso6) | Bit(kFGuestEcn);
  }
  if ((offloads & (TUN_F_CSUM | TUN_F_UFO)) == (TUN_F_CSUM | TUN_F_UFO)) {
    f |= Bit(kFGuestUfo) | Bit(kFHostUfo);
  }
  if (pairs > 1) f |= Bit(kFMq);
  return f;
}

// The TUN_F_* offloads a driver with `features` accepts.
unsigned GuestOffloads(uint64_t features) {
  if (!(features & Bit(kFGuestCsum))) return 0;  // the kernel needs CSUM for the rest
  unsigned t = TUN_F_CSUM;
  if (features & Bit(kFGuestTso4)) t |= TUN_F_TSO4;
  if (features & Bit(kFGuestTso6)) t |= TUN_F_TSO6;
  if (features & Bit(kFGuestEcn)) t |= TUN_F_TSO_ECN;
  if (features & Bit(kFGuestUfo)) t |= TUN_F_UFO;
  return t;
}

// The features vhost-net implements itself (the rest — offloads, MAC,
// control queue — are the tap's or ours): those it does not offer are not
// offered to the driver.
constexpr uint64_t kVhostNetDataPathFeatures =
    kVirtioFIndirectDesc | kVirtioFEventIdx | kVirtioFVersion1 | Bit(kFMrgRxbuf);

uint64_t VhostFeatures(std::vector<VhostKernel>& vhost) {
  if (vhost.empty()) return 0;
  absl::StatusOr<uint64_t> f = vhost[0].GetFeatures();
  return f.ok() ? *f : 0;
}

virtio_net::Config MakeConfig(std::array<uint8_t, 6> mac, int pairs) {
  virtio_net::Config c;
  std::memset(&c, 0, sizeof(c));
  std::memcpy(c.mac, mac.data(), mac.size());
  c.status = kStatusLinkUp;
  c.max_virtqueue_pairs = static_cast<uint16_t>(pairs);
  return c;
}

}  // namespace

VirtioNet::VirtioNet(std::unique_ptr<NetBackend> backend, std::array<uint8_t, 6> mac,
                     EventLoop* loop, std::vector<VhostKernel> vhost)
    : backend_(std::move(backend)),
      loop_(loop),
      max_pairs_(std::clamp(backend_->queue_count(), 1, int{kCtrlMqVqPairsMax})),
      in_kernel_(!vhost.empty()),
      vhost_features_(VhostFeatures(vhost)),
      features_(OfferedFeatures(backend_->supported_offloads(), max_pairs_) &
                ~(in_kernel_ ? kVhostNetDataPathFeatures & ~vhost_features_ : 0)),
      config_(MakeConfig(mac, max_pairs_)),
      rx_(in_kernel_ ? 0 : static_cast<size_t>(max_pairs_)),
      vhost_(std::move(vhost)),
      vhost_running_(vhost_.size(), false) {
  for (RxState& rx : rx_) rx.frame.resize(kRxBufferSize);
}

VirtioNet::~VirtioNet() { Reset(); }

std::vector<uint16_t> VirtioNet::queue_max_sizes() const {
  std::vector<uint16_t> sizes(static_cast<size_t>(2 * max_pairs_), kQueueSize);
  sizes.push_back(kCtrlQueueSize);
  return sizes;
}

void VirtioNet::ReadConfig(uint64_t offset, absl::Span<uint8_t> data) {
  absl::MutexLock lock(&mu_);
  ReadConfigBytes(config_, offset, data);
}

// The MAC is writable only in legacy virtio; nothing else is writable.
void VirtioNet::WriteConfig(uint64_t /*offset*/, absl::Span<const uint8_t> /*data*/) {}

absl::Status VirtioNet::Activate(VirtioActivation activation) {
  if (!(activation.features & kVirtioFVersion1)) {
    return absl::FailedPreconditionError("virtio-net: the driver did not accept VERSION_1");
  }
  Active a;
  RETURN_IF_ERROR(TakeActivation("virtio-net", std::move(activation), a));
  absl::MutexLock lock(&mu_);
  if (absl::Status s = backend_->SetOffloads(GuestOffloads(a.features)); !s.ok()) {
    return absl::InternalError(absl::StrCat("virtio-net: ", s.message()));
  }
  a.negotiated_pairs = (a.features & Bit(kFMq)) ? max_pairs_ : 1;
  a.ctrl = static_cast<uint16_t>(2 * a.negotiated_pairs);
  active_ = std::move(a);
  // One pair until the driver asks for more (5.1.6.5.5).
  for (int p = 0; p < max_pairs_; ++p) {
    if (absl::Status s = backend_->SetQueueEnabled(p, p == 0); !s.ok()) {
      active_.reset();
      return absl::InternalError(absl::StrCat("virtio-net: ", s.message()));
    }
  }
  if (in_kernel_) {
    if (absl::Status s = StartVhost(); !s.ok()) {
      StopVhost();
      active_.reset();
      return absl::InternalError(absl::StrCat("virtio-net: ", s.message()));
    }
    return absl::OkStatus();
  }
  // Frames are looked at on the event loop; nothing is read before then.
  SetWatching(0, true);
  return absl::OkStatus();
}

absl::StatusOr<VirtioDeviceSnapshot> VirtioNet::Snapshot() const {
  if (in_kernel_) {
    return absl::UnimplementedError(
        "vhost-net keeps its rings in the host kernel: its state cannot be saved in a snapshot "
        "(use vhost=off)");
  }
  absl::MutexLock lock(&mu_);
  if (!active_) return absl::FailedPreconditionError("virtio-net: not active");
  std::vector<size_t> held(active_->queues.size(), 0);
  for (size_t p = 0; p < rx_.size() && 2 * p < held.size(); ++p) held[2 * p] = rx_[p].held.size();
  StateWriter out;
  out.Put(config_.mac);
  out.Put<int32_t>(active_->pairs);
  out.Put<uint8_t>(active_->promiscuous);
  out.Put<uint8_t>(active_->all_multicast);
  return VirtioDeviceSnapshot{SnapshotPositions(*active_, held), out.Take()};
}

absl::Status VirtioNet::RestoreSnapshot(absl::string_view state) {
  StateReader in("virtio-net", state);
  uint8_t mac[6];
  int32_t pairs = 0;
  uint8_t promiscuous = 0, all_multicast = 0;
  RETURN_IF_ERROR(in.Get("MAC", &mac));
  RETURN_IF_ERROR(in.Get("queue pairs", &pairs));
  RETURN_IF_ERROR(in.Get("promiscuous", &promiscuous));
  RETURN_IF_ERROR(in.Get("all-multicast", &all_multicast));
  RETURN_IF_ERROR(in.Finish());
  absl::MutexLock lock(&mu_);
  if (!active_) return absl::FailedPreconditionError("virtio-net: not active");
  if (pairs < 1 || pairs > active_->negotiated_pairs) {
    return absl::DataLossError(absl::StrCat("virtio-net: ", pairs, " queue pairs in use, ",
                                            active_->negotiated_pairs, " negotiated"));
  }
  std::memcpy(config_.mac, mac, sizeof(mac));
  active_->promiscuous = promiscuous != 0;
  active_->all_multicast = all_multicast != 0;
  for (int p = 0; p < max_pairs_; ++p) {
    const bool use = p < pairs;
    if (absl::Status s = backend_->SetQueueEnabled(p, use); !s.ok()) {
      return absl::InternalError(absl::StrCat("virtio-net: ", s.message()));
    }
    SetWatching(p, use);
  }
  active_->pairs = pairs;
  return absl::OkStatus();
}

absl::Status VirtioNet::StartVhost() {
  // Without MQ the control queue is queue 2, which the transport was told
  // is vhost's (pair 1's receiveq) when there are more pairs: its kicks come
  // to its notify eventfd, which the VMM does not watch. Watch it here.
  const uint16_t ctrl = active_->ctrl;
  if (QueueInBackend(ctrl) && active_->QueueUsable(ctrl) && loop_ != nullptr) {
    const int fd = active_->kick_fds[ctrl];
    RETURN_IF_ERROR(loop_->Add(fd, EPOLLIN, [this, fd, ctrl](uint32_t) {
      uint64_t count;
      (void)!::read(fd, &count, sizeof(count));
      ProcessQueue(ctrl);
    }));
    ctrl_kick_watched_ = fd;
  }
  for (int p = 0; p < static_cast<int>(vhost_.size()); ++p) {
    const uint16_t rx = static_cast<uint16_t>(2 * p), tx = static_cast<uint16_t>(2 * p + 1);
    if (!active_->QueueUsable(rx) || !active_->QueueUsable(tx)) continue;
    const uint16_t rings[] = {rx, tx};
    vhost_running_[p] = true;  // so that a failure half-way is stopped too
    RETURN_IF_ERROR(
        vhost_[p].StartRings(*active_, rings, active_->features & vhost_features_));
    for (uint32_t ring = 0; ring < 2; ++ring) {
      RETURN_IF_ERROR(vhost_[p].NetSetBackend(ring, backend_->rx_fd(p)));
    }
  }
  return absl::OkStatus();
}

void VirtioNet::StopVhost() {
  if (ctrl_kick_watched_ >= 0) {
    (void)loop_->Remove(ctrl_kick_watched_);
    ctrl_kick_watched_ = -1;
  }
  for (size_t p = 0; p < vhost_.size(); ++p) {
    if (!vhost_running_[p]) continue;
    for (uint32_t ring = 0; ring < 2; ++ring) (void)vhost_[p].NetSetBackend(ring, -1);
    vhost_[p].StopRings(2);
    vhost_running_[p] = false;
  }
}

void VirtioNet::Reset() {
  absl::MutexLock lock(&mu_);
  StopVhost();
  for (int p = 0; p < static_cast<int>(rx_.size()); ++p) {
    SetWatching(p, false);
    rx_[p].held.clear();  // the rings are gone with the reset
    rx_[p].held_bytes = 0;
    rx_[p].pending = 0;
  }
  if (active_) (void)backend_->SetOffloads(0);
  active_.reset();
}

VirtioNetStats VirtioNet::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

std::vector<DeviceCounter> VirtioNet::counters() const {
  const VirtioNetStats s = stats();
  return {
      {"tx_frames", s.tx_frames},
      {"tx_bytes", s.tx_bytes},
      {"tx_malformed", s.tx_malformed},
      {"tx_dropped", s.tx_dropped},
      {"rx_frames", s.rx_frames},
      {"rx_bytes", s.rx_bytes},
      {"rx_malformed", s.rx_malformed},
      {"rx_too_big", s.rx_too_big},
      {"rx_errors", s.rx_errors},
      {"rx_stalls", s.rx_stalls},
      {"ctrl_commands", s.ctrl_commands},
      {"ctrl_errors", s.ctrl_errors},
  };
}

bool VirtioNet::rx_watching(int pair) const {
  absl::MutexLock lock(&mu_);
  return pair >= 0 && pair < static_cast<int>(rx_.size()) && rx_[pair].watching;
}

int VirtioNet::active_pairs() const {
  absl::MutexLock lock(&mu_);
  return active_ ? active_->pairs : 0;
}

bool VirtioNet::promiscuous() const {
  absl::MutexLock lock(&mu_);
  return active_ && active_->promiscuous;
}

bool VirtioNet::all_multicast() const {
  absl::MutexLock lock(&mu_);
  return active_ && active_->all_multicast;
}

bool VirtioNet::QueueUsable(uint16_t queue) const {
  return active_ && active_->QueueUsable(queue);
}

void VirtioNet::EndPass(QueuePass& pass) {
  // A broken driver's queues are not read for it again.
  if (pass.failed()) {
    for (int p = 0; p < max_pairs_; ++p) SetWatching(p, false);
  }
  pass.Settle();
}

void VirtioNet::ProcessQueue(uint16_t queue) {
  QueuePass pass("virtio-net");
  {
    absl::MutexLock lock(&mu_);
    // With vhost only the control queue is ours.
    if (!QueueUsable(queue) || (queue != active_->ctrl && QueueInBackend(queue))) return;
    pass.Begin(*active_);
    if (queue == active_->ctrl) {
      if (active_->features & Bit(kFCtrlVq)) ProcessCtrl(pass);
    } else if (queue > active_->ctrl) {
      return;  // no such queue with what was negotiated
    } else if (queue % 2 == 1) {
      ProcessTx(queue / 2, pass);
    } else if (queue / 2 < active_->pairs) {
      ProcessRx(queue / 2, pass);  // the driver added receive buffers
    }
    EndPass(pass);
  }
  pass.Deliver();
}

void VirtioNet::OnBackendReadable(int pair) {
  QueuePass pass("virtio-net");
  {
    absl::MutexLock lock(&mu_);
    if (pair < 0 || pair >= static_cast<int>(rx_.size())) return;  // none with vhost
    if (!active_ || active_->broken || pair >= active_->pairs) {
      SetWatching(pair, false);
      return;
    }
    pass.Begin(*active_);
    ProcessRx(pair, pass);
    EndPass(pass);
  }
  pass.Deliver();
}

// --- TX ------------------------------------------------------------------------

void VirtioNet::ProcessTx(int pair, QueuePass& pass) {
  const uint16_t index = static_cast<uint16_t>(2 * pair + 1);
  // Kicks are off while draining (as virtio-blk).
  if (!pass.SetNotificationsEnabled(index, false)) return;
  while (std::optional<DescriptorChain> chain = pass.PopKicksOff(index)) {
    const uint32_t used = HandleTx(pair, *chain);
    if (!pass.AddUsed(index, std::move(*chain), used)) return;
  }
}

uint32_t VirtioNet::HandleTx(int pair, const DescriptorChain& chain) {
  const uint64_t len = chain.readable_bytes();
  // A transmit buffer is device-readable only: header, then the frame.
  if (!chain.writable().empty() || len < kHeaderSize || len > kHeaderSize + kMaxFrame) {
    ++stats_.tx_malformed;
    return 0;
  }
  absl::StatusOr<std::vector<iovec>> iov = chain.ReadableIovecs(*active_->memory, 0, len);
  if (!iov.ok()) {
    ++stats_.tx_malformed;
    return 0;
  }
  absl::Status written;
  if (iov->size() <= IOV_MAX) {
    written = backend_->WriteFrame(pair, *iov);
  } else {
    // More pieces than writev takes (an indirect table can hold 1024):
    // gather them first.
    std::vector<uint8_t> gathered(len);
    chain.ReadFrom(*active_->memory, 0, absl::MakeSpan(gathered));
    iovec one{gathered.data(), gathered.size()};
    written = backend_->WriteFrame(pair, absl::MakeConstSpan(&one, 1));
  }
  if (!written.ok()) {
    ++stats_.tx_dropped;
    return 0;
  }
  ++stats_.tx_frames;
  stats_.tx_bytes += len;
  return 0;  // the device writes nothing into a transmit buffer
}

// --- RX ------------------------------------------------------------------------

void VirtioNet::SetWatching(int pair, bool watch) {
  if (in_kernel_) return;
  RxState& rx = rx_[pair];
  if (rx.watching == watch) return;
  if (loop_ != nullptr) {
    const int fd = backend_->rx_fd(pair);
    absl::Status s = watch ? loop_->Add(fd, EPOLLIN, [this, pair](uint32_t) { OnBackendReadable(pair); })
                           : loop_->Remove(fd);
    if (!s.ok()) {
      ++stats_.rx_errors;  // cannot happen while `watching` tracks the loop
      return;
    }
  }
  rx.watching = watch;
}

VirtioNet::Hold VirtioNet::HoldBuffers(int pair, uint64_t needed, QueuePass& pass) {
  RxState& rx = rx_[pair];
  const uint16_t index = static_cast<uint16_t>(2 * pair);
  Virtqueue& queue = active_->queues[index];
  const bool merge = (active_->features & Bit(kFMrgRxbuf)) != 0;
  while (rx.held.empty() || (merge && rx.held_bytes < needed)) {
    // Never more than the ring holds, whatever heads a driver repeats.
    if (rx.held.size() >= queue.config().size) return Hold::kFull;
    std::optional<DescriptorChain> popped = pass.Pop(index);
    if (!popped) return pass.failed() ? Hold::kBroken : Hold::kEmpty;
    DescriptorChain chain = std::move(*popped);
    // A receive buffer is device-writable only and holds at least the
    // header (5.1.6.3.1).
    if (!chain.readable().empty() || chain.writable_bytes() < kHeaderSize) {
      ++stats_.rx_malformed;
      if (!pass.AddUsed(index, std::move(chain), 0)) return Hold::kBroken;
      continue;
    }
    rx.held_bytes += chain.writable_bytes();
    rx.held.push_back(std::move(chain));
  }
  return Hold::kEnough;
}

VirtioNet::Hold VirtioNet::DeliverPending(int pair, QueuePass& pass) {
  RxState& rx = rx_[pair];
  const uint16_t index = static_cast<uint16_t>(2 * pair);
  const GuestMemory& memory = *active_->memory;
  const bool merge = (active_->features & Bit(kFMrgRxbuf)) != 0;
  const size_t len = rx.pending;

  Hold held = HoldBuffers(pair, len, pass);
  if (held == Hold::kFull && merge) {
    // Every buffer the ring can offer together is still too small.
    ++stats_.rx_too_big;
    rx.pending = 0;
    return Hold::kEnough;
  }
  if (held != Hold::kEnough && held != Hold::kFull) return held;

  // How many chains the frame takes; without MRG_RXBUF one, which must hold
  // it whole (else the frame is dropped, counted, and the chain kept).
  size_t count = 0;
  for (uint64_t room = 0; room < len && count < rx.held.size(); ++count) {
    room += rx.held[count].writable_bytes();
  }
  if (!merge && rx.held.front().writable_bytes() < len) {
    ++stats_.rx_too_big;
    rx.pending = 0;
    return Hold::kEnough;
  }
  const uint16_t num_buffers = static_cast<uint16_t>(count);
  std::memcpy(&rx.frame[kNumBuffersOffset], &num_buffers, sizeof(num_buffers));
  size_t offset = 0;
  for (size_t i = 0; i < count; ++i) {
    DescriptorChain chain = std::move(rx.held.front());
    rx.held.pop_front();
    rx.held_bytes -= chain.writable_bytes();
    const size_t take = std::min<uint64_t>(chain.writable_bytes(), len - offset);
    chain.WriteTo(memory, 0, absl::MakeConstSpan(rx.frame.data() + offset, take));
    offset += take;
    if (!pass.AddUsed(index, std::move(chain), static_cast<uint32_t>(take))) return Hold::kBroken;
  }
  ++stats_.rx_frames;
  stats_.rx_bytes += len;
  rx.pending = 0;
  return Hold::kEnough;
}

void VirtioNet::ProcessRx(int pair, QueuePass& pass) {
  const uint16_t index = static_cast<uint16_t>(2 * pair);
  if (!QueueUsable(index)) {
    SetWatching(pair, false);
    return;
  }
  RxState& rx = rx_[pair];
  bool watch = true;
  for (int n = 0; n < kBudget; ++n) {
    if (rx.pending == 0) {
      // A frame leaves the backend only when a buffer is there to start it.
      Hold held = HoldBuffers(pair, 1, pass);
      if (held == Hold::kBroken) return;
      if (held == Hold::kEmpty) {
        if (!pass.budget_spent(index)) ++stats_.rx_stalls;  // else: ProcessAgain
        watch = false;
        break;
      }
      absl::StatusOr<size_t> got = backend_->ReadFrame(pair, absl::MakeSpan(rx.frame));
      if (!got.ok()) {
        // Do not spin on a failing backend: the next receive kick retries.
        ++stats_.rx_errors;
        watch = false;
        break;
      }
      if (*got == 0) break;  // drained: wait for the backend
      if (*got < kHeaderSize) {
        ++stats_.rx_errors;
        continue;
      }
      if (*got > kHeaderSize + kMaxFrame) {
        ++stats_.rx_too_big;
        continue;
      }
      rx.pending = *got;
    }
    Hold held = DeliverPending(pair, pass);
    if (held == Hold::kBroken) return;
    if (held == Hold::kEmpty) {
      // The frame waits in the bounce buffer; the backend is not read again
      // until the driver adds buffers and kicks.
      if (!pass.budget_spent(index)) ++stats_.rx_stalls;  // else: ProcessAgain
      watch = false;
      break;
    }
  }
  SetWatching(pair, watch);
}

}  // namespace vmm
