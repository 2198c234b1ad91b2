#include "devices/virtio/vsock/vsock_config.h"

#include <sys/un.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "devices/virtio/vsock/vhost_vsock.h"
#include "devices/virtio/vsock/virtio_vsock.h"

namespace vmm {
namespace {

using Spec = DeviceSpecOf<VsockConfig>;

// Guest connections to host port P go to PATH_P: leave room for "_4294967295".
constexpr size_t kMaxSocketPath = sizeof(sockaddr_un{}.sun_path) - 1 - 11;

absl::StatusOr<std::shared_ptr<VirtioDevice>> CreateVsock(const VsockConfig& vsock,
                                                          VirtioDeviceHost& host) {
  if (vsock.vhost) {
    absl::StatusOr<std::shared_ptr<VhostVsock>> device = VhostVsock::Create(vsock.guest_cid);
    if (!device.ok()) return device.status();
    return std::shared_ptr<VirtioDevice>(std::move(*device));
  }
  VsockMuxerOptions options;
  options.guest_cid = vsock.guest_cid;
  options.socket_path = vsock.socket_path;
  // Listens on the socket now (refusing one in use); the device removes the
  // socket file when it goes.
  absl::StatusOr<std::shared_ptr<VirtioVsock>> device =
      VirtioVsock::Create(std::move(options), &host.loop());
  if (!device.ok()) return device.status();
  return std::shared_ptr<VirtioDevice>(std::move(*device));
}

}  // namespace

const VirtioDeviceSpec& VirtioVsockSpec() {
  static const Spec spec(Spec::Definition{
      .name = "virtio-vsock",
      .flag = "vsock",
      .summary = "AF_VSOCK sockets, bridged to Unix sockets as Firecracker does, or the host's "
                 "own AF_VSOCK through vhost-vsock (backend=vhost)",
      .repeatable = false,
      .keys =
          {
              {{"cid", "N", "required",
                absl::StrCat("the guest's context id, ", VirtioVsock::kMinGuestCid, "..",
                             VirtioVsock::kMaxGuestCid)},
               [](absl::string_view value, VsockConfig& vsock) {
                 uint64_t cid = 0;
                 if (!absl::SimpleAtoi(value, &cid) || cid < VirtioVsock::kMinGuestCid ||
                     cid > VirtioVsock::kMaxGuestCid) {
                   return absl::InvalidArgumentError(absl::StrCat(
                       "'cid=", value, "': expected a number from ", VirtioVsock::kMinGuestCid,
                       " to ", VirtioVsock::kMaxGuestCid,
                       " (0-2 and 4294967295, VMADDR_CID_ANY, are reserved)"));
                 }
                 vsock.guest_cid = cid;
                 return absl::OkStatus();
               }},
              {{"socket", "PATH", "required with backend=unix",
                "host programs connect here (then CONNECT <port>); guest connections to "
                "port P go to PATH_P"},
               [](absl::string_view value, VsockConfig& vsock) {
                 if (value.empty()) return absl::InvalidArgumentError("'socket=' needs a path");
                 if (value.size() > kMaxSocketPath) {
                   return absl::InvalidArgumentError(absl::StrCat(
                       "'socket=", value, "' is longer than ", kMaxSocketPath,
                       " bytes (a Unix socket path, with room for _<port>)"));
                 }
                 vsock.socket_path = std::string(value);
                 return absl::OkStatus();
               }},
              {{"backend", "unix|vhost", "unix",
                "unix: vmm bridges to Unix sockets; vhost: the host kernel's AF_VSOCK "
                "(/dev/vhost-vsock, vhost_vsock.ko; host programs connect to CID:PORT)"},
               [](absl::string_view value, VsockConfig& vsock) {
                 if (value != "unix" && value != "vhost") {
                   return absl::InvalidArgumentError(
                       absl::StrCat("'backend=", value, "': expected unix or vhost"));
                 }
                 vsock.vhost = value == "vhost";
                 return absl::OkStatus();
               }},
          },
      .exactly_one_of = {{"cid"}},
      .check =
          [](VsockConfig& vsock) {
            if (vsock.vhost && !vsock.socket_path.empty()) {
              return absl::InvalidArgumentError(
                  "'socket=' is for backend=unix (with vhost, host programs use AF_VSOCK)");
            }
            if (!vsock.vhost && vsock.socket_path.empty()) {
              return absl::InvalidArgumentError("socket=PATH is required (or backend=vhost)");
            }
            return absl::OkStatus();
          },
      .create = CreateVsock,
  });
  return spec;
}

const VirtioDeviceSpec& VsockConfig::spec() const { return VirtioVsockSpec(); }

}  // namespace vmm
