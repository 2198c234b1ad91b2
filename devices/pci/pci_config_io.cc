#include "devices/pci/pci_config_io.h"

#include <optional>

#include <algorithm>
#include <utility>

namespace vmm {
namespace {

constexpr uint32_t kEnable = 1u << 31;
constexpr uint64_t kDataOffset = 4;

struct Target {
  uint32_t bus, device, function;
  uint64_t reg;
};

Target Decode(uint32_t address, uint64_t data_offset) {
  return Target{(address >> 16) & 0xff, (address >> 11) & 0x1f, (address >> 8) & 0x7,
                // Register 7:2, plus AMD's extended register bits 27:24 -> 11:8.
                ((address & 0xfc) | ((address >> 16) & 0xf00)) + data_offset};
}

bool ValidWidth(size_t size) { return size == 1 || size == 2 || size == 4; }

// The function and register a data-port access at `offset` reaches, or
// nullopt when the access is malformed or CONFIG_ADDRESS is not enabled.
std::optional<Target> DataTarget(uint32_t address, uint64_t offset, size_t width) {
  if (offset < kDataOffset || offset >= PciConfigIo::kSize || !ValidWidth(width) ||
      offset + width > PciConfigIo::kSize || !(address & kEnable)) {
    return std::nullopt;
  }
  return Decode(address, offset - kDataOffset);
}

}  // namespace

PciConfigIo::PciConfigIo(std::shared_ptr<PciBus> bus) : bus_(std::move(bus)) {}

void PciConfigIo::Read(uint64_t offset, absl::Span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0xff);
  if (offset == 0 && data.size() == 4) {
    uint32_t address = CurrentAddress();
    for (size_t i = 0; i < 4; ++i) data[i] = static_cast<uint8_t>(address >> (8 * i));
    return;
  }
  std::optional<Target> t = DataTarget(CurrentAddress(), offset, data.size());
  if (t) bus_->ConfigRead(t->bus, t->device, t->function, t->reg, data);
}

uint32_t PciConfigIo::CurrentAddress() {
  absl::MutexLock lock(&mu_);
  return address_;
}

void PciConfigIo::Write(uint64_t offset, absl::Span<const uint8_t> data) {
  if (offset == 0 && data.size() == 4) {
    uint32_t value = 0;
    for (size_t i = 0; i < 4; ++i) value |= uint32_t{data[i]} << (8 * i);
    absl::MutexLock lock(&mu_);
    address_ = value & ~0x3u;  // bits 1:0 are read-only zero
    return;
  }
  std::optional<Target> t = DataTarget(CurrentAddress(), offset, data.size());
  if (t) bus_->ConfigWrite(t->bus, t->device, t->function, t->reg, data);
}

}  // namespace vmm
