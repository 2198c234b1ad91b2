#include "devices/virtio/registry.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "devices/virtio/block/block_config.h"
#include "devices/virtio/console/console_config.h"
#include "devices/virtio/fs/fs_config.h"
#include "devices/virtio/net/net_config.h"
#include "devices/virtio/rng/rng_config.h"
#include "devices/virtio/vsock/vsock_config.h"

namespace vmm {

absl::Span<const VirtioDeviceSpec* const> VirtioDeviceSpecs() {
  static const VirtioDeviceSpec* const kSpecs[] = {
      &VirtioBlockSpec(),
      &VirtioNetSpec(),
      &VirtioConsoleSpec(),
      &VirtioRngSpec(),
      &VirtioVsockSpec(),
      &VirtioFsSpec(),
  };
  return kSpecs;
}

const VirtioDeviceSpec* FindVirtioDeviceSpec(absl::string_view name_or_flag) {
  for (const VirtioDeviceSpec* spec : VirtioDeviceSpecs()) {
    if (spec->name() == name_or_flag || spec->flag() == name_or_flag) return spec;
  }
  return nullptr;
}

std::vector<DeviceConfig> DefaultVirtioDevices() {
  std::vector<DeviceConfig> devices;
  for (const VirtioDeviceSpec* spec : VirtioDeviceSpecs()) {
    if (spec->present_by_default()) devices.push_back(spec->DefaultConfig());
  }
  return devices;
}

std::string VirtioDeviceListHelp() {
  std::string text =
      "Devices (--device NAME,OPTIONS; --device NAME,help lists NAME's options):\n";
  for (const VirtioDeviceSpec* spec : VirtioDeviceSpecs()) {
    absl::StrAppend(&text, absl::StrFormat("  %-16s %-10s %s%s\n", spec->name(),
                                           absl::StrCat("--", spec->flag()), spec->summary(),
                                           spec->repeatable() ? " (repeatable)" : ""));
  }
  absl::StrAppend(&text,
                  "Every device takes transport=pci|mmio (default pci) and, on PCI, "
                  "addr=SLOT.\n");
  return text;
}

}  // namespace vmm
