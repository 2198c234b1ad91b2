// The host bridge at 00:00.0: identity only (class 06/00/00, no BARs), so
// that bus 0 looks like a normal root bus to the guest.
#ifndef VMM_DEVICES_PCI_PCI_HOST_BRIDGE_H_
#define VMM_DEVICES_PCI_PCI_HOST_BRIDGE_H_

#include <cstdint>

#include "absl/types/span.h"
#include "devices/pci/pci_config_space.h"
#include "devices/pci/pci_device.h"

namespace vmm {

class PciHostBridge : public PciDevice {
 public:
  static constexpr uint16_t kVendorId = 0x1b36;  // Red Hat, Inc.
  static constexpr uint16_t kDeviceId = 0x0008;  // QEMU PCIe host bridge
  static constexpr uint32_t kClassCode = 0x060000;

  PciHostBridge();

  PciConfigSpace& config() override { return config_; }
  void BarRead(int bar, uint64_t offset, absl::Span<uint8_t> data) override;
  void BarWrite(int bar, uint64_t offset, absl::Span<const uint8_t> data) override;

 private:
  PciConfigSpace config_;
};

}  // namespace vmm

#endif  // VMM_DEVICES_PCI_PCI_HOST_BRIDGE_H_
