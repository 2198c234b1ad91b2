#include "devices/virtio/block/block_config.h"

#include <linux/virtio_blk.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "devices/virtio/block/virtio_block.h"

namespace vmm {
namespace {

using Spec = DeviceSpecOf<DiskConfig>;

absl::StatusOr<std::shared_ptr<VirtioDevice>> CreateBlock(const DiskConfig& disk,
                                                          VirtioDeviceHost& host) {
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
      .summary = "a disk on a raw image file or block device",
      .repeatable = true,
      .keys =
          {
              {{"path", "PATH", "required", "the image (opened read-write unless readonly=on)"},
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
          },
      .check =
          [](DiskConfig& disk) {
            if (disk.path.empty()) return absl::InvalidArgumentError("path=IMAGE is required");
            return absl::OkStatus();
          },
      .create = CreateBlock,
  });
  return spec;
}

const VirtioDeviceSpec& DiskConfig::spec() const { return VirtioBlockSpec(); }

}  // namespace vmm
