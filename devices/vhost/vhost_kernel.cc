#include "devices/vhost/vhost_kernel.h"

#include <fcntl.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "devices/vhost/vhost_uapi.h"

namespace vmm {

namespace uapi = vhost_uapi;

absl::StatusOr<VhostKernel> VhostKernel::Open(Kind kind, const std::string& path) {
  const char* node = kind == Kind::kNet ? "/dev/vhost-net" : "/dev/vhost-vsock";
  const char* module = kind == Kind::kNet ? "vhost_net" : "vhost_vsock";
  const std::string where = path.empty() ? node : path;
  UniqueFd fd(::open(where.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) {
    const int err = errno;
    return absl::ErrnoToStatus(
        err, absl::StrCat("cannot open ", where,
                          err == ENOENT ? absl::StrCat(" (load the ", module, " module: modprobe ",
                                                       module, ")")
                                        : "",
                          ": ", std::strerror(err)));
  }
  VhostKernel vhost(std::move(fd), where);
  RETURN_IF_ERROR(vhost.Ioctl(uapi::kSetOwner, nullptr, "VHOST_SET_OWNER"));
  return vhost;
}

absl::Status VhostKernel::Ioctl(unsigned long request, const void* arg, const char* what) {
  if (::ioctl(fd_.get(), request, arg) == 0) return absl::OkStatus();
  return ErrnoStatus(absl::StrCat(path_, ": ", what));
}

absl::StatusOr<uint64_t> VhostKernel::GetFeatures() {
  uint64_t features = 0;
  RETURN_IF_ERROR(Ioctl(uapi::kGetFeatures, &features, "VHOST_GET_FEATURES"));
  return features;
}

absl::Status VhostKernel::SetFeatures(uint64_t features) {
  return Ioctl(uapi::kSetFeatures, &features, "VHOST_SET_FEATURES");
}

absl::Status VhostKernel::SetMemTable(const GuestMemory& memory) {
  const size_t n = memory.regions().size();
  std::vector<uint8_t> buf(sizeof(uapi::Memory) + n * sizeof(uapi::MemoryRegion), 0);
  auto* table = reinterpret_cast<uapi::Memory*>(buf.data());
  table->nregions = static_cast<uint32_t>(n);
  for (size_t i = 0; i < n; ++i) {
    const GuestMemory::Region& r = memory.regions()[i];
    table->regions[i].guest_phys_addr = r.start.value();
    table->regions[i].memory_size = r.size;
    table->regions[i].userspace_addr = reinterpret_cast<uint64_t>(r.host);
  }
  return Ioctl(uapi::kSetMemTable, table, "VHOST_SET_MEM_TABLE");
}

absl::Status VhostKernel::SetVring(uint32_t index, const VirtqueueConfig& config,
                                   const GuestMemory& memory, uint16_t avail_base) {
  ASSIGN_OR_RETURN(VirtqueueHostAddresses at, VirtqueueHostAddressesOf(config, memory));
  const uapi::VringState num{index, config.size};
  RETURN_IF_ERROR(Ioctl(uapi::kSetVringNum, &num, "VHOST_SET_VRING_NUM"));
  const uapi::VringState base{index, avail_base};
  RETURN_IF_ERROR(Ioctl(uapi::kSetVringBase, &base, "VHOST_SET_VRING_BASE"));
  uapi::VringAddr addr{};
  addr.index = index;
  addr.desc_user_addr = at.desc;
  addr.avail_user_addr = at.avail;
  addr.used_user_addr = at.used;
  return Ioctl(uapi::kSetVringAddr, &addr, "VHOST_SET_VRING_ADDR");
}

absl::StatusOr<uint16_t> VhostKernel::GetVringBase(uint32_t index) {
  uapi::VringState state{index, 0};
  RETURN_IF_ERROR(Ioctl(uapi::kGetVringBase, &state, "VHOST_GET_VRING_BASE"));
  return static_cast<uint16_t>(state.num);
}

absl::Status VhostKernel::SetVringKick(uint32_t index, int fd) {
  const uapi::VringFile file{index, fd};
  return Ioctl(uapi::kSetVringKick, &file, "VHOST_SET_VRING_KICK");
}

absl::Status VhostKernel::SetVringCall(uint32_t index, int fd) {
  const uapi::VringFile file{index, fd};
  return Ioctl(uapi::kSetVringCall, &file, "VHOST_SET_VRING_CALL");
}

absl::Status VhostKernel::StartRings(const VirtioActiveQueues& active,
                                     absl::Span<const uint16_t> queues, uint64_t features) {
  RETURN_IF_ERROR(SetFeatures(features));
  RETURN_IF_ERROR(SetMemTable(*active.memory));
  for (uint32_t ring = 0; ring < queues.size(); ++ring) {
    const uint16_t q = queues[ring];
    if (q >= active.queues.size() || active.kick_fds[q] < 0 || active.call_fds[q] < 0) {
      return absl::InternalError(absl::StrCat(path_, ": queue ", q, " has no kick or call eventfd"));
    }
    RETURN_IF_ERROR(SetVring(ring, active.queues[q].config(), *active.memory, 0));
    RETURN_IF_ERROR(SetVringKick(ring, active.kick_fds[q]));
    RETURN_IF_ERROR(SetVringCall(ring, active.call_fds[q]));
  }
  return absl::OkStatus();
}

void VhostKernel::StopRings(uint32_t count) {
  for (uint32_t ring = 0; ring < count; ++ring) {
    (void)GetVringBase(ring);
    (void)SetVringKick(ring, -1);
    (void)SetVringCall(ring, -1);
  }
}

absl::Status VhostKernel::NetSetBackend(uint32_t index, int tap_fd) {
  const uapi::VringFile file{index, tap_fd};
  return Ioctl(uapi::kNetSetBackend, &file, "VHOST_NET_SET_BACKEND");
}

absl::Status VhostKernel::VsockSetGuestCid(uint64_t cid) {
  return Ioctl(uapi::kVsockSetGuestCid, &cid, "VHOST_VSOCK_SET_GUEST_CID");
}

absl::Status VhostKernel::VsockSetRunning(bool running) {
  const int value = running ? 1 : 0;
  return Ioctl(uapi::kVsockSetRunning, &value, "VHOST_VSOCK_SET_RUNNING");
}

}  // namespace vmm
