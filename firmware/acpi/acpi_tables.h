// The ACPI tables for an x86_64 guest, built from the VM's topology and laid
// out in [kAcpiStart, kAcpiStart + kAcpiSize): the RSDP first (16-byte
// aligned, where Linux's scan of 0xE0000-0xFFFFF finds it; the VMM also
// passes its address in boot_params.acpi_rsdp_addr / PVH rsdp_paddr), then
// XSDT, FADT, MADT, MCFG (when PCI is described) and DSDT, each 16-byte
// aligned.
#ifndef VMM_FIRMWARE_ACPI_ACPI_TABLES_H_
#define VMM_FIRMWARE_ACPI_ACPI_TABLES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/guest_address.h"
#include "base/guest_memory.h"
#include "firmware/acpi/platform.h"

namespace vmm::firmware::acpi {

struct AcpiTables {
  // Where one table sits.
  struct Table {
    std::string signature;  // "RSD PTR " for the RSDP, else the 4-character signature
    GuestAddress address;
    uint64_t size = 0;
  };
  GuestAddress base;           // kAcpiStart: bytes[0] goes here
  std::vector<uint8_t> bytes;  // every table, pointers filled in, checksums computed
  GuestAddress rsdp;           // == base
  std::vector<Table> tables;   // in layout order, RSDP first
};

// InvalidArgument if cpus is 0 or above kAcpiMaxCpus, or a virtio-mmio slot
// is out of range or listed twice; ResourceExhausted if the tables do not
// fit in kAcpiSize.
absl::StatusOr<AcpiTables> BuildAcpiTables(const AcpiPlatform& platform);

// Builds the tables and writes them to guest memory at kAcpiStart; returns
// the RSDP's address.
absl::StatusOr<GuestAddress> WriteAcpiTables(const GuestMemory& memory,
                                             const AcpiPlatform& platform);

}  // namespace vmm::firmware::acpi

#endif  // VMM_FIRMWARE_ACPI_ACPI_TABLES_H_
