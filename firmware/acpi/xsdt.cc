// XSDT (ACPI 6.5 section 5.2.8).
#include "firmware/acpi/sdt.h"
#include "firmware/acpi/tables.h"

namespace vmm::firmware::acpi {

std::vector<uint8_t> BuildXsdt(absl::Span<const uint64_t> table_addresses) {
  SdtBuilder xsdt("XSDT", 1);
  for (uint64_t address : table_addresses) xsdt.Append(address);
  return std::move(xsdt).Finish();
}

}  // namespace vmm::firmware::acpi
