#include "devices/virtio/block/block_config.h"

#include <linux/virtio_blk.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "devices/vhost_user/vhost_user_device.h"
#include "devices/virtio/block/virtio_block.h"

namespace vmm {
namespace {

using Spec = DeviceSpecOf<DiskConfig>;

// virtio-blk feature bits a vhost-user-blk back-end may have vmm offer:
// SIZE_MAX, SEG_MAX, GEOMETRY, RO, BLK_SIZE, FLUSH, TOPOLOGY, MQ, DISCARD,
// WRITE_ZEROES (not CONFIG_WCE: config writes are not passed on).
constexpr uint64_t kVhostUserBlkFeatures =
    (1u << VIRTIO_BLK_F_SIZE_MAX) | (1u << VIRTIO_BLK_F_SEG_MAX) | (1u << VIRTIO_BLK_F_GEOMETRY) |
    (1u << VIRTIO_BLK_F_RO) | (1u << VIRTIO_BLK_F_BLK_SIZE) | (1u << VIRTIO_BLK_F_FLUSH) |
    (1u << VIRTIO_BLK_F_TOPOLOGY) | (1u << VIRTIO_BLK_F_MQ) | (1u << VIRTIO_BLK_F_DISCARD) |
    (1u << VIRTIO_BLK_F_WRITE_ZEROES);
// The config space read from the back-end: virtio_blk_config up to and
// including write_zeroes_may_unmap and its padding (every field the
// features above describe).
constexpr uint32_t kVhostUserBlkConfigSize = 60;

absl::StatusOr<std::shared_ptr<VirtioDevice>> CreateBlock(const DiskConfig& disk,
                                                          VirtioDeviceHost& host) {
  if (!disk.vhost_user.empty()) {
    absl::StatusOr<std::shared_ptr<VhostUserDevice>> device = VhostUserDevice::Create(
        VhostUserDeviceOptions{.name = "vhost-user-blk",
                               .device_type = VirtioBlock::kDeviceType,
                               .socket_path = disk.vhost_user,
                               .device_features = kVhostUserBlkFeatures,
                               .max_queues = 1,
                               .queue_size = 256,
                               .config_size = kVhostUserBlkConfigSize,
                               .reconnect = absl::Seconds(disk.reconnect_seconds)},
        &host.loop(), host.cancellation());
    if (!device.ok()) return device.status();
    return std::shared_ptr<VirtioDevice>(std::move(*device));
  }
  std::string warning;
  absl::StatusOr<std::unique_ptr<VirtioBlock>> block = VirtioBlock::Open(disk, &warning);
  if (!block.ok()) return block.status();
  if (!warning.empty()) host.Notice(warning);
  return std::shared_ptr<VirtioDevice>(std::move(*block));
}

}  // namespace

const VirtioDeviceSpec& VirtioBlockSpec() {
  static const Spec spec(Spec::Definition{
      .name = "virtio-blk",
      .flag = "disk",
      .summary = "a disk on a raw image file or block device, or a vhost-user-blk back-end",
      .repeatable = true,
      .keys =
          {
              {{"path", "PATH", "required",
                "the image (opened read-write unless readonly=on); or vhost_user= instead"},
               [](absl::string_view value, DiskConfig& disk) {
                 if (value.empty()) {
                   return absl::InvalidArgumentError("'path=' needs an image file");
                 }
                 disk.path = std::string(value);
                 return absl::OkStatus();
               }},
              {{"readonly", "on|off", "off", "refuse the guest's writes (VIRTIO_BLK_F_RO)"},
               [](absl::string_view value, DiskConfig& disk) {
                 absl::StatusOr<bool> on = ParseOnOff("readonly", value);
                 if (on.ok()) disk.read_only = *on;
                 return on.status();
               }},
              {{"serial", "STR", "none", "the disk's serial (GET_ID), at most 20 bytes"},
               [](absl::string_view value, DiskConfig& disk) {
                 if (value.size() > VIRTIO_BLK_ID_BYTES) {
                   return absl::InvalidArgumentError(absl::StrCat(
                       "'serial=", value, "' is longer than ", VIRTIO_BLK_ID_BYTES, " bytes"));
                 }
                 disk.serial = std::string(value);
                 return absl::OkStatus();
               }},
              {{"direct", "on|off", "off", "O_DIRECT: bypass the host's page cache"},
               [](absl::string_view value, DiskConfig& disk) {
                 absl::StatusOr<bool> on = ParseOnOff("direct", value);
                 if (on.ok()) disk.direct = *on;
                 return on.status();
               }},
              {{"poll_us", "N", "32 on 2+ host CPUs, else 0",
                "after serving requests, watch the queue up to N µs (adaptive) before "
                "sleeping; saves the guest a kick per request (0: off, at most 1000)"},
               [](absl::string_view value, DiskConfig& disk) {
                 int us = 0;
                 if (!absl::SimpleAtoi(value, &us) || us < 0 || us > 1000) {
                   return absl::InvalidArgumentError(
                       absl::StrCat("'poll_us=", value, "' is not a number from 0 to 1000"));
                 }
                 disk.poll_us = us;
                 return absl::OkStatus();
               }},
              {{"vhost_user", "SOCKET", "",
                "the disk is a vhost-user-blk back-end's listening on SOCKET "
                "(qemu-storage-daemon --export type=vhost-user-blk); guest RAM is shared"},
               [](absl::string_view value, DiskConfig& disk) {
                 if (value.empty()) {
                   return absl::InvalidArgumentError("'vhost_user=' needs a socket path");
                 }
                 disk.vhost_user = std::string(value);
                 return absl::OkStatus();
               }},
              {{"reconnect", "SECONDS", "0 (off)",
                "vhost_user: when the back-end goes away, try its socket again this often; "
                "the guest waits instead of getting errors"},
               [](absl::string_view value, DiskConfig& disk) {
                 absl::StatusOr<int> seconds = ParseReconnectSeconds(value);
                 if (seconds.ok()) disk.reconnect_seconds = *seconds;
                 return seconds.status();
               }},
          },
      .check =
          [](DiskConfig& disk) {
            if (!disk.vhost_user.empty()) {
              if (!disk.path.empty()) {
                return absl::InvalidArgumentError(
                    "give path=IMAGE or vhost_user=SOCKET, not both");
              }
              if (disk.read_only || disk.direct || !disk.serial.empty() || disk.poll_us) {
                return absl::InvalidArgumentError(
                    "readonly=, direct=, serial= and poll_us= are the vhost-user back-end's "
                    "to set "
                    "(qemu-storage-daemon: writable=, the blockdev's cache options)");
              }
              return absl::OkStatus();
            }
            if (disk.path.empty()) {
              return absl::InvalidArgumentError("path=IMAGE (or vhost_user=SOCKET) is required");
            }
            if (disk.reconnect_seconds != 0) {
              return absl::InvalidArgumentError("reconnect= is for vhost_user= disks");
            }
            return absl::OkStatus();
          },
      .create = CreateBlock,
  });
  return spec;
}

const VirtioDeviceSpec& DiskConfig::spec() const { return VirtioBlockSpec(); }

}  // namespace vmm
