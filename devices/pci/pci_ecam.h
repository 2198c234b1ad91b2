// PCI Express enhanced configuration access (ECAM / MMCONFIG): config space
// of bus b, device d, function f, register r at offset
// b << 20 | d << 15 | f << 12 | r in the window.
//
// Insert on the MMIO bus at kEcamStart with size kEcamSize (or any multiple
// of 1 MiB: one bus per MiB).
#ifndef VMM_DEVICES_PCI_PCI_ECAM_H_
#define VMM_DEVICES_PCI_PCI_ECAM_H_

#include <cstdint>
#include <memory>

#include "absl/types/span.h"
#include "devices/bus.h"
#include "devices/pci/pci_bus.h"

namespace vmm {

class PciEcam : public BusDevice {
 public:
  explicit PciEcam(std::shared_ptr<PciBus> bus);

  // 1-, 2- and 4-byte naturally aligned accesses reach the function's config
  // space; 8-byte aligned accesses are split into two dwords. Anything else
  // reads all-ones and is ignored.
  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

 private:
  const std::shared_ptr<PciBus> bus_;
};

}  // namespace vmm

#endif  // VMM_DEVICES_PCI_PCI_ECAM_H_
