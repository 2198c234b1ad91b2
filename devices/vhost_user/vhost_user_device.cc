#include "devices/vhost_user/vhost_user_device.h"

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace vmm {

namespace vu = vhost_user;

namespace {

// Ring features the back-end implements (it walks the rings).
constexpr uint64_t kRingFeatures = kVirtioFVersion1 | kVirtioFEventIdx | kVirtioFIndirectDesc;
// Device-specific bits live below 24 (virtio 1.x 6).
constexpr uint64_t kDeviceBits = (1ull << 24) - 1;

// A connected, handshaken session and what the back-end offers.
struct Session {
  vu::Frontend frontend;
  uint16_t queues = 0;
  std::vector<uint8_t> config;
  uint64_t features = 0;  // what vmm may offer of the back-end's
};

// `cancel` (may be null) cuts the handshake's waits short; the session
// returned no longer refers to it.
absl::StatusOr<Session> Connect(const VhostUserDeviceOptions& options,
                                const Cancellation* cancel) {
  const std::string who = absl::StrCat(options.name, " on ", options.socket_path);
  auto fail = [&who](const absl::Status& s) { return Annotate(s, who); };
  absl::StatusOr<vu::Channel> channel = vu::Channel::Connect(options.socket_path, options.timeout);
  if (!channel.ok()) return fail(channel.status());
  channel->set_cancel(cancel);
  Session session{vu::Frontend(*std::move(channel))};
  vu::Frontend& frontend = session.frontend;
  if (absl::Status s = frontend.Handshake(); !s.ok()) return fail(s);
  const uint64_t backend = frontend.backend_features();
  if ((backend & kVirtioFVersion1) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(who, ": the back-end does not offer VIRTIO_F_VERSION_1"));
  }
  session.queues = std::max<uint16_t>(options.max_queues, 1);
  if (frontend.HasProtocolFeature(vu::kProtocolMq)) {
    absl::StatusOr<uint64_t> n = frontend.GetQueueNum();
    if (!n.ok()) return fail(n.status());
    if (*n == 0) {
      return absl::FailedPreconditionError(absl::StrCat(who, ": the back-end has no queues"));
    }
    session.queues = static_cast<uint16_t>(std::min<uint64_t>(*n, session.queues));
  }
  session.config = options.config;
  if (options.config_size > 0) {
    absl::StatusOr<std::vector<uint8_t>> c = frontend.GetConfig(0, options.config_size);
    if (!c.ok()) return fail(c.status());
    session.config = *std::move(c);
  }
  session.features = backend & (kRingFeatures | (options.device_features & kDeviceBits));
  frontend.channel().set_cancel(nullptr);
  return session;
}

}  // namespace

absl::StatusOr<std::shared_ptr<VhostUserDevice>> VhostUserDevice::Create(
    VhostUserDeviceOptions options, EventLoop* loop, const Cancellation* cancel) {
  ASSIGN_OR_RETURN(Session session, Connect(options, cancel));
  UniqueFd timer;
  if (options.reconnect > absl::ZeroDuration()) {
    if (loop == nullptr) return absl::InvalidArgumentError("reconnect needs an event loop");
    timer.Reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (!timer.valid()) return ErrnoStatus("timerfd_create");
  }
  std::shared_ptr<VhostUserDevice> device(new VhostUserDevice(
      std::move(options), std::move(session.frontend), session.queues, session.features,
      std::move(session.config), loop));
  device->self_ = device;
  device->timer_ = std::move(timer);
  if (loop != nullptr) {
    absl::MutexLock lock(&device->mu_);
    RETURN_IF_ERROR(device->WatchLocked());
  }
  return device;
}

VhostUserDevice::VhostUserDevice(VhostUserDeviceOptions options, vu::Frontend frontend,
                                 uint16_t num_queues, uint64_t features,
                                 std::vector<uint8_t> config, EventLoop* loop)
    : options_(std::move(options)),
      num_queues_(num_queues),
      features_(features),
      config_(std::move(config)),
      loop_(loop),
      frontend_(std::move(frontend)) {}

VhostUserDevice::~VhostUserDevice() {
  Reset();
  absl::MutexLock lock(&mu_);
  UnwatchLocked();
  if (reconnecting_) (void)loop_->Remove(timer_.get());
  reconnecting_ = false;
}

