// MCFG (PCI Firmware Specification 3.2 section 4.1.2).
#include "arch/x86_64/layout.h"
#include "firmware/acpi/sdt.h"
#include "firmware/acpi/tables.h"

namespace vmm::firmware::acpi {
namespace {

// Each bus takes 32 devices x 8 functions x 4 KiB of ECAM.
constexpr uint64_t kEcamBytesPerBus = 1 << 20;
static_assert(x86_64::kEcamSize / kEcamBytesPerBus - 1 == kEcamLastBus);
static_assert(x86_64::kEcamStart % kEcamBytesPerBus == 0);

struct [[gnu::packed]] McfgAllocation {
  uint64_t base_address;
  uint16_t segment;
  uint8_t start_bus;
  uint8_t end_bus;
  uint32_t reserved;
};
static_assert(sizeof(McfgAllocation) == 16);

}  // namespace

std::vector<uint8_t> BuildMcfg() {
  SdtBuilder mcfg("MCFG", 1);
  mcfg.Append(uint64_t{0});  // reserved
  mcfg.Append(McfgAllocation{x86_64::kEcamStart, 0, 0, kEcamLastBus, 0});
  return std::move(mcfg).Finish();
}

}  // namespace vmm::firmware::acpi
