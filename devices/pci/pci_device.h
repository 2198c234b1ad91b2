// A PCI function as the PCI bus sees it. Configuration-space rules (read-only
// fields, BAR sizing, the capability list) are implemented once, in
// PciConfigSpace (pci_config_space.h); a device owns one and forwards to it.
#ifndef VMM_DEVICES_PCI_PCI_DEVICE_H_
#define VMM_DEVICES_PCI_PCI_DEVICE_H_

#include <cstdint>

#include "absl/types/span.h"

namespace vmm {

class PciConfigSpace;

class PciDevice {
 public:
  virtual ~PciDevice() = default;

  // The function's configuration space (4 KiB; the first 256 bytes are what
  // 0xCF8/0xCFC reaches, ECAM reaches all of it).
  virtual PciConfigSpace& config() = 0;

  // An access to BAR `bar` at `offset` from its current base. Called from
  // vCPU threads (and never for a BAR whose decoding is disabled); all values
  // are guest-controlled.
  virtual void BarRead(int bar, uint64_t offset, absl::Span<uint8_t> data) = 0;
  virtual void BarWrite(int bar, uint64_t offset, absl::Span<const uint8_t> data) = 0;
};

}  // namespace vmm

#endif  // VMM_DEVICES_PCI_PCI_DEVICE_H_
