// The local APIC as a PC's firmware leaves it for the OS: LINT0 delivers the
// 8259 PIC's interrupts (ExtINT), LINT1 NMIs, as the MP table describes.
// Works on KVM's kvm_lapic_state (the APIC page), with no ioctl here: the
// VMM reads the state, calls this, writes it back.
#ifndef VMM_ARCH_X86_64_LAPIC_H_
#define VMM_ARCH_X86_64_LAPIC_H_

#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>

namespace vmm::x86_64 {

// Register offsets in the APIC page (Intel SDM vol. 3, table 11-1).
inline constexpr size_t kApicLvtLint0 = 0x350;
inline constexpr size_t kApicLvtLint1 = 0x360;
// LVT delivery mode, bits 8..10.
inline constexpr uint32_t kApicDeliveryModeMask = 0x700;
inline constexpr uint32_t kApicDeliveryNmi = 0x400;
inline constexpr uint32_t kApicDeliveryExtInt = 0x700;

// The 32-bit APIC register at `offset`.
uint32_t ApicRegister(const kvm_lapic_state& lapic, size_t offset);
void SetApicRegister(kvm_lapic_state& lapic, size_t offset, uint32_t value);

// LINT0 to ExtINT and LINT1 to NMI, every other bit of the two LVT entries
// (mask, trigger, polarity) left as it was.
void SetLintDeliveryLikeFirmware(kvm_lapic_state& lapic);

}  // namespace vmm::x86_64

#endif  // VMM_ARCH_X86_64_LAPIC_H_
