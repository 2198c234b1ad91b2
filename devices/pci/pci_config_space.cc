#include "devices/pci/pci_config_space.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace vmm {
namespace {

constexpr uint8_t kBarIo = 0x1;
constexpr uint8_t kBarMemory64 = 0x4;
constexpr uint8_t kBarPrefetchable = 0x8;
// Writable command bits: IO, memory, bus master (byte 4); INTx disable (byte 5).
constexpr uint8_t kCommandLowMask = 0x07;
constexpr uint8_t kCommandHighMask = kPciCommandIntxDisable >> 8;
// Status error bits 8 and 11..15 are write-1-to-clear (byte 7).
constexpr uint8_t kStatusHighW1c = 0xf9;

constexpr uint16_t BarRegister(int index) { return kPciBar0 + 4 * index; }

bool IsPowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

}  // namespace

PciConfigSpace::PciConfigSpace(const PciFunctionId& id) {
  absl::MutexLock lock(&mu_);
  auto put16 = [this](uint64_t off, uint16_t v) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    bytes_[off] = static_cast<uint8_t>(v);
    bytes_[off + 1] = static_cast<uint8_t>(v >> 8);
  };
  put16(kPciVendorId, id.vendor_id);
  put16(kPciDeviceId, id.device_id);
  bytes_[kPciRevisionId] = id.revision_id;
  bytes_[kPciClassCode] = static_cast<uint8_t>(id.class_code);
  bytes_[kPciClassCode + 1] = static_cast<uint8_t>(id.class_code >> 8);
  bytes_[kPciClassCode + 2] = static_cast<uint8_t>(id.class_code >> 16);
  bytes_[kPciHeaderType] = 0;
  put16(kPciSubsystemVendorId, id.subsystem_vendor_id);
  put16(kPciSubsystemId, id.subsystem_id);
  bytes_[kPciInterruptPin] = id.interrupt_pin;

  write_mask_[kPciCommand] = kCommandLowMask;
  write_mask_[kPciCommand + 1] = kCommandHighMask;
  w1c_mask_[kPciStatus + 1] = kStatusHighW1c;
  write_mask_[kPciInterruptLine] = 0xff;
}

bool PciConfigSpace::ValidAccess(uint64_t offset, size_t size) {
  if (size != 1 && size != 2 && size != 4) return false;
  return offset < kSize && offset % size == 0;
}

absl::Status PciConfigSpace::AddBar(int index, PciBarType type, uint64_t size, bool prefetchable) {
  const bool is64 = type == PciBarType::kMemory64;
  if (index < 0 || index >= kPciBarCount || (is64 && index + 1 >= kPciBarCount)) {
    return absl::InvalidArgumentError(absl::StrFormat("PCI BAR %d: no such register", index));
  }
  if (!IsPowerOfTwo(size)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("PCI BAR %d: size 0x%x is not a power of two", index, size));
  }
  switch (type) {
    case PciBarType::kIo:
      if (size < 4 || size > 256 || prefetchable) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "PCI BAR %d: IO BARs are 4..256 bytes, not prefetchable (got 0x%x)", index, size));
      }
      break;
    case PciBarType::kMemory32:
      if (size < 16 || size > (1ull << 31)) {
        return absl::InvalidArgumentError(
            absl::StrFormat("PCI BAR %d: 32-bit memory BARs are 16 B..2 GiB (got 0x%x)", index, size));
      }
      break;
    case PciBarType::kMemory64:
      if (size < 16 || size > (1ull << 62)) {
        return absl::InvalidArgumentError(
            absl::StrFormat("PCI BAR %d: memory BARs are at least 16 bytes (got 0x%x)", index, size));
      }
      break;
  }
  absl::MutexLock lock(&mu_);
  for (int i = index; i <= index + (is64 ? 1 : 0); ++i) {
    if (bars_[i] || bar_upper_half_[i]) {
      return absl::AlreadyExistsError(absl::StrFormat("PCI BAR register %d is already in use", i));
    }
  }
  bars_[index] = PciBarInfo{type, size, prefetchable};
  if (is64) bar_upper_half_[index + 1] = true;

  uint8_t type_bits = type == PciBarType::kIo ? kBarIo
                      : is64                  ? kBarMemory64
                                              : 0;
  if (prefetchable) type_bits |= kBarPrefetchable;
  const uint64_t low_bits = type == PciBarType::kIo ? 0x3 : 0xf;
  // The address bits the guest may write; the rest read back as zero, which
  // is what makes all-ones sizing return the size.
  const uint64_t mask = ~(size - 1) & ~low_bits;
  const int bytes = is64 ? 8 : 4;
  const uint16_t reg = BarRegister(index);
  for (int b = 0; b < bytes; ++b) {
    write_mask_[reg + b] = static_cast<uint8_t>(mask >> (8 * b));
    bytes_[reg + b] = 0;
  }
  bytes_[reg] = type_bits;
  return absl::OkStatus();
}

