// The Intel MultiProcessor Specification 1.4 tables: how a guest without
// ACPI learns its CPUs, its IOAPIC and how ISA interrupts reach it.
//
// Written at kEbdaStart (0x9fc00 = 639 KiB): the floating pointer first
// (16-byte aligned; Linux scans the KiB at 639 KiB, the BIOS area and the
// EBDA for "_MP_"), the configuration table right after it, all of it below
// kLowRamEnd (the e820 map reserves [kEbdaStart, 1 MiB)).
//
// Interrupt routing described (it must match the VM's GSI routing):
//   ISA IRQ 0 (PIT)        -> IOAPIC pin kMpIsaIrq0IoapicPin (2)
//   ISA IRQ 1, 3..15       -> IOAPIC pin = IRQ (IRQ 2 is the 8259 cascade)
//   IRQ 16..23             -> IOAPIC pins 16..23 (virtio-mmio slots, GSI 16+),
//                             described on the ISA bus (edge, active high)
//                             because there is no PCI bus to hang them on
//   ExtINT (8259 output)   -> LINT0 of every LAPIC; NMI -> LINT1 of every LAPIC
//
// The PIT's IRQ 0 on pin 2 is the PC convention (what QEMU and kvmtool build)
// and is NOT what KVM does by default: KVM's in-kernel PIT raises GSI 0, and
// KVM's default routing sends GSI n to IOAPIC pin n. The VMM therefore
// installs the PC routing (arch/x86_64/irq_routing.h: GSI 0 -> PIC pin 0 and
// IOAPIC pin 2), as QEMU and kvmtool do.
#ifndef VMM_FIRMWARE_MP_TABLE_H_
#define VMM_FIRMWARE_MP_TABLE_H_

#include <cstdint>

#include "absl/status/status.h"
#include "arch/x86_64/layout.h"
#include "base/guest_memory.h"

namespace vmm::firmware {

inline constexpr uint8_t kMpIsaIrq0IoapicPin = x86_64::kPitIoapicPin;

// Structure sizes fixed by the specification.
inline constexpr uint64_t kMpFloatingPointerSize = 16;
inline constexpr uint64_t kMpConfigHeaderSize = 44;
inline constexpr uint64_t kMpProcessorEntrySize = 20;
inline constexpr uint64_t kMpEntrySize = 8;  // bus, IOAPIC, interrupt entries
// ISA IRQs 0..15 without the cascade (15), plus pins 16..23 (8).
inline constexpr uint32_t kMpIoInterruptEntries = 15 + 8;
inline constexpr uint32_t kMpLocalInterruptEntries = 2;

// Bytes the floating pointer and configuration table take for `cpu_count`.
constexpr uint64_t MpTableSize(uint32_t cpu_count) {
  return kMpFloatingPointerSize + kMpConfigHeaderSize + cpu_count * kMpProcessorEntrySize +
         kMpEntrySize * (1 /* bus */ + 1 /* IOAPIC */ + kMpIoInterruptEntries +
                         kMpLocalInterruptEntries);
}

// The most CPUs whose tables fit in [kEbdaStart, kLowRamEnd): 37.
inline constexpr uint32_t kMpTableMaxCpus =
    (x86_64::kLowRamEnd - x86_64::kEbdaStart - MpTableSize(0)) / kMpProcessorEntrySize;

// Writes the tables for CPUs with APIC IDs 0..cpu_count-1 (CPU 0 the
// bootstrap processor) and one IOAPIC with ID cpu_count at kIoapicStart.
// InvalidArgument if cpu_count is 0 or above kMpTableMaxCpus; an error if
// the EBDA is not guest RAM.
absl::Status WriteMpTable(const GuestMemory& memory, uint32_t cpu_count);

}  // namespace vmm::firmware

#endif  // VMM_FIRMWARE_MP_TABLE_H_
