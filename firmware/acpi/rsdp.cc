// RSDP (ACPI 6.5 section 5.2.5.3).
#include <cstring>

#include "firmware/acpi/sdt.h"
#include "firmware/acpi/tables.h"

namespace vmm::firmware::acpi {
namespace {

struct [[gnu::packed]] Rsdp {
  char signature[8];
  uint8_t checksum;  // over the first 20 bytes (the ACPI 1.0 structure)
  char oem_id[6];
  uint8_t revision;
  uint32_t rsdt_address;
  uint32_t length;
  uint64_t xsdt_address;
  uint8_t extended_checksum;  // over all 36 bytes
  uint8_t reserved[3];
};
static_assert(sizeof(Rsdp) == kRsdpSize);
constexpr size_t kRsdpV1Size = 20;

}  // namespace

std::vector<uint8_t> BuildRsdp(uint64_t xsdt_address) {
  Rsdp rsdp = {};
  std::memcpy(rsdp.signature, "RSD PTR ", 8);
  std::memcpy(rsdp.oem_id, kOemId, 6);
  rsdp.revision = 2;
  rsdp.length = kRsdpSize;
  rsdp.xsdt_address = xsdt_address;
  std::vector<uint8_t> bytes;
  AppendStruct(bytes, rsdp);
  bytes[offsetof(Rsdp, checksum)] = ChecksumByte(absl::MakeConstSpan(bytes).first(kRsdpV1Size));
  bytes[offsetof(Rsdp, extended_checksum)] = ChecksumByte(bytes);
  return bytes;
}

}  // namespace vmm::firmware::acpi