absl::StatusOr<uint16_t> PciConfigSpace::AddCapability(uint8_t id, absl::Span<const uint8_t> bytes,
                                                       absl::Span<const uint8_t> write_mask,
                                                       PciCapabilityHooks hooks) {
  if (bytes.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrFormat("PCI capability 0x%02x: %d bytes is shorter than its header", id,
                        bytes.size()));
  }
  if (!write_mask.empty() && write_mask.size() != bytes.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "PCI capability 0x%02x: write mask has %d bytes, capability %d", id, write_mask.size(),
        bytes.size()));
  }
  const uint64_t padded = (bytes.size() + 3) & ~uint64_t{3};
  absl::MutexLock lock(&mu_);
  const uint64_t offset = capabilities_.empty()
                              ? kCapabilitiesStart
                              : capabilities_.back().offset + capabilities_.back().length;
  if (offset + padded > kLegacySize) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "PCI capability 0x%02x (%d bytes) does not fit in config space", id, bytes.size()));
  }
  for (size_t i = 0; i < bytes.size(); ++i) {
    bytes_[offset + i] = bytes[i];
    write_mask_[offset + i] = (i < 2 || write_mask.empty()) ? 0 : write_mask[i];
  }
  bytes_[offset] = id;
  bytes_[offset + 1] = 0;  // end of list
  if (last_capability_ == 0) {
    bytes_[kPciCapabilityPointer] = static_cast<uint8_t>(offset);
  } else {
    bytes_[last_capability_ + 1] = static_cast<uint8_t>(offset);
  }
  last_capability_ = static_cast<uint16_t>(offset);
  bytes_[kPciStatus] |= kPciStatusCapList;
  capabilities_.push_back(
      {static_cast<uint16_t>(offset), static_cast<uint16_t>(padded), std::move(hooks)});
  return static_cast<uint16_t>(offset);
}

const PciConfigSpace::Capability* PciConfigSpace::FindCapabilityLocked(uint64_t offset) const {
  for (const Capability& cap : capabilities_) {
    if (offset >= cap.offset && offset < uint64_t{cap.offset} + cap.length) return &cap;
  }
  return nullptr;
}

void PciConfigSpace::Read(uint64_t offset, absl::Span<uint8_t> data) const {
  if (!ValidAccess(offset, data.size())) {
    std::fill(data.begin(), data.end(), 0xff);
    return;
  }
  std::function<void(uint64_t, absl::Span<uint8_t>)> on_read;
  uint64_t cap_offset = 0;
  {
    absl::ReaderMutexLock lock(&mu_);
    std::memcpy(data.data(), &bytes_[offset], data.size());
    // The interrupt status bit reflects the device's INTx condition.
    if (offset <= kPciStatus && offset + data.size() > kPciStatus && intx_condition_) {
      data[kPciStatus - offset] |= kPciStatusInterrupt;
    }
    if (const Capability* cap = FindCapabilityLocked(offset); cap && cap->hooks.on_read) {
      on_read = cap->hooks.on_read;
      cap_offset = offset - cap->offset;
    }
  }
  if (on_read) on_read(cap_offset, data);
}

void PciConfigSpace::Write(uint64_t offset, absl::Span<const uint8_t> data) {
  if (!ValidAccess(offset, data.size())) return;
  std::function<void(uint64_t, absl::Span<const uint8_t>)> after_write;
  uint64_t cap_offset = 0;
  bool intx_disable_changed = false;
  {
    absl::MutexLock lock(&mu_);
    const uint16_t old_command = Raw16Locked(kPciCommand);
    for (size_t i = 0; i < data.size(); ++i) {
      const uint64_t b = offset + i;
      bytes_[b] &= static_cast<uint8_t>(~(data[i] & w1c_mask_[b]));
      bytes_[b] = static_cast<uint8_t>((bytes_[b] & ~write_mask_[b]) | (data[i] & write_mask_[b]));
    }
    intx_disable_changed =
        ((old_command ^ Raw16Locked(kPciCommand)) & kPciCommandIntxDisable) != 0;
    if (const Capability* cap = FindCapabilityLocked(offset); cap && cap->hooks.after_write) {
      after_write = cap->hooks.after_write;
      cap_offset = offset - cap->offset;
    }
  }
  if (after_write) after_write(cap_offset, data);
  if (intx_disable_changed) UpdateIntxLine();
}

void PciConfigSpace::ReadRaw(uint64_t offset, absl::Span<uint8_t> data) const {
  absl::ReaderMutexLock lock(&mu_);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = (offset < kSize && i < kSize - offset) ? bytes_[offset + i] : 0;
  }
}

void PciConfigSpace::WriteRaw(uint64_t offset, absl::Span<const uint8_t> data) {
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < data.size(); ++i) {
    if (offset < kSize && i < kSize - offset) bytes_[offset + i] = data[i];
  }
}

std::string PciConfigSpace::SaveState() const {
  absl::ReaderMutexLock lock(&mu_);
  return std::string(reinterpret_cast<const char*>(bytes_.data()), bytes_.size());
}

