#include "devices/pci/pci_ecam.h"

#include <algorithm>
#include <utility>

namespace vmm {
namespace {

struct Target {
  uint32_t bus, device, function;
  uint64_t reg;
};

Target Decode(uint64_t offset) {
  // Buses beyond 255 (a window larger than 256 MiB) decode to a bus number
  // no device sits on.
  uint64_t bus = offset >> 20;
  return Target{bus > 0xff ? 0x100u : static_cast<uint32_t>(bus),
                static_cast<uint32_t>((offset >> 15) & 0x1f),
                static_cast<uint32_t>((offset >> 12) & 0x7), offset & 0xfff};
}

}  // namespace

PciEcam::PciEcam(std::shared_ptr<PciBus> bus) : bus_(std::move(bus)) {}

void PciEcam::Read(uint64_t offset, absl::Span<uint8_t> data) {
  if (data.size() == 8 && offset % 8 == 0) {
    Read(offset, data.subspan(0, 4));
    Read(offset + 4, data.subspan(4, 4));
    return;
  }
  if (data.size() != 1 && data.size() != 2 && data.size() != 4) {
    std::fill(data.begin(), data.end(), 0xff);
    return;
  }
  Target t = Decode(offset);
  bus_->ConfigRead(t.bus, t.device, t.function, t.reg, data);
}

void PciEcam::Write(uint64_t offset, absl::Span<const uint8_t> data) {
  if (data.size() == 8 && offset % 8 == 0) {
    Write(offset, data.subspan(0, 4));
    Write(offset + 4, data.subspan(4, 4));
    return;
  }
  if (data.size() != 1 && data.size() != 2 && data.size() != 4) return;
  Target t = Decode(offset);
  bus_->ConfigWrite(t.bus, t.device, t.function, t.reg, data);
}

}  // namespace vmm
