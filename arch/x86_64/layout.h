// The x86_64 guest physical map and port assignments. This is the one place
// that states where things live in the guest; everything else refers here.
//
//   0x0000_0000  real-mode IVT / BIOS data area (left zero)
//   0x0000_0500  GDT used for the boot entry state
//   0x0000_1000  PVH hvm_start_info, its memory map and module list
//   0x0000_7000  zero page (struct boot_params)
//   0x0000_8ff0  initial stack top (grows down, below 0x9000)
//   0x0000_9000  identity-mapping page tables (PML4, PDPT, 4 PDs = 4 GiB)
//   0x0002_0000  kernel command line (kCmdlineMaxSize bytes)
//   0x0009_fc00  EBDA: MP floating pointer + MP configuration table
//   0x000a_0000  legacy VGA/ROM hole, reported reserved in e820
//   0x000e_0000  ACPI tables (RSDP first)
//   0x000f_fff0  the reset vector (F000:FFF0): a stub that resets the machine
//   0x0010_0000  high memory: kernels load here or at their preferred address
//   ...          RAM up to min(memory, kMmioHoleStart)
//   0xc000_0000  32-bit MMIO hole (1 GiB): PCI MMIO32 window, virtio-mmio
//                slots, ECAM, IOAPIC, TSS, LAPIC
//   0x1_0000_0000 RAM above 4 GiB (whatever did not fit below the hole)
#ifndef VMM_ARCH_X86_64_LAYOUT_H_
#define VMM_ARCH_X86_64_LAYOUT_H_

#include <cstdint>

