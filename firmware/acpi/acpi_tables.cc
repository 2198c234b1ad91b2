#include "firmware/acpi/acpi_tables.h"

#include <cstring>
#include <set>
#include <string>

#include "absl/strings/str_format.h"
#include "arch/x86_64/layout.h"
#include "base/status_macros.h"
#include "firmware/acpi/sdt.h"
#include "firmware/acpi/tables.h"

namespace vmm::firmware::acpi {
namespace {

constexpr uint64_t kTableAlignment = 16;
static_assert(x86_64::kAcpiStart % 16 == 0, "Linux scans for the RSDP on 16-byte boundaries");
static_assert(x86_64::kAcpiStart >= 0xe0000 && x86_64::kAcpiStart + kRsdpSize <= 0x100000,
              "the RSDP must sit where Linux's legacy scan finds it");

absl::Status Validate(const AcpiPlatform& platform) {
  if (platform.cpus == 0 || platform.cpus > kAcpiMaxCpus) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "ACPI tables: %u CPUs requested, between 1 and %u supported", platform.cpus, kAcpiMaxCpus));
  }
  std::set<uint32_t> seen;
  for (uint32_t slot : platform.virtio_mmio_slots) {
    if (slot >= x86_64::kVirtioMmioSlotCount) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "ACPI tables: virtio-mmio slot %u out of range (%u slots)", slot,
          x86_64::kVirtioMmioSlotCount));
    }
    if (!seen.insert(slot).second) {
      return absl::InvalidArgumentError(
          absl::StrFormat("ACPI tables: virtio-mmio slot %u listed twice", slot));
    }
  }
  return absl::OkStatus();
}

uint64_t AlignUp(uint64_t v) { return (v + kTableAlignment - 1) & ~(kTableAlignment - 1); }

}  // namespace

absl::StatusOr<AcpiTables> BuildAcpiTables(const AcpiPlatform& platform) {
  RETURN_IF_ERROR(Validate(platform));

  // Tables whose contents do not depend on where the others go.
  const std::vector<uint8_t> madt = BuildMadt(platform);
  const std::vector<uint8_t> mcfg = platform.pci ? BuildMcfg() : std::vector<uint8_t>();
  const std::vector<uint8_t> dsdt = BuildDsdt(platform);
  const uint64_t xsdt_entries = platform.pci ? 3 : 2;  // FACP, APIC[, MCFG]

  // Addresses, in layout order: RSDP, XSDT, FADT, MADT, MCFG, DSDT.
  const uint64_t base = x86_64::kAcpiStart;
  uint64_t end = base;
  auto reserve = [&end](uint64_t size) {
    const uint64_t address = AlignUp(end);
    end = address + size;
    return address;
  };
  const uint64_t rsdp_address = reserve(kRsdpSize);
  const uint64_t xsdt_address = reserve(kSdtHeaderSize + 8 * xsdt_entries);
  const uint64_t fadt_address = reserve(kFadtSize);
  const uint64_t madt_address = reserve(madt.size());
  const uint64_t mcfg_address = reserve(mcfg.size());
  const uint64_t dsdt_address = reserve(dsdt.size());
  if (end - base > x86_64::kAcpiSize) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "ACPI tables: %u bytes needed for %u CPUs, only 0x%x reserved at 0x%x", end - base,
        platform.cpus, x86_64::kAcpiSize, base));
  }

  std::vector<uint64_t> xsdt_pointers = {fadt_address, madt_address};
  if (platform.pci) xsdt_pointers.push_back(mcfg_address);
  const std::vector<uint8_t> xsdt = BuildXsdt(xsdt_pointers);
  const std::vector<uint8_t> fadt = BuildFadt(platform, dsdt_address);
  const std::vector<uint8_t> rsdp = BuildRsdp(xsdt_address);

  AcpiTables out;
  out.base = GuestAddress(base);
  out.rsdp = GuestAddress(rsdp_address);
  out.bytes.resize(end - base);
  auto place = [&out](absl::string_view signature, uint64_t address,
                      const std::vector<uint8_t>& table) {
    std::memcpy(out.bytes.data() + (address - out.base.value()), table.data(), table.size());
    out.tables.push_back({std::string(signature), GuestAddress(address), table.size()});
  };
  place("RSD PTR ", rsdp_address, rsdp);
  place("XSDT", xsdt_address, xsdt);
  place("FACP", fadt_address, fadt);
  place("APIC", madt_address, madt);
  if (platform.pci) place("MCFG", mcfg_address, mcfg);
  place("DSDT", dsdt_address, dsdt);
  return out;
}

absl::StatusOr<GuestAddress> WriteAcpiTables(const GuestMemory& memory,
                                             const AcpiPlatform& platform) {
  ASSIGN_OR_RETURN(AcpiTables tables, BuildAcpiTables(platform));
  RETURN_IF_ERROR(
      Annotate(memory.WriteBytes(tables.base, tables.bytes), "writing the ACPI tables"));
  return tables.rsdp;
}

}  // namespace vmm::firmware::acpi
