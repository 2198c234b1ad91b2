#include "devices/vhost_user/vhost_user_device.h"

#include <sys/epoll.h>

#include <algorithm>
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

}  // namespace

absl::StatusOr<std::shared_ptr<VhostUserDevice>> VhostUserDevice::Create(
    VhostUserDeviceOptions options, EventLoop* loop) {
  const std::string who = absl::StrCat(options.name, " on ", options.socket_path);
  auto fail = [&who](const absl::Status& s) { return Annotate(s, who); };
  absl::StatusOr<vu::Channel> channel = vu::Channel::Connect(options.socket_path, options.timeout);
  if (!channel.ok()) return fail(channel.status());
  vu::Frontend frontend(*std::move(channel));
  if (absl::Status s = frontend.Handshake(); !s.ok()) return fail(s);
  const uint64_t backend = frontend.backend_features();
  if ((backend & kVirtioFVersion1) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(who, ": the back-end does not offer VIRTIO_F_VERSION_1"));
  }
  uint16_t queues = std::max<uint16_t>(options.max_queues, 1);
  if (frontend.HasProtocolFeature(vu::kProtocolMq)) {
    absl::StatusOr<uint64_t> n = frontend.GetQueueNum();
    if (!n.ok()) return fail(n.status());
    if (*n == 0) return absl::FailedPreconditionError(absl::StrCat(who, ": the back-end has no queues"));
    queues = static_cast<uint16_t>(std::min<uint64_t>(*n, queues));
  }
  std::vector<uint8_t> config = options.config;
  if (options.config_size > 0) {
    absl::StatusOr<std::vector<uint8_t>> c = frontend.GetConfig(0, options.config_size);
    if (!c.ok()) return fail(c.status());
    config = *std::move(c);
  }
  const uint64_t features =
      backend & (kRingFeatures | (options.device_features & kDeviceBits));
  std::shared_ptr<VhostUserDevice> device(new VhostUserDevice(
      std::move(options), std::move(frontend), queues, features, std::move(config), loop));
  if (loop != nullptr) {
    absl::MutexLock lock(&device->mu_);
    const int fd = device->frontend_.channel().fd();
    // RDHUP only: replies are read by the requests themselves; the loop
    // looks for the back-end going away.
    // Weak: a hang-up racing the device's destruction finds nothing to do.
    std::weak_ptr<VhostUserDevice> weak = device;
    RETURN_IF_ERROR(loop->Add(fd, EPOLLRDHUP, [weak](uint32_t) {
      if (std::shared_ptr<VhostUserDevice> self = weak.lock()) self->OnBackendHangUp();
    }));
    device->watching_ = true;
  }
  return device;
}

VhostUserDevice::VhostUserDevice(VhostUserDeviceOptions options, vu::Frontend frontend,
                                 uint16_t num_queues, uint64_t features,
                                 std::vector<uint8_t> config, EventLoop* loop)
    : options_(std::move(options)),
      num_queues_(num_queues),
      backend_features_(features),
      features_(features),
      config_(std::move(config)),
      loop_(loop),
      frontend_(std::move(frontend)) {}

VhostUserDevice::~VhostUserDevice() {
  Reset();
  absl::MutexLock lock(&mu_);
  if (watching_) (void)loop_->Remove(frontend_.channel().fd());
  watching_ = false;
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
  StopRingsLocked();
  if (absl::Status s = StartRings(active); !s.ok()) {
    FailLocked(s.message());
    return absl::UnavailableError(absl::StrCat(options_.name, ": ", s.message()));
  }
  context_ = active.context;
  return absl::OkStatus();
}

absl::Status VhostUserDevice::StartRings(const VirtioActiveQueues& active) {
  ASSIGN_OR_RETURN(vu::MemoryTable table, vu::MemoryTableFor(*active.memory));
  RETURN_IF_ERROR(frontend_.SetFeatures(active.features & backend_features_));
  RETURN_IF_ERROR(frontend_.SetMemTable(table));
  // With protocol features, rings start disabled and wait for
  // SET_VRING_ENABLE; without, they start with their kick.
  const bool enable = frontend_.speaks_protocol_features();
  for (uint32_t q = 0; q < active.queues.size(); ++q) {
    if (!active.QueueUsable(q)) continue;
    const VirtqueueConfig& config = active.queues[q].config();
    ASSIGN_OR_RETURN(VirtqueueHostAddresses at, VirtqueueHostAddressesOf(config, *active.memory));
    started_.push_back(q);
    RETURN_IF_ERROR(frontend_.SetVringNum(q, config.size));
    RETURN_IF_ERROR(frontend_.SetVringAddr(
        vu::VringAddr{.index = q, .desc_user_addr = at.desc, .used_user_addr = at.used,
                      .avail_user_addr = at.avail}));
    RETURN_IF_ERROR(frontend_.SetVringBase(q, 0));
    RETURN_IF_ERROR(frontend_.SetVringKick(q, active.kick_fds[q]));
    RETURN_IF_ERROR(frontend_.SetVringCall(q, active.call_fds[q]));
    if (enable) RETURN_IF_ERROR(frontend_.SetVringEnable(q, true));
  }
  return absl::OkStatus();
}

void VhostUserDevice::Reset() {
  absl::MutexLock lock(&mu_);
  StopRingsLocked();
  context_ = nullptr;
}

void VhostUserDevice::StopRingsLocked() {
  for (uint32_t q : started_) {
    if (frontend_.channel().broken()) break;
    // GET_VRING_BASE stops the ring (and says where the back-end got to).
    absl::StatusOr<uint32_t> base = frontend_.GetVringBase(q);
    if (!base.ok()) FailLocked(base.status().message());
  }
  started_.clear();
}

void VhostUserDevice::FailLocked(absl::string_view why) {
  if (failure_.empty()) failure_ = std::string(why);
  if (watching_) {
    (void)loop_->Remove(frontend_.channel().fd());
    watching_ = false;
  }
}

void VhostUserDevice::OnBackendHangUp() {
  VirtioDeviceContext* context;
  std::string why;
  {
    absl::MutexLock lock(&mu_);
    FailLocked(absl::StrCat("the back-end at ", options_.socket_path, " closed the connection"));
    context = context_;
    why = absl::StrCat(options_.name, ": ", failure_);
  }
  if (context != nullptr) context->DeviceNeedsReset(why);
}

std::string VhostUserDevice::failure() const {
  absl::MutexLock lock(&mu_);
  return failure_;
}

}  // namespace vmm
