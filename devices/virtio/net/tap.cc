#include "devices/virtio/net/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "devices/virtio/net/virtio_net_spec.h"

namespace vmm {
namespace {

constexpr int kVnetHeaderSize = sizeof(virtio_net::Header);
static_assert(kVnetHeaderSize == 12);

constexpr unsigned kTsoOffloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;

absl::Status TapError(const std::string& name, absl::string_view what) {
  const int err = errno;
  std::string hint;
  if (err == EPERM || err == EACCES) {
    hint = " (needs CAP_NET_ADMIN, or a persistent tap owned by this user)";
  } else if (err == EBUSY) {
    hint = " (in use by another process, or a single-queue tap opened twice)";
  } else if (err == EINVAL) {
    hint = " (does it exist with a different type or multi_queue setting?)";
  } else if (err == ENOENT || err == ENODEV) {
    hint = " (/dev/net/tun missing: modprobe tun)";
  }
  return absl::Status(absl::ErrnoToStatus(err, "").code(),
                      absl::StrCat("tap ", name, ": ", what, ": ", std::strerror(err), hint));
}

}  // namespace

Tap::Tap(std::string name, std::vector<UniqueFd> fds) : name_(std::move(name)), fds_(std::move(fds)) {}

absl::StatusOr<std::unique_ptr<Tap>> Tap::Open(const std::string& name, int queues, bool* created) {
  if (name.empty() || name.size() >= IFNAMSIZ) {
    return absl::InvalidArgumentError(
        absl::StrCat("tap '", name, "': a tap name is 1 to ", IFNAMSIZ - 1, " characters"));
  }
  if (queues < 1) return absl::InvalidArgumentError(absl::StrCat("tap ", name, ": queues < 1"));
  // Does it exist already? (For the notice only; TUNSETIFF creates it if not.)
  const bool existed = ::access(absl::StrCat("/sys/class/net/", name).c_str(), F_OK) == 0;
  std::vector<UniqueFd> fds;
  for (int q = 0; q < queues; ++q) {
    UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
    if (!fd.valid()) return TapError(name, "open /dev/net/tun");
    ifreq ifr{};
    std::memcpy(ifr.ifr_name, name.data(), name.size());
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (queues > 1) ifr.ifr_flags |= IFF_MULTI_QUEUE;
    if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0) {
      return TapError(name, absl::StrCat("TUNSETIFF (queue ", q, ")"));
    }
    fds.push_back(std::move(fd));
  }
  if (created != nullptr) *created = !existed;
  std::unique_ptr<Tap> tap(new Tap(name, std::move(fds)));
  RETURN_IF_ERROR(tap->Configure());
  return tap;
}

absl::StatusOr<std::unique_ptr<Tap>> Tap::Adopt(int fd) {
  const std::string what = absl::StrCat("fd ", fd);
  UniqueFd dup(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
  if (!dup.valid()) return TapError(what, "dup");
  ifreq ifr{};
  if (::ioctl(dup.get(), TUNGETIFF, &ifr) != 0) {
    return TapError(what, "TUNGETIFF (is it an open tap?)");
  }
  if ((ifr.ifr_flags & IFF_TAP) == 0 || (ifr.ifr_flags & IFF_NO_PI) == 0 ||
      (ifr.ifr_flags & IFF_VNET_HDR) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tap ", what, ": must be a tap opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR"));
  }
  const int flags = ::fcntl(dup.get(), F_GETFL);
  if (flags < 0 || ::fcntl(dup.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    return TapError(what, "O_NONBLOCK");
  }
  std::vector<UniqueFd> fds;
  fds.push_back(std::move(dup));
  std::unique_ptr<Tap> tap(new Tap(std::string(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ)),
                                   std::move(fds)));
  RETURN_IF_ERROR(tap->Configure());
  return tap;
}

absl::Status Tap::Configure() {
  int size = kVnetHeaderSize;
  if (::ioctl(fds_[0].get(), TUNSETVNETHDRSZ, &size) != 0) {
    return TapError(name_, "TUNSETVNETHDRSZ");
  }
  // What the kernel lets us promise the guest (the offloads apply to the
  // whole tap, so queue 0 speaks for all).
  if (::ioctl(fds_[0].get(), TUNSETOFFLOAD, kTsoOffloads) == 0) {
    supported_offloads_ |= kTsoOffloads;
  } else if (::ioctl(fds_[0].get(), TUNSETOFFLOAD, TUN_F_CSUM) == 0) {
    supported_offloads_ |= TUN_F_CSUM;
  }
  if ((supported_offloads_ & TUN_F_CSUM) != 0 &&
      ::ioctl(fds_[0].get(), TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_UFO) == 0) {
    supported_offloads_ |= TUN_F_UFO;
  }
  // Nothing until a guest negotiates.
  if (::ioctl(fds_[0].get(), TUNSETOFFLOAD, 0u) != 0) return TapError(name_, "TUNSETOFFLOAD 0");
  return absl::OkStatus();
}

absl::StatusOr<size_t> Tap::ReadFrame(int q, absl::Span<uint8_t> buf) {
  for (;;) {
    ssize_t n = ::read(fds_[q].get(), buf.data(), buf.size());
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return 0;
    return TapError(name_, absl::StrCat("read (queue ", q, ")"));
  }
}

absl::Status Tap::WriteFrame(int q, absl::Span<const iovec> iov) {
  if (iov.size() > IOV_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("tap ", name_, ": frame in ", iov.size(),
                                                   " pieces (more than IOV_MAX)"));
  }
  for (;;) {
    ssize_t n = ::writev(fds_[q].get(), iov.data(), static_cast<int>(iov.size()));
    if (n >= 0) return absl::OkStatus();
    if (errno == EINTR) continue;
    return TapError(name_, absl::StrCat("write (queue ", q, ")"));
  }
}

absl::Status Tap::SetOffloads(unsigned tun_flags) {
  if (::ioctl(fds_[0].get(), TUNSETOFFLOAD, tun_flags & supported_offloads_) != 0) {
    return TapError(name_, absl::StrCat("TUNSETOFFLOAD 0x", absl::Hex(tun_flags)));
  }
  return absl::OkStatus();
}

absl::Status Tap::SetQueueEnabled(int q, bool enabled) {
  if (fds_.size() == 1) return absl::OkStatus();  // a single-queue tap has nothing to steer
  ifreq ifr{};
  ifr.ifr_flags = enabled ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
  if (::ioctl(fds_[q].get(), TUNSETQUEUE, &ifr) != 0 && errno != EINVAL) {
    // EINVAL: it is attached (detached) already.
    return TapError(name_, absl::StrCat(enabled ? "attach" : "detach", " queue ", q));
  }
  return absl::OkStatus();
}

}  // namespace vmm
