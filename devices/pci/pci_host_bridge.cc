#include "devices/pci/pci_host_bridge.h"

#include <algorithm>

namespace vmm {

PciHostBridge::PciHostBridge()
    : config_(PciFunctionId{.vendor_id = kVendorId,
                            .device_id = kDeviceId,
                            .class_code = kClassCode}) {}

// The bridge declares no BARs, so the bus never maps any.
void PciHostBridge::BarRead(int /*bar*/, uint64_t /*offset*/, absl::Span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0xff);
}

void PciHostBridge::BarWrite(int /*bar*/, uint64_t /*offset*/, absl::Span<const uint8_t> /*data*/) {}

}  // namespace vmm
