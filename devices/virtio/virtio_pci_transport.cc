#include "devices/virtio/virtio_pci_transport.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/state_file.h"
#include "base/status_macros.h"

namespace vmm {
namespace {

// Fields of struct virtio_pci_common_cfg (virtio 1.2 4.1.4.3). 64-bit
// fields are listed as their two dwords; reg nullopt reads as zero.
struct CommonField {
  uint16_t offset;
  uint8_t width;
  std::optional<VirtioRegister> reg;
};
constexpr CommonField kCommonFields[] = {
    {0x00, 4, VirtioRegister::kDeviceFeatureSelect},
    {0x04, 4, VirtioRegister::kDeviceFeature},
    {0x08, 4, VirtioRegister::kDriverFeatureSelect},
    {0x0c, 4, VirtioRegister::kDriverFeature},
    {0x10, 2, VirtioRegister::kConfigMsixVector},
    {0x12, 2, VirtioRegister::kNumQueues},
    {0x14, 1, VirtioRegister::kDeviceStatus},
    {0x15, 1, VirtioRegister::kConfigGeneration},
    {0x16, 2, VirtioRegister::kQueueSelect},
    {0x18, 2, VirtioRegister::kQueueSize},
    {0x1a, 2, VirtioRegister::kQueueMsixVector},
    {0x1c, 2, VirtioRegister::kQueueEnable},
    {0x1e, 2, VirtioRegister::kQueueNotifyOff},
    {0x20, 4, VirtioRegister::kQueueDescLow},
    {0x24, 4, VirtioRegister::kQueueDescHigh},
    {0x28, 4, VirtioRegister::kQueueDriverLow},
    {0x2c, 4, VirtioRegister::kQueueDriverHigh},
    {0x30, 4, VirtioRegister::kQueueDeviceLow},
    {0x34, 4, VirtioRegister::kQueueDeviceHigh},
    {0x38, 2, std::nullopt},  // queue_notify_data: VIRTIO_F_NOTIFICATION_DATA not offered
    {0x3a, 2, std::nullopt},  // queue_reset: VIRTIO_F_RING_RESET not offered
};

const CommonField* FindCommon(uint64_t offset, size_t width) {
  for (const CommonField& f : kCommonFields) {
    if (f.offset == offset && f.width == width) return &f;
  }
  return nullptr;
}

bool IsQwordField(uint64_t offset) { return offset == 0x20 || offset == 0x28 || offset == 0x30; }

uint64_t LoadLe(absl::Span<const uint8_t> data) {
  uint64_t v = 0;
  std::memcpy(&v, data.data(), std::min<size_t>(data.size(), 8));
  return v;
}

void StoreLe(uint64_t v, absl::Span<uint8_t> data) {
  std::memcpy(data.data(), &v, std::min<size_t>(data.size(), 8));
}

void Put32(std::vector<uint8_t>& b, size_t at, uint32_t v) { std::memcpy(&b[at], &v, 4); }

// struct virtio_pci_cap (16 bytes) or one of its 20-byte extensions.
std::vector<uint8_t> VirtioCap(uint8_t cfg_type, size_t cap_len, uint32_t offset,
                               uint32_t length) {
  std::vector<uint8_t> b(cap_len, 0);
  b[2] = static_cast<uint8_t>(cap_len);
  b[3] = cfg_type;
  b[4] = VirtioPciTransport::kBar;
  Put32(b, 8, offset);
  Put32(b, 12, length);
  return b;
}

// Field offsets inside struct virtio_pci_cfg_cap.
constexpr uint64_t kCfgCapBar = 4;
constexpr uint64_t kCfgCapOffset = 8;
constexpr uint64_t kCfgCapLength = 12;
constexpr uint64_t kCfgCapData = 16;
constexpr uint64_t kCfgCapSize = 20;

bool Overlaps(uint64_t offset, size_t size, uint64_t start, uint64_t len) {
  return offset < start + len && start < offset + size;
}

}  // namespace

uint32_t VirtioPciClassCode(uint32_t device_type) {
  switch (device_type) {
    case 1:   // net: network controller, ethernet
      return 0x020000;
    case 2:   // block: mass storage, other
    case 26:  // fs
      return 0x018000;
    case 8:   // scsi: mass storage, SCSI
      return 0x010000;
    case 3:   // console: communication, other
    case 19:  // vsock
      return 0x078000;
    case 16:  // gpu: display, other
      return 0x038000;
    case 18:  // input: input device, other
      return 0x098000;
    default:  // rng, balloon, ...: unclassified
      return 0xff0000;
  }
}

absl::StatusOr<std::shared_ptr<VirtioPciTransport>> VirtioPciTransport::Create(
    std::shared_ptr<VirtioDevice> device, const GuestMemory& memory,
    std::shared_ptr<MsiVectorSink> msi_sink) {
  if (device == nullptr) return absl::InvalidArgumentError("virtio-pci: no device");
  const uint32_t type = device->device_type();
  const uint16_t device_id = static_cast<uint16_t>(kVirtioPciDeviceIdBase + type);
  const std::string what = absl::StrCat("virtio-pci device type ", type);
  PciFunctionId id{.vendor_id = kVirtioPciVendorId,
                   .device_id = device_id,
                   .revision_id = 1,  // non-transitional
                   .class_code = VirtioPciClassCode(type),
                   .subsystem_vendor_id = kVirtioPciVendorId,
                   .subsystem_id = device_id,
                   .interrupt_pin = kPciInterruptPinA};
  std::shared_ptr<VirtioPciTransport> t(new VirtioPciTransport(id));

  // Queue count, bounds and eventfds come from the shared state. The MSI-X
  // table has a vector per queue plus the config vector.
  const size_t queues = device->queue_max_sizes().size();
  const uint16_t vectors =
      static_cast<uint16_t>(std::min(queues, VirtioTransportState::kMaxQueues) + 1);
  absl::StatusOr<std::unique_ptr<VirtioTransportState>> state =
      VirtioTransportState::Create(std::move(device), memory, t.get(), vectors);
  if (!state.ok()) return Annotate(state.status(), what);

  RETURN_IF_ERROR(Annotate(t->config_.AddBar(kBar, PciBarType::kMemory64, kBarSize), what));
  const uint16_t nq = (*state)->num_queues();
  const uint32_t notify_length = kNotifyOffMultiplier * nq;
  std::vector<uint8_t> notify =
      VirtioCap(kVirtioPciCapNotifyCfg, 20, kNotifyOffset, notify_length);
  Put32(notify, 16, kNotifyOffMultiplier);
  const std::vector<uint8_t> caps[] = {
      VirtioCap(kVirtioPciCapCommonCfg, 16, kCommonCfgOffset, kCommonCfgLength),
      notify,
      VirtioCap(kVirtioPciCapIsrCfg, 16, kIsrOffset, kIsrLength),
      VirtioCap(kVirtioPciCapDeviceCfg, 16, kDeviceCfgOffset, kDeviceCfgLength),
  };
  for (const std::vector<uint8_t>& cap : caps) {
    absl::StatusOr<uint16_t> at = t->config_.AddCapability(kPciCapIdVendor, cap);
    if (!at.ok()) return Annotate(at.status(), what);
  }
  // The PCI configuration access window: bar, offset, length and data are
  // the driver's to write; accessing data accesses the BAR.
  std::vector<uint8_t> cfg_cap = VirtioCap(kVirtioPciCapPciCfg, kCfgCapSize, 0, 0);
  std::vector<uint8_t> cfg_mask(kCfgCapSize, 0);
  std::fill(cfg_mask.begin() + kCfgCapBar, cfg_mask.begin() + kCfgCapBar + 1, 0xff);
  std::fill(cfg_mask.begin() + kCfgCapOffset, cfg_mask.end(), 0xff);
  VirtioPciTransport* raw = t.get();
  PciCapabilityHooks hooks{
      .after_write = [raw](uint64_t off, absl::Span<const uint8_t> d) { raw->PciCfgWrite(off, d); },
      .on_read = [raw](uint64_t off, absl::Span<uint8_t> d) { raw->PciCfgRead(off, d); },
  };
  absl::StatusOr<uint16_t> cfg_at =
      t->config_.AddCapability(kPciCapIdVendor, cfg_cap, cfg_mask, std::move(hooks));
  if (!cfg_at.ok()) return Annotate(cfg_at.status(), what);
  t->pci_cfg_cap_ = *cfg_at;

  MsixLayout layout{.vector_count = vectors,
                    .table_bar = kBar,
                    .table_offset = kMsixTableOffset,
                    .pba_bar = kBar,
                    .pba_offset = kMsixPbaOffset};
  absl::StatusOr<std::unique_ptr<Msix>> msix =
      Msix::Create(t->config_, layout, std::move(msi_sink));
  if (!msix.ok()) return Annotate(msix.status(), what);
  t->msix_ = *std::move(msix);
  t->state_ = *std::move(state);
  return t;
}

void VirtioPciTransport::BarRead(int bar, uint64_t offset, absl::Span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  if (bar != kBar || offset >= kBarSize || data.size() > kBarSize - offset) {
    state_->CountBadAccess();
    return;
  }
  if (offset < kIsrOffset) {
    CommonRead(offset - kCommonCfgOffset, data);
  } else if (offset < kDeviceCfgOffset) {
    // Any read of the ISR byte returns and clears it (and deasserts INTx).
    if (offset == kIsrOffset) data[0] = state_->ReadAndClearInterruptStatus();
  } else if (offset < kNotifyOffset) {
    if (offset + data.size() <= kNotifyOffset) {
      state_->ReadDeviceConfig(offset - kDeviceCfgOffset, data);
    } else {
      state_->CountBadAccess();
    }
  } else if (offset >= kMsixTableOffset) {
    if (!msix_->BarRead(bar, offset, data)) std::fill(data.begin(), data.end(), 0);
  }
  // The notify area reads as zero.
}

void VirtioPciTransport::BarWrite(int bar, uint64_t offset, absl::Span<const uint8_t> data) {
  if (bar != kBar || offset >= kBarSize || data.size() > kBarSize - offset || data.empty() ||
      data.size() > 8) {
    state_->CountBadAccess();
    return;
  }
  if (offset < kIsrOffset) {
    CommonWrite(offset - kCommonCfgOffset, LoadLe(data), data.size());
  } else if (offset >= kDeviceCfgOffset && offset < kNotifyOffset) {
    if (offset + data.size() <= kNotifyOffset) {
      state_->WriteDeviceConfig(offset - kDeviceCfgOffset, data);
    } else {
      state_->CountBadAccess();
    }
  } else if (offset >= kNotifyOffset && offset < kMsixTableOffset) {
    // The address says which queue; the value is not needed.
    const uint64_t rel = offset - kNotifyOffset;
    if (rel % kNotifyOffMultiplier != 0 || rel / kNotifyOffMultiplier >= num_queues()) {
      state_->CountBadAccess();
      return;
    }
    state_->NotifyRegisterWritten(static_cast<uint32_t>(rel / kNotifyOffMultiplier));
  } else if (offset >= kMsixTableOffset) {
    if (!msix_->BarWrite(bar, offset, data)) state_->CountBadAccess();
  } else {
    state_->CountBadAccess();  // the ISR is read-only
  }
}

void VirtioPciTransport::CommonRead(uint64_t offset, absl::Span<uint8_t> data) {
  if (data.size() == 8 && IsQwordField(offset)) {
    const auto lo = FindCommon(offset, 4)->reg, hi = FindCommon(offset + 4, 4)->reg;
    StoreLe(state_->Read(*lo) | (uint64_t{state_->Read(*hi)} << 32), data);
    return;
  }
  const CommonField* f = FindCommon(offset, data.size());
  if (f == nullptr) {
    state_->CountBadAccess();
    return;
  }
  if (f->reg) StoreLe(state_->Read(*f->reg), data);  // truncated to the field width
}

void VirtioPciTransport::CommonWrite(uint64_t offset, uint64_t value, size_t width) {
  if (width == 8 && IsQwordField(offset)) {
    state_->Write(*FindCommon(offset, 4)->reg, static_cast<uint32_t>(value));
    state_->Write(*FindCommon(offset + 4, 4)->reg, static_cast<uint32_t>(value >> 32));
    return;
  }
  const CommonField* f = FindCommon(offset, width);
  if (f == nullptr) {
    state_->CountBadAccess();
    return;
  }
  if (f->reg) state_->Write(*f->reg, static_cast<uint32_t>(value));
}

void VirtioPciTransport::PciCfgRead(uint64_t cap_offset, absl::Span<uint8_t> data) {
  if (!Overlaps(cap_offset, data.size(), kCfgCapData, 4)) return;
  const uint8_t bar = static_cast<uint8_t>(config_.ReadRaw32(pci_cfg_cap_ + kCfgCapBar));
  const uint32_t off = config_.ReadRaw32(pci_cfg_cap_ + kCfgCapOffset);
  const uint32_t len = config_.ReadRaw32(pci_cfg_cap_ + kCfgCapLength);
  if (bar != kBar || (len != 1 && len != 2 && len != 4) || off % len != 0 ||
      off + uint64_t{len} > kBarSize) {
    state_->CountBadAccess();
    return;  // the window is not set up: pci_cfg_data reads as stored
  }
  uint8_t window[4] = {0, 0, 0, 0};
  BarRead(bar, off, absl::MakeSpan(window, len));
  config_.WriteRaw(pci_cfg_cap_ + kCfgCapData, window);
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t at = cap_offset + i;
    if (at >= kCfgCapData && at < kCfgCapData + 4) data[i] = window[at - kCfgCapData];
  }
}