absl::Status PciConfigSpace::RestoreState(absl::string_view state) {
  if (state.size() != kSize) {
    return absl::DataLossError(
        absl::StrCat("PCI configuration space of ", state.size(), " bytes, not ", kSize));
  }
  {
    absl::MutexLock lock(&mu_);
    // Vendor and device IDs, and the class code.
    for (uint64_t b : {0, 1, 2, 3, 9, 10, 11}) {
      if (static_cast<uint8_t>(state[b]) != bytes_[b]) {
        return absl::DataLossError("the PCI function's identity differs (another device)");
      }
    }
    for (uint64_t b = 0; b < kSize; ++b) {
      const uint8_t m = write_mask_[b] | w1c_mask_[b];
      bytes_[b] = static_cast<uint8_t>((bytes_[b] & ~m) | (static_cast<uint8_t>(state[b]) & m));
    }
  }
  UpdateIntxLine();
  return absl::OkStatus();
}

uint16_t PciConfigSpace::Raw16Locked(uint64_t offset) const {
  if (offset + 2 > kSize) return 0;
  return static_cast<uint16_t>(bytes_[offset] | (bytes_[offset + 1] << 8));
}

uint16_t PciConfigSpace::ReadRaw16(uint64_t offset) const {
  uint8_t b[2];
  ReadRaw(offset, b);
  return static_cast<uint16_t>(b[0] | (b[1] << 8));
}

uint32_t PciConfigSpace::ReadRaw32(uint64_t offset) const {
  uint8_t b[4];
  ReadRaw(offset, b);
  return uint32_t{b[0]} | (uint32_t{b[1]} << 8) | (uint32_t{b[2]} << 16) | (uint32_t{b[3]} << 24);
}

std::optional<PciBarInfo> PciConfigSpace::bar_info(int index) const {
  if (index < 0 || index >= kPciBarCount) return std::nullopt;
  absl::ReaderMutexLock lock(&mu_);
  return bars_[index];
}

uint64_t PciConfigSpace::BarAddressLocked(int index) const {
  if (index < 0 || index >= kPciBarCount || !bars_[index]) return 0;
  const uint16_t reg = BarRegister(index);
  const int bytes = bars_[index]->type == PciBarType::kMemory64 ? 8 : 4;
  uint64_t value = 0;
  for (int b = 0; b < bytes; ++b) value |= uint64_t{bytes_[reg + b]} << (8 * b);
  return value & ~uint64_t{bars_[index]->type == PciBarType::kIo ? 0x3u : 0xfu};
}

uint64_t PciConfigSpace::BarAddress(int index) const {
  absl::ReaderMutexLock lock(&mu_);
  return BarAddressLocked(index);
}

void PciConfigSpace::SetBarAddress(int index, uint64_t address) {
  absl::MutexLock lock(&mu_);
  if (index < 0 || index >= kPciBarCount || !bars_[index]) return;
  const uint16_t reg = BarRegister(index);
  const int bytes = bars_[index]->type == PciBarType::kMemory64 ? 8 : 4;
  for (int b = 0; b < bytes; ++b) {
    const uint8_t m = write_mask_[reg + b];
    bytes_[reg + b] =
        static_cast<uint8_t>((bytes_[reg + b] & ~m) | (static_cast<uint8_t>(address >> (8 * b)) & m));
  }
}

uint16_t PciConfigSpace::command() const {
  absl::ReaderMutexLock lock(&mu_);
  return Raw16Locked(kPciCommand);
}

void PciConfigSpace::SetCommandBits(uint16_t bits) {
  {
    absl::MutexLock lock(&mu_);
    bytes_[kPciCommand] |= static_cast<uint8_t>(bits);
    bytes_[kPciCommand + 1] |= static_cast<uint8_t>(bits >> 8);
  }
  if (bits & kPciCommandIntxDisable) UpdateIntxLine();
}

uint8_t PciConfigSpace::interrupt_pin() const {
  absl::ReaderMutexLock lock(&mu_);
  return bytes_[kPciInterruptPin];
}

void PciConfigSpace::SetInterruptLine(uint8_t line) {
  absl::MutexLock lock(&mu_);
  bytes_[kPciInterruptLine] = line;
}

void PciConfigSpace::ConnectIntx(std::shared_ptr<IrqLine> line) {
  {
    absl::MutexLock lock(&intx_mu_);
    intx_line_ = std::move(line);
    intx_driven_ = false;  // a fresh line starts deasserted
  }
  UpdateIntxLine();
}

void PciConfigSpace::SetIntxLevel(bool asserted) {
  {
    absl::MutexLock lock(&mu_);
    intx_condition_ = asserted;
  }
  UpdateIntxLine();
}

void PciConfigSpace::UpdateIntxLine() {
  absl::MutexLock intx_lock(&intx_mu_);
  bool level;
  {
    absl::ReaderMutexLock lock(&mu_);
    level = intx_condition_ && (Raw16Locked(kPciCommand) & kPciCommandIntxDisable) == 0;
  }
  if (!intx_line_ || level == intx_driven_) return;
  intx_driven_ = level;
  intx_line_->SetLevel(level);
}

}  // namespace vmm