void VhostUserDevice::ReadConfig(uint64_t offset, absl::Span<uint8_t> data) {
  ReadConfigBytes(absl::MakeConstSpan(config_), offset, data);
}

absl::Status VhostUserDevice::Activate(VirtioActivation activation) {
  VirtioActiveQueues active;
  RETURN_IF_ERROR(TakeActivation(options_.name, std::move(activation), active));
  absl::MutexLock lock(&mu_);
  if (!failure_.empty()) {
    return absl::UnavailableError(absl::StrCat(options_.name, ": ", failure_));
  }
  if (reconnecting_) {
    return absl::UnavailableError(absl::StrCat(options_.name, ": waiting for the back-end at ",
                                               options_.socket_path, " to come back"));
  }
  StopRingsLocked();
  memory_ = active.memory;
  negotiated_ = active.features;
  for (uint32_t q = 0; q < active.queues.size(); ++q) {
    if (!active.QueueUsable(q)) continue;
    rings_.push_back(Ring{q, active.queues[q].config(), active.kick_fds[q], active.call_fds[q]});
  }
  if (absl::Status s = StartRingsLocked(/*resume=*/false); !s.ok()) {
    FailLocked(s.message());
    return absl::UnavailableError(absl::StrCat(options_.name, ": ", s.message()));
  }
  context_ = active.context;
  return absl::OkStatus();
}

absl::Status VhostUserDevice::StartRingsLocked(bool resume) {
  ASSIGN_OR_RETURN(vu::MemoryTable table, vu::MemoryTableFor(*memory_));
  RETURN_IF_ERROR(frontend_.SetFeatures(negotiated_ & features_));
  RETURN_IF_ERROR(frontend_.SetMemTable(table));
  // With protocol features, rings start disabled and wait for
  // SET_VRING_ENABLE; without, they start with their kick.
  const bool enable = frontend_.speaks_protocol_features();
  for (const Ring& ring : rings_) {
    ASSIGN_OR_RETURN(VirtqueueHostAddresses at, VirtqueueHostAddressesOf(ring.config, *memory_));
    uint16_t base = 0;
    if (resume) {
      // Where the guest's used ring is: everything before it is done; what
      // the old back-end took after it is taken again.
      ASSIGN_OR_RETURN(absl::Span<uint8_t> used, memory_->Slice(ring.config.used, 4));
      base = __atomic_load_n(reinterpret_cast<const uint16_t*>(used.data() + 2), __ATOMIC_ACQUIRE);
    }
    RETURN_IF_ERROR(frontend_.SetVringNum(ring.index, ring.config.size));
    RETURN_IF_ERROR(frontend_.SetVringAddr(
        vu::VringAddr{.index = ring.index, .desc_user_addr = at.desc, .used_user_addr = at.used,
                      .avail_user_addr = at.avail}));
    RETURN_IF_ERROR(frontend_.SetVringBase(ring.index, base));
    RETURN_IF_ERROR(frontend_.SetVringKick(ring.index, ring.kick));
    RETURN_IF_ERROR(frontend_.SetVringCall(ring.index, ring.call));
    if (enable) RETURN_IF_ERROR(frontend_.SetVringEnable(ring.index, true));
  }
  if (resume) {
    // Requests the guest queued while nobody listened: look now.
    const uint64_t one = 1;
    for (const Ring& ring : rings_) (void)!::write(ring.kick, &one, sizeof(one));
  }
  return absl::OkStatus();
}

void VhostUserDevice::Reset() {
  absl::MutexLock lock(&mu_);
  StopRingsLocked();
  context_ = nullptr;
  memory_ = nullptr;
}

void VhostUserDevice::StopRingsLocked() {
  for (const Ring& ring : rings_) {
    if (reconnecting_ || frontend_.channel().broken()) break;
    // GET_VRING_BASE stops the ring (and says where the back-end got to).
    absl::StatusOr<uint32_t> base = frontend_.GetVringBase(ring.index);
    if (!base.ok()) FailLocked(base.status().message());
  }
  rings_.clear();
}

