// The VM as the ACPI tables describe it: what the VMM actually built.
#ifndef VMM_FIRMWARE_ACPI_PLATFORM_H_
#define VMM_FIRMWARE_ACPI_PLATFORM_H_

#include <cstdint>
#include <vector>

namespace vmm::firmware::acpi {

// APIC IDs are 8 bits, 0xff is the broadcast ID and the IOAPIC takes ID
// `cpus`: at most 254 CPUs.
inline constexpr uint32_t kAcpiMaxCpus = 254;

struct AcpiPlatform {
  // vCPUs with APIC IDs 0..cpus-1; the IOAPIC has ID `cpus` (as in the MP table).
  uint32_t cpus = 1;
  // The end of guest RAM (highest address + 1): places the 64-bit PCI window
  // at x86_64::PciMmio64Start(ram_end).
  uint64_t ram_end = 0;
  // Describe the PCI host bridge (\_SB.PCI0 with _CRS and _PRT) and the ECAM
  // window (MCFG, reserved by \_SB.MBRD).
  bool pci = true;
  // Populated virtio-mmio slots (0..kVirtioMmioSlotCount-1, no duplicates):
  // each becomes a LNRO0005 device with its window and GSI.
  std::vector<uint32_t> virtio_mmio_slots;
  // Legacy devices present at their layout.h ports.
  bool serial = true;   // COM1, PNP0501
  bool i8042 = true;    // PNP0303; also the FADT's "8042 present" boot flag
  bool rtc = true;      // CMOS RTC, PNP0B00; without it the FADT says "no CMOS RTC"
  bool pvpanic = false; // QEMU0001
  // An ACPI power button (PNP0C0C) whose presses come through a Generic
  // Event Device (ACPI0013) on x86_64::kPowerButtonGsi: how a
  // hardware-reduced platform asks the OS to shut down.
  bool power_button = false;
};

}  // namespace vmm::firmware::acpi

#endif  // VMM_FIRMWARE_ACPI_PLATFORM_H_
