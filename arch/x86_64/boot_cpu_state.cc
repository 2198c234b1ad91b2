#include "arch/x86_64/boot_cpu_state.h"

#include "arch/x86_64/gdt.h"
#include "arch/x86_64/layout.h"

namespace vmm::x86_64 {
namespace {

// What both entries share: the boot GDT's segments and descriptor tables.
void SetBootSegments(kvm_sregs& sregs, uint16_t code_selector) {
  sregs.cs = BootSegment(code_selector);
  const kvm_segment data = BootSegment(kBootDataSelector);
  sregs.ds = data;
  sregs.es = data;
  sregs.fs = data;
  sregs.gs = data;
  sregs.ss = data;
  sregs.tr = BootSegment(kBootTssSelector);
  sregs.gdt.base = kBootGdtStart;
  sregs.gdt.limit = kBootGdtLimit;
  sregs.idt.base = 0;
  sregs.idt.limit = 0;
}

kvm_regs BootRegs(GuestAddress entry) {
  kvm_regs regs = {};
  regs.rip = entry.value();
  regs.rflags = kBootRflags;
  regs.rsp = kBootStackTop;
  return regs;
}

}  // namespace

kvm_regs LinuxBootRegs(GuestAddress entry, GuestAddress boot_params) {
  kvm_regs regs = BootRegs(entry);
  regs.rsi = boot_params.value();
  return regs;
}

kvm_sregs LinuxBootSregs(const kvm_sregs& from_vcpu, uint64_t cr3) {
  kvm_sregs sregs = from_vcpu;
  SetBootSegments(sregs, kBootCode64Selector);
  sregs.cr0 = kCr0Pe | kCr0Et | kCr0Ne | kCr0Pg;
  sregs.cr3 = cr3;
  sregs.cr4 = kCr4Pae;
  sregs.efer |= kEferLme | kEferLma;
  return sregs;
}

kvm_regs PvhBootRegs(GuestAddress entry, GuestAddress start_info) {
  kvm_regs regs = BootRegs(entry);
  regs.rbx = start_info.value();
  return regs;
}

kvm_sregs PvhBootSregs(const kvm_sregs& from_vcpu) {
  kvm_sregs sregs = from_vcpu;
  SetBootSegments(sregs, kBootCode32Selector);
  sregs.cr0 = kCr0Pe | kCr0Et;
  sregs.cr4 = 0;
  sregs.efer &= ~(kEferLme | kEferLma);
  return sregs;
}

kvm_fpu BootFpu() {
  kvm_fpu fpu = {};
  fpu.fcw = 0x37f;
  fpu.mxcsr = 0x1f80;
  return fpu;
}

}  // namespace vmm::x86_64