absl::Status VhostUserDevice::WatchLocked() {
  if (loop_ == nullptr || watching_) return absl::OkStatus();
  // RDHUP only: replies are read by the requests themselves; the loop looks
  // for the back-end going away. Weak: a hang-up racing the device's
  // destruction finds nothing to do.
  std::weak_ptr<VhostUserDevice> weak = self_;
  RETURN_IF_ERROR(loop_->Add(frontend_.channel().fd(), EPOLLRDHUP, [weak](uint32_t) {
    if (std::shared_ptr<VhostUserDevice> self = weak.lock()) self->OnBackendHangUp();
  }));
  watching_ = true;
  return absl::OkStatus();
}

void VhostUserDevice::UnwatchLocked() {
  if (!watching_) return;
  (void)loop_->Remove(frontend_.channel().fd());
  watching_ = false;
}

void VhostUserDevice::FailLocked(absl::string_view why) {
  if (failure_.empty()) failure_ = std::string(why);
  UnwatchLocked();
}

void VhostUserDevice::OnBackendHangUp() {
  VirtioDeviceContext* context;
  std::string why;
  {
    absl::MutexLock lock(&mu_);
    if (timer_.valid() && failure_.empty()) {
      // reconnect: wait for the back-end to come back; the guest waits too.
      UnwatchLocked();
      const int64_t ns = absl::ToInt64Nanoseconds(options_.reconnect);
      itimerspec every{};
      every.it_interval = {static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
      every.it_value = every.it_interval;
      std::weak_ptr<VhostUserDevice> weak = self_;
      if (!reconnecting_ && ::timerfd_settime(timer_.get(), 0, &every, nullptr) == 0 &&
          loop_->Add(timer_.get(), EPOLLIN, [weak](uint32_t) {
                 if (std::shared_ptr<VhostUserDevice> self = weak.lock()) self->OnReconnectTimer();
               }).ok()) {
        reconnecting_ = true;
        return;
      }
    }
    FailLocked(absl::StrCat("the back-end at ", options_.socket_path, " closed the connection"));
    context = context_;
    why = absl::StrCat(options_.name, ": ", failure_);
  }
  if (context != nullptr) context->DeviceNeedsReset(why);
}

void VhostUserDevice::OnReconnectTimer() {
  uint64_t ticks;
  (void)!::read(timer_.get(), &ticks, sizeof(ticks));
  VirtioDeviceContext* context = nullptr;
  std::string why;
  {
    absl::MutexLock lock(&mu_);
    if (!reconnecting_) return;
    absl::StatusOr<Session> session = Connect(options_, /*cancel=*/nullptr);
    if (!session.ok()) return;  // not back yet: the next tick tries again
    frontend_ = std::move(session->frontend);
    absl::Status s = absl::OkStatus();
    bool permanent = false;
    if ((negotiated_ & session->features) != (negotiated_ & features_) ||
        session->queues < num_queues_) {
      s = absl::FailedPreconditionError(
          "the back-end came back without the features or queues the driver has");
      permanent = true;
    } else if (!rings_.empty()) {
      s = StartRingsLocked(/*resume=*/true);
      // A back-end still starting may drop the first connection: the next
      // tick tries again, from where the used ring then is. Anything it
      // refused (rather than hung up on) is for the driver to handle.
      permanent = !s.ok() && !frontend_.channel().broken();
    }
    if (s.ok()) s = WatchLocked();
    if (!s.ok() && !permanent) return;
    // The timer stops here: a session, or an error the guest must see.
    const itimerspec off{};
    (void)::timerfd_settime(timer_.get(), 0, &off, nullptr);
    (void)loop_->Remove(timer_.get());
    reconnecting_ = false;
    if (s.ok()) {
      ++reconnects_;
      return;
    }
    FailLocked(s.message());
    context = context_;
    why = absl::StrCat(options_.name, ": ", failure_);
  }
  if (context != nullptr) context->DeviceNeedsReset(why);
}

std::string VhostUserDevice::failure() const {
  absl::MutexLock lock(&mu_);
  return failure_;
}

bool VhostUserDevice::reconnecting() const {
  absl::MutexLock lock(&mu_);
  return reconnecting_;
}

uint64_t VhostUserDevice::reconnects() const {
  absl::MutexLock lock(&mu_);
  return reconnects_;
}

}  // namespace vmm
