// One builder per ACPI table. Each returns the table's finished bytes
// (length and checksum filled in); addresses of other tables are inputs, so
// the caller (acpi_tables.cc) lays them out.
#ifndef VMM_FIRMWARE_ACPI_TABLES_H_
#define VMM_FIRMWARE_ACPI_TABLES_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "firmware/acpi/platform.h"

namespace vmm::firmware::acpi {

// Root System Description Pointer, revision 2 (ACPI 2.0+): 36 bytes, both
// checksums, no RSDT (address 0), the XSDT at `xsdt_address`.
inline constexpr size_t kRsdpSize = 36;
std::vector<uint8_t> BuildRsdp(uint64_t xsdt_address);

// Extended System Description Table: 64-bit pointers to every table but
// the DSDT (which the FADT points to).
std::vector<uint8_t> BuildXsdt(absl::Span<const uint64_t> table_addresses);

// Fixed ACPI Description Table, revision 6, hardware-reduced: no PM1/GPE
// blocks and no SCI; sleep control/status registers and the reset register
// are the one-byte I/O ports of devices/legacy/acpi_pm.h.
inline constexpr size_t kFadtSize = 276;
inline constexpr uint32_t kFadtFlagResetRegSup = 1u << 10;
inline constexpr uint32_t kFadtFlagHwReducedAcpi = 1u << 20;
inline constexpr uint16_t kBootArchLegacyDevices = 1u << 0;
inline constexpr uint16_t kBootArch8042 = 1u << 1;
inline constexpr uint16_t kBootArchNoVga = 1u << 2;
inline constexpr uint16_t kBootArchNoCmosRtc = 1u << 5;
std::vector<uint8_t> BuildFadt(const AcpiPlatform& platform, uint64_t dsdt_address);

// Multiple APIC Description Table: a Processor Local APIC per CPU, the
// IOAPIC, interrupt source overrides (ISA IRQ 0 -> GSI kPitIoapicPin; the
// PCI INTx GSIs level, active low) and LINT1 as NMI on every CPU.
std::vector<uint8_t> BuildMadt(const AcpiPlatform& platform);

// PCI Express memory-mapped configuration: one allocation for segment 0
// covering kEcamStart/kEcamSize (buses 0..kEcamSize/1 MiB - 1).
inline constexpr uint8_t kEcamLastBus = 0xff;
std::vector<uint8_t> BuildMcfg();

// Differentiated System Description Table: \_S5, the PCI host bridge,
// the ECAM reservation, CPUs, virtio-mmio slots and legacy devices.
std::vector<uint8_t> BuildDsdt(const AcpiPlatform& platform);

}  // namespace vmm::firmware::acpi

#endif  // VMM_FIRMWARE_ACPI_TABLES_H_
