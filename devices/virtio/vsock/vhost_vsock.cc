#include "devices/virtio/vsock/vhost_vsock.h"

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace vmm {
namespace {

// What this device may offer; the kernel's GET_FEATURES decides.
constexpr uint64_t kWanted = kVirtioFVersion1 | kVirtioFEventIdx | kVirtioFIndirectDesc |
                             (uint64_t{1} << VhostVsock::kFSeqpacket);

struct Config {
  uint64_t guest_cid;
};

}  // namespace

absl::StatusOr<std::shared_ptr<VhostVsock>> VhostVsock::Create(uint64_t guest_cid,
                                                               const std::string& device_path) {
  ASSIGN_OR_RETURN(VhostKernel vhost, VhostKernel::Open(VhostKernel::Kind::kVsock, device_path));
  ASSIGN_OR_RETURN(uint64_t features, vhost.GetFeatures());
  if (absl::Status s = vhost.VsockSetGuestCid(guest_cid); !s.ok()) {
    if (absl::StrContains(s.message(), std::strerror(EADDRINUSE))) {
      return absl::AlreadyExistsError(absl::StrCat(
          "guest cid ", guest_cid, " is taken on this host (another VM has it): ", s.message()));
    }
    return s;
  }
  return std::shared_ptr<VhostVsock>(new VhostVsock(std::move(vhost), guest_cid, features));
}

VhostVsock::VhostVsock(VhostKernel vhost, uint64_t guest_cid, uint64_t vhost_features)
    : guest_cid_(guest_cid),
      vhost_features_(vhost_features),
      features_(kWanted & vhost_features),
      vhost_(std::move(vhost)) {}

VhostVsock::~VhostVsock() { Reset(); }

void VhostVsock::ReadConfig(uint64_t offset, absl::Span<uint8_t> data) {
  ReadConfigBytes(Config{guest_cid_}, offset, data);
}

// guest_cid is read-only.
void VhostVsock::WriteConfig(uint64_t /*offset*/, absl::Span<const uint8_t> /*data*/) {}

absl::Status VhostVsock::Activate(VirtioActivation activation) {
  VirtioActiveQueues active;
  RETURN_IF_ERROR(TakeActivation("virtio-vsock", std::move(activation), active));
  if (!(active.features & kVirtioFVersion1)) {
    return absl::FailedPreconditionError("virtio-vsock: the driver did not accept VERSION_1");
  }
  if (!active.QueueUsable(0) || !active.QueueUsable(1)) {
    return absl::FailedPreconditionError("virtio-vsock: the driver did not enable rx and tx");
  }
  absl::MutexLock lock(&mu_);
  StopLocked();
  const uint16_t rings[] = {0, 1};
  absl::Status s = vhost_.StartRings(active, rings, active.features & vhost_features_);
  if (s.ok()) s = vhost_.VsockSetRunning(true);
  running_ = true;  // so that a failure half-way is stopped too
  if (!s.ok()) {
    StopLocked();
    return absl::InternalError(absl::StrCat("virtio-vsock: ", s.message()));
  }
  return absl::OkStatus();
}

void VhostVsock::Reset() {
  absl::MutexLock lock(&mu_);
  StopLocked();
}

void VhostVsock::StopLocked() {
  if (!running_) return;
  (void)vhost_.VsockSetRunning(false);
  vhost_.StopRings(2);
  running_ = false;
}

bool VhostVsock::running() const {
  absl::MutexLock lock(&mu_);
  return running_;
}

}  // namespace vmm
