// Register state for the boot vCPU's first instruction, for the two entry
// kinds the loaders produce. Pure functions: the VMM reads the vCPU's sregs
// (KVM_GET_SREGS), passes them through here and sets the results.
//
// Both entries use the boot GDT (gdt.h), which the VMM must have written to
// guest memory; the Linux entry also needs the identity page tables
// (page_tables.h). Application processors are not set up here: with the
// in-kernel LAPIC they wait for INIT/SIPI from the BSP.
#ifndef VMM_ARCH_X86_64_BOOT_CPU_STATE_H_
#define VMM_ARCH_X86_64_BOOT_CPU_STATE_H_

#include <linux/kvm.h>

#include <cstdint>

#include "base/guest_address.h"

namespace vmm::x86_64 {

inline constexpr uint64_t kCr0Pe = 1ull << 0;
inline constexpr uint64_t kCr0Et = 1ull << 4;
inline constexpr uint64_t kCr0Ne = 1ull << 5;
inline constexpr uint64_t kCr0Pg = 1ull << 31;
inline constexpr uint64_t kCr4Pae = 1ull << 5;
inline constexpr uint64_t kEferLme = 1ull << 8;
inline constexpr uint64_t kEferLma = 1ull << 10;
// RFLAGS bit 1 is reserved and reads as one; IF, TF and VM stay clear.
inline constexpr uint64_t kBootRflags = 0x2;

// Linux 64-bit boot protocol (Documentation/arch/x86/boot.rst): RIP = the
// 64-bit entry, RSI = struct boot_params, RSP = kBootStackTop, interrupts
// off, every other general register zero.
kvm_regs LinuxBootRegs(GuestAddress entry, GuestAddress boot_params);

// Long mode with paging on through `cr3` (the identity tables):
// CR0 = PE|ET|NE|PG, CR4 = PAE, EFER |= LME|LMA, CS = __BOOT_CS (64-bit),
// DS/ES/SS/FS/GS = __BOOT_DS, TR = the boot TSS, GDTR = the boot GDT,
// IDTR empty (an early exception shuts the VM down rather than running
// garbage). Everything else (APIC base, CR8, LDT, interrupt bitmap) is kept
// from `from_vcpu`.
kvm_sregs LinuxBootSregs(const kvm_sregs& from_vcpu, uint64_t cr3);

// PVH entry (Xen docs/misc/pvh.pandoc): RIP = the PVH entry point, RBX =
// hvm_start_info, interrupts off. The ABI leaves the stack to the guest;
// RSP = kBootStackTop anyway so a small guest has one.
kvm_regs PvhBootRegs(GuestAddress entry, GuestAddress start_info);

// 32-bit protected mode, paging off: CR0 = PE (ET reads as one), CR4 = 0,
// EFER.LME/LMA clear, CS = the 32-bit flat code segment (0x08),
// DS/ES/SS/FS/GS = flat data (0x18), TR = 32-bit busy TSS base 0 limit 0x67,
// GDTR = the boot GDT, IDTR empty. The rest is kept from `from_vcpu`.
kvm_sregs PvhBootSregs(const kvm_sregs& from_vcpu);

// x87 and SSE control state after FNINIT / reset: FCW = 0x37f,
// MXCSR = 0x1f80 (all exceptions masked).
kvm_fpu BootFpu();

}  // namespace vmm::x86_64

#endif  // VMM_ARCH_X86_64_BOOT_CPU_STATE_H_