namespace vmm::x86_64 {

inline constexpr uint64_t kPageSize = 0x1000;

// --- Low memory, written by the VMM before the first KVM_RUN ---
inline constexpr uint64_t kBootGdtStart = 0x500;
inline constexpr uint64_t kPvhInfoStart = 0x1000;     // struct hvm_start_info
inline constexpr uint64_t kPvhModlistStart = 0x1800;  // hvm_modlist_entry[]
inline constexpr uint64_t kPvhMemmapStart = 0x2000;   // hvm_memmap_table_entry[]
inline constexpr uint64_t kPvhMemmapMaxEntries = 128;
inline constexpr uint64_t kZeroPageStart = 0x7000;    // struct boot_params
inline constexpr uint64_t kBootStackTop = 0x8ff0;
inline constexpr uint64_t kPageTablesStart = 0x9000;  // PML4; PDPT +0x1000; PDs +0x2000..
inline constexpr uint64_t kPageTablesEnd = 0xf000;
inline constexpr uint64_t kCmdlineStart = 0x20000;
inline constexpr uint64_t kCmdlineMaxSize = 0x10000;
inline constexpr uint64_t kEbdaStart = 0x9fc00;       // MP table lives here
// ACPI tables (RSDP first, 16-byte aligned, where Linux's legacy scan of
// 0xE0000-0xFFFFF also finds it): inside the e820-reserved [kEbdaStart, 1 MiB).
inline constexpr uint64_t kAcpiStart = 0xe0000;
inline constexpr uint64_t kAcpiSize = 0x10000;
// Where real mode's F000:FFF0 points: the BIOS entry a rebooting Linux jumps
// to when every other way failed (firmware/reset_vector.h).
inline constexpr uint64_t kResetVectorStart = 0xffff0;
inline constexpr uint64_t kLowRamEnd = 0xa0000;       // end of conventional memory
inline constexpr uint64_t kHighMemStart = 0x100000;   // 1 MiB

// --- The 32-bit MMIO hole ---
inline constexpr uint64_t kMmioHoleStart = 0xc000'0000;
inline constexpr uint64_t kMmioHoleEnd = 0x1'0000'0000;
// PCI 32-bit memory BAR window.
inline constexpr uint64_t kPciMmio32Start = 0xc000'0000;
inline constexpr uint64_t kPciMmio32Size = 0x1000'0000;
// virtio-mmio slots: kVirtioMmioSlotCount windows of kVirtioMmioSlotSize,
// slot i at kVirtioMmioStart + i * kVirtioMmioSlotSize on GSI
// kVirtioMmioFirstGsi + i.
inline constexpr uint64_t kVirtioMmioStart = 0xd000'0000;
inline constexpr uint64_t kVirtioMmioSlotSize = 0x1000;
inline constexpr uint32_t kVirtioMmioSlotCount = 8;
inline constexpr uint32_t kVirtioMmioFirstGsi = 16;
// PCI Express ECAM (MMCONFIG) window: 256 buses x 32 devices x 8 functions.
inline constexpr uint64_t kEcamStart = 0xe000'0000;
inline constexpr uint64_t kEcamSize = 0x1000'0000;
inline constexpr uint64_t kIoapicStart = 0xfec0'0000;
inline constexpr uint64_t kIoapicSize = 0x1000;
// KVM_SET_TSS_ADDR needs three pages, KVM_SET_IDENTITY_MAP_ADDR one, both
// inside the hole and away from devices (the values QEMU uses).
inline constexpr uint64_t kIdentityMapStart = 0xfeff'c000;
inline constexpr uint64_t kTssStart = 0xfeff'd000;
inline constexpr uint64_t kLapicStart = 0xfee0'0000;
inline constexpr uint64_t kLapicSize = 0x1000;
// RAM above the hole starts here.
inline constexpr uint64_t kHighRamStart = kMmioHoleEnd;
// PCI 64-bit memory BAR window: kPciMmio64Size bytes from the first
// kPciMmio64Alignment boundary at or above the end of guest RAM (and never
// below 4 GiB).
inline constexpr uint64_t kPciMmio64Size = 64ull << 30;
inline constexpr uint64_t kPciMmio64Alignment = 1ull << 30;
constexpr uint64_t PciMmio64Start(uint64_t ram_end) {
  uint64_t start = ram_end < kMmioHoleEnd ? kMmioHoleEnd : ram_end;
  return (start + kPciMmio64Alignment - 1) & ~(kPciMmio64Alignment - 1);
}

// --- Interrupts ---
inline constexpr uint32_t kIoapicPins = 24;
inline constexpr uint32_t kSerialIrq = 4;  // COM1
// The PC convention: the PIT's ISA IRQ 0 reaches IOAPIC pin 2 (pin 0 is the
// 8259's ExtINT). KVM's in-kernel PIT raises GSI 0, so the VM's GSI routing
// (irq_routing.h) sends GSI 0 there, and the MP table / ACPI say so.
inline constexpr uint32_t kPitIoapicPin = 2;
// PCI INTx: device d's INTA# reaches GSI kPciIntxGsis[d % 4] (level,
// active low), as QEMU's PIIX links A-D do. Only for drivers that never
// enable MSI-X.
inline constexpr uint32_t kPciIntxGsis[4] = {5, 9, 10, 11};
// The ACPI power button's Generic Event Device (firmware/acpi/dsdt.cc):
// edge, active high, as an ISA IRQ (7 is free: no parallel port here).
inline constexpr uint32_t kPowerButtonGsi = 7;

// --- Port I/O ---
inline constexpr uint16_t kSerialPort = 0x3f8;  // COM1, 8 ports
inline constexpr uint16_t kSerialPortCount = 8;
inline constexpr uint16_t kI8042DataPort = 0x60;
inline constexpr uint16_t kI8042CommandPort = 0x64;
inline constexpr uint16_t kDebugExitPort = 0x501;  // QEMU isa-debug-exit compatible
inline constexpr uint16_t kPvpanicPort = 0x505;    // QEMU pvpanic (ACPI _HID QEMU0001)
inline constexpr uint16_t kRtcPort = 0x70;         // CMOS RTC index/data at 0x70/0x71
inline constexpr uint32_t kRtcIrq = 8;
// Hardware-reduced ACPI (FADT): sleep control, sleep status and reset
// registers, one byte each, in I/O space.
inline constexpr uint16_t kAcpiSleepControlPort = 0x600;
inline constexpr uint16_t kAcpiSleepStatusPort = 0x601;
inline constexpr uint16_t kAcpiResetPort = 0x602;
inline constexpr uint8_t kAcpiResetValue = 0x01;
inline constexpr uint16_t kPciConfigAddressPort = 0xcf8;
inline constexpr uint16_t kPciConfigDataPort = 0xcfc;

// --- Limits ---
// Smallest guest RAM we accept: room for the low-memory structures above and
// a kernel at 1 MiB.
inline constexpr uint64_t kMinMemory = 2 * 1024 * 1024;

}  // namespace vmm::x86_64

#endif  // VMM_ARCH_X86_64_LAYOUT_H_
