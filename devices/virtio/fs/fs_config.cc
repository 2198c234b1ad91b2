#include "devices/virtio/fs/fs_config.h"

#include <sys/un.h>

#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "devices/vhost_user/vhost_user_device.h"

namespace vmm {
namespace {

using Spec = DeviceSpecOf<FsConfig>;

constexpr size_t kMaxSocketPath = sizeof(sockaddr_un{}.sun_path) - 1;

// struct virtio_fs_config: the tag, then le32 num_request_queues.
std::vector<uint8_t> FsConfigSpace(const FsConfig& fs) {
  std::vector<uint8_t> config(kVirtioFsTagBytes + 4, 0);
  std::memcpy(config.data(), fs.tag.data(), fs.tag.size());
  const uint32_t queues = static_cast<uint32_t>(fs.request_queues);
  std::memcpy(config.data() + kVirtioFsTagBytes, &queues, 4);
  return config;
}

absl::StatusOr<std::shared_ptr<VirtioDevice>> CreateFs(const FsConfig& fs,
                                                       VirtioDeviceHost& host) {
  absl::StatusOr<std::shared_ptr<VhostUserDevice>> device = VhostUserDevice::Create(
      VhostUserDeviceOptions{.name = "virtio-fs",
                             .device_type = kVirtioFsDeviceType,
                             .socket_path = fs.socket_path,
                             // The high-priority queue and the request queues.
                             .max_queues = static_cast<uint16_t>(1 + fs.request_queues),
                             .queue_size = 1024,
                             .config = FsConfigSpace(fs),
                             .reconnect = absl::Seconds(fs.reconnect_seconds)},
      &host.loop(), host.cancellation());
  if (!device.ok()) return device.status();
  if ((*device)->queue_max_sizes().size() < 2) {
    return absl::FailedPreconditionError(absl::StrCat(
        "virtio-fs on ", fs.socket_path, ": the back-end has no request queue"));
  }
  return std::shared_ptr<VirtioDevice>(std::move(*device));
}

}  // namespace

const VirtioDeviceSpec& VirtioFsSpec() {
  static const Spec spec(Spec::Definition{
      .name = "virtio-fs",
      .flag = "fs",
      .summary = "a host directory the guest mounts (mount -t virtiofs TAG), served by virtiofsd",
      .repeatable = true,
      .keys =
          {
              {{"tag", "NAME", "required",
                absl::StrCat("what the guest mounts, 1 to ", kVirtioFsTagBytes, " bytes")},
               [](absl::string_view value, FsConfig& fs) {
                 if (value.empty() || value.size() > kVirtioFsTagBytes ||
                     value.find_first_of(", \t\n") != absl::string_view::npos) {
                   return absl::InvalidArgumentError(absl::StrCat(
                       "'tag=", value, "': expected 1 to ", kVirtioFsTagBytes,
                       " bytes without spaces"));
                 }
                 fs.tag = std::string(value);
                 return absl::OkStatus();
               }},
              {{"socket", "PATH", "required",
                "virtiofsd's vhost-user socket (virtiofsd --socket-path=PATH)"},
               [](absl::string_view value, FsConfig& fs) {
                 if (value.empty() || value.size() > kMaxSocketPath) {
                   return absl::InvalidArgumentError(absl::StrCat(
                       "'socket=", value, "': expected a Unix socket path of 1 to ",
                       kMaxSocketPath, " bytes"));
                 }
                 fs.socket_path = std::string(value);
                 return absl::OkStatus();
               }},
              {{"queues", absl::StrCat("1..", kVirtioFsMaxRequestQueues), "1",
                "request queues (the back-end may offer fewer)"},
               [](absl::string_view value, FsConfig& fs) {
                 int queues = 0;
                 if (!absl::SimpleAtoi(value, &queues) || queues < 1 ||
                     queues > kVirtioFsMaxRequestQueues) {
                   return absl::InvalidArgumentError(absl::StrCat(
                       "'queues=", value, "': expected 1 to ", kVirtioFsMaxRequestQueues));
                 }
                 fs.request_queues = queues;
                 return absl::OkStatus();
               }},
              {{"reconnect", "SECONDS", "0 (off)",
                "when virtiofsd goes away, try its socket again this often; the guest waits"},
               [](absl::string_view value, FsConfig& fs) {
                 absl::StatusOr<int> seconds = ParseReconnectSeconds(value);
                 if (seconds.ok()) fs.reconnect_seconds = *seconds;
                 return seconds.status();
               }},
          },
      .exactly_one_of = {{"tag"}, {"socket"}},
      .create = CreateFs,
  });
  return spec;
}

const VirtioDeviceSpec& FsConfig::spec() const { return VirtioFsSpec(); }

}  // namespace vmm
