// Configuration mechanism #1: the CONFIG_ADDRESS dword at 0xCF8 (enable bit
// 31, bus 23:16, device 15:11, function 10:8, register 7:2; bits 27:24 are
// AMD's extended register bits 11:8) and the data window at 0xCFC-0xCFF.
//
// Insert on the PIO bus at kPciConfigAddressPort (0xCF8) with size kSize.
#ifndef VMM_DEVICES_PCI_PCI_CONFIG_IO_H_
#define VMM_DEVICES_PCI_PCI_CONFIG_IO_H_

#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "devices/bus.h"
#include "devices/pci/pci_bus.h"

namespace vmm {

class PciConfigIo : public BusDevice {
 public:
  static constexpr uint64_t kSize = 8;

  explicit PciConfigIo(std::shared_ptr<PciBus> bus);

  // Offset 0: dword accesses reach CONFIG_ADDRESS; narrower accesses there
  // read all-ones and are ignored (byte writes to 0xCF9 are the PC's reset
  // control register on real chipsets; we have none). Offsets 4..7: 1-, 2- or
  // 4-byte accesses that stay inside the dword reach register
  // (CONFIG_ADDRESS & 0xFC) + (offset - 4). With the enable bit clear, data
  // reads return all-ones and writes are ignored.
  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

 private:
  uint32_t CurrentAddress() ABSL_LOCKS_EXCLUDED(mu_);
  const std::shared_ptr<PciBus> bus_;
  // One CONFIG_ADDRESS shared by all vCPUs, as on hardware (Linux serialises
  // with pci_config_lock).
  absl::Mutex mu_;
  uint32_t address_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vmm

#endif  // VMM_DEVICES_PCI_PCI_CONFIG_IO_H_