void VirtioPciTransport::PciCfgWrite(uint64_t cap_offset, absl::Span<const uint8_t> data) {
  if (!Overlaps(cap_offset, data.size(), kCfgCapData, 4)) return;
  const uint8_t bar = static_cast<uint8_t>(config_.ReadRaw32(pci_cfg_cap_ + kCfgCapBar));
  const uint32_t off = config_.ReadRaw32(pci_cfg_cap_ + kCfgCapOffset);
  const uint32_t len = config_.ReadRaw32(pci_cfg_cap_ + kCfgCapLength);
  if (bar != kBar || (len != 1 && len != 2 && len != 4) || off % len != 0 ||
      off + uint64_t{len} > kBarSize) {
    state_->CountBadAccess();
    return;
  }
  uint8_t window[4];
  config_.ReadRaw(pci_cfg_cap_ + kCfgCapData, window);
  BarWrite(bar, off, absl::MakeConstSpan(window, len));
}

bool VirtioPciTransport::MsixEnabled() { return msix_->enabled(); }

void VirtioPciTransport::SendMsix(uint16_t vector) { (void)msix_->Signal(vector); }

absl::StatusOr<std::string> VirtioPciTransport::SaveState() {
  ASSIGN_OR_RETURN(std::string virtio, state_->SaveState());
  StateWriter out;
  out.PutBytes(msix_->SaveState());
  out.PutBytes(virtio);
  return out.Take();
}

absl::Status VirtioPciTransport::RestoreState(absl::string_view state) {
  StateReader in("virtio-pci", state);
  std::string msix, virtio;
  RETURN_IF_ERROR(in.GetBytes("MSI-X", 1 << 20, &msix));
  RETURN_IF_ERROR(in.GetBytes("virtio registers", 32 << 20, &virtio));
  RETURN_IF_ERROR(in.Finish());
  // The vectors first: an activated device's interrupts go through them.
  RETURN_IF_ERROR(msix_->RestoreState(msix));
  return state_->RestoreState(virtio);
}

void VirtioPciTransport::InterruptStatusChanged(uint8_t status, bool /*raised*/) {
  config_.SetIntxLevel(status != 0);
}

}  // namespace vmm
