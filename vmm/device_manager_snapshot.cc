// DeviceManager's part of a snapshot (issue 15): each virtio device's
// section of the state file, written from a paused VM and restored into a
// new one built with the same devices.
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "devices/virtio/virtio_mmio_transport.h"
#include "devices/virtio/virtio_pci_transport.h"
#include "vmm/device_manager.h"

namespace vmm {
namespace {

constexpr char kSectionPrefix[] = "virtio/";

std::string SectionName(const std::string& transport, const std::string& address) {
  return absl::StrCat(kSectionPrefix, transport, "/", address);
}

std::string Where(const std::string& kind, const std::string& transport,
                  const std::string& address) {
  return absl::StrCat(kind, " at ", transport, " ", address);
}

}  // namespace

absl::Status DeviceManager::SaveState(StateFile* file) const {
  for (const TransportEntry& entry : Transports()) {
    const std::string where = Where(entry.kind, entry.transport, entry.address);
    StateWriter out;
    out.PutBytes(entry.kind);
    absl::StatusOr<std::string> transport =
        entry.pci ? entry.pci->SaveState() : entry.mmio->state().SaveState();
    if (!transport.ok()) return Annotate(transport.status(), where);
    if (entry.pci) out.PutBytes(entry.pci->config().SaveState());
    out.PutBytes(*transport);
    RETURN_IF_ERROR(file->Add(SectionName(entry.transport, entry.address), out.Take()));
  }
  return absl::OkStatus();
}

absl::Status DeviceManager::RestoreState(const StateFile& file) {
  const std::vector<TransportEntry> entries = Transports();
  std::set<std::string> ours;
  for (const TransportEntry& entry : entries) ours.insert(SectionName(entry.transport, entry.address));
  for (const std::string& name : file.Names()) {
    if (!absl::StartsWith(name, kSectionPrefix) || ours.contains(name)) continue;
    // "virtio/pci/0000:00:03.0" -> "pci 0000:00:03.0", with the kind saved.
    std::string where = name.substr(sizeof(kSectionPrefix) - 1);
    if (const size_t slash = where.find('/'); slash != std::string::npos) where[slash] = ' ';
    std::string kind = "a device";
    StateReader in(name, *file.Get(name));
    (void)in.GetBytes("kind", 64, &kind);
    return absl::FailedPreconditionError(
        absl::StrCat("the snapshot has ", kind, " at ", where,
                     ", which this VM does not (restore with the devices the VM was started "
                     "with)"));
  }
  for (const TransportEntry& entry : entries) {
    const std::string where = Where(entry.kind, entry.transport, entry.address);
    absl::StatusOr<absl::string_view> section =
        file.Get(SectionName(entry.transport, entry.address));
    if (!section.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "this VM has ", where, ", which the snapshot does not (restore with the devices the "
          "VM was started with)"));
    }
    StateReader in(SectionName(entry.transport, entry.address), *section);
    std::string kind, config, transport;
    RETURN_IF_ERROR(in.GetBytes("kind", 64, &kind));
    if (kind != entry.kind) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the snapshot has ", Where(kind, entry.transport, entry.address), ", this VM ",
          entry.kind, " (restore with the devices the VM was started with)"));
    }
    if (entry.pci) RETURN_IF_ERROR(in.GetBytes("PCI config space", 4096, &config));
    RETURN_IF_ERROR(in.GetBytes("transport", 64 << 20, &transport));
    RETURN_IF_ERROR(in.Finish());
    absl::Status restored;
    if (entry.pci) {
      restored = pci_->RestoreConfig(entry.pci_slot, config);
      if (restored.ok()) restored = entry.pci->RestoreState(transport);
    } else {
      restored = entry.mmio->state().RestoreState(transport);
    }
    if (!restored.ok()) return Annotate(restored, where);
  }
  return absl::OkStatus();
}

}  // namespace vmm
