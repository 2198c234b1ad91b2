#include "devices/virtio/virtio_mmio_transport.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "base/status_macros.h"

namespace vmm {
namespace {

// Register offsets (virtio 1.2 4.2.2, table "MMIO Device Register Layout").
enum : uint64_t {
  kMagicValue = 0x000,
  kVersionReg = 0x004,
  kDeviceId = 0x008,
  kVendorIdReg = 0x00c,
  kDeviceFeatures = 0x010,
  kDeviceFeaturesSel = 0x014,
  kDriverFeatures = 0x020,
  kDriverFeaturesSel = 0x024,
  kQueueSel = 0x030,
  kQueueNumMax = 0x034,
  kQueueNum = 0x038,
  kQueueReady = 0x044,
  kQueueNotify = 0x050,
  kInterruptStatus = 0x060,
  kInterruptAck = 0x064,
  kStatus = 0x070,
  kQueueDescLow = 0x080,
  kQueueDescHigh = 0x084,
  kQueueDriverLow = 0x090,
  kQueueDriverHigh = 0x094,
  kQueueDeviceLow = 0x0a0,
  kQueueDeviceHigh = 0x0a4,
  kShmSel = 0x0ac,
  kShmLenLow = 0x0b0,
  kShmBaseHigh = 0x0bc,
  kQueueReset = 0x0c0,
  kConfigGeneration = 0x0fc,
};

// Registers that map onto the shared state machine, with their direction.
struct SharedRegister {
  uint64_t offset;
  VirtioRegister reg;
  bool readable;
  bool writable;
};
constexpr SharedRegister kSharedRegisters[] = {
    {kDeviceFeatures, VirtioRegister::kDeviceFeature, true, false},
    {kDeviceFeaturesSel, VirtioRegister::kDeviceFeatureSelect, false, true},
    {kDriverFeatures, VirtioRegister::kDriverFeature, false, true},
    {kDriverFeaturesSel, VirtioRegister::kDriverFeatureSelect, false, true},
    {kQueueSel, VirtioRegister::kQueueSelect, false, true},
    {kQueueNumMax, VirtioRegister::kQueueSizeMax, true, false},
    {kQueueNum, VirtioRegister::kQueueSize, false, true},
    {kQueueReady, VirtioRegister::kQueueEnable, true, true},
    {kStatus, VirtioRegister::kDeviceStatus, true, true},
    {kQueueDescLow, VirtioRegister::kQueueDescLow, false, true},
    {kQueueDescHigh, VirtioRegister::kQueueDescHigh, false, true},
    {kQueueDriverLow, VirtioRegister::kQueueDriverLow, false, true},
    {kQueueDriverHigh, VirtioRegister::kQueueDriverHigh, false, true},
    {kQueueDeviceLow, VirtioRegister::kQueueDeviceLow, false, true},
    {kQueueDeviceHigh, VirtioRegister::kQueueDeviceHigh, false, true},
    {kConfigGeneration, VirtioRegister::kConfigGeneration, true, false},
};

const SharedRegister* FindShared(uint64_t offset) {
  for (const SharedRegister& r : kSharedRegisters) {
    if (r.offset == offset) return &r;
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<std::shared_ptr<VirtioMmioTransport>> VirtioMmioTransport::Create(
    std::shared_ptr<VirtioDevice> device, const GuestMemory& memory) {
  if (device == nullptr) return absl::InvalidArgumentError("virtio-mmio: no device");
  absl::StatusOr<EventFd> irq = EventFd::Create();
  if (!irq.ok()) return Annotate(irq.status(), "virtio-mmio: interrupt eventfd");
  const uint32_t device_id = device->device_type();
  std::shared_ptr<VirtioMmioTransport> t(
      new VirtioMmioTransport(*std::move(irq), device_id));
  absl::StatusOr<std::unique_ptr<VirtioTransportState>> state =
      VirtioTransportState::Create(std::move(device), memory, t.get(), /*msix_vectors=*/0);
  if (!state.ok()) return Annotate(state.status(), "virtio-mmio");
  t->state_ = *std::move(state);
  return t;
}

void VirtioMmioTransport::Read(uint64_t offset, absl::Span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  if (offset >= kConfigOffset) {
    if (offset + data.size() <= kRegisterFileSize) {
      state_->ReadDeviceConfig(offset - kConfigOffset, data);
    } else {
      state_->CountBadAccess();
    }
    return;
  }
  if (data.size() != 4 || offset % 4 != 0) {
    state_->CountBadAccess();
    return;
  }
  const uint32_t value = ReadRegister(offset);
  std::memcpy(data.data(), &value, 4);
}

void VirtioMmioTransport::Write(uint64_t offset, absl::Span<const uint8_t> data) {
  if (offset >= kConfigOffset) {
    if (offset + data.size() <= kRegisterFileSize) {
      state_->WriteDeviceConfig(offset - kConfigOffset, data);
    } else {
      state_->CountBadAccess();
    }
    return;
  }
  if (data.size() != 4 || offset % 4 != 0) {
    state_->CountBadAccess();
    return;
  }
  uint32_t value;
  std::memcpy(&value, data.data(), 4);
  WriteRegister(offset, value);
}

uint32_t VirtioMmioTransport::ReadRegister(uint64_t offset) {
  switch (offset) {
    case kMagicValue:
      return kMagic;
    case kVersionReg:
      return kVersion;
    case kDeviceId:
      return device_id_;
    case kVendorIdReg:
      return kVendorId;
    case kInterruptStatus:
      return state_->interrupt_status();
    case kQueueReset:
      return 0;  // VIRTIO_F_RING_RESET is not offered
    default:
      break;
  }
  // No shared memory regions: their length and base read as all-ones.
  if (offset >= kShmLenLow && offset <= kShmBaseHigh) return 0xffff'ffff;
  const SharedRegister* r = FindShared(offset);
  // Write-only and unknown registers read as zero.
  if (r == nullptr || !r->readable) return 0;
  return state_->Read(r->reg);
}

void VirtioMmioTransport::WriteRegister(uint64_t offset, uint32_t value) {
  switch (offset) {
    case kQueueNotify:
      state_->NotifyRegisterWritten(value);
      return;
    case kInterruptAck:
      state_->AckInterrupt(static_cast<uint8_t>(value));
      return;
    case kShmSel:
    case kQueueReset:
      return;
    default:
      break;
  }
  const SharedRegister* r = FindShared(offset);
  if (r == nullptr || !r->writable) {
    state_->CountBadAccess();
    return;
  }
  state_->Write(r->reg, value);
}

void VirtioMmioTransport::InterruptStatusChanged(uint8_t /*status*/, bool raised) {
  // An edge per event; acknowledging needs no line change. A failed eventfd
  // write (counter overflow) cannot happen at these rates.
  if (raised) (void)irq_.Write(1);
}

}  // namespace vmm
