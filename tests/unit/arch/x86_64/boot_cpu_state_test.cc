#include "arch/x86_64/boot_cpu_state.h"

#include <cstdint>

#include "arch/x86_64/gdt.h"
#include "arch/x86_64/layout.h"
#include "arch/x86_64/page_tables.h"
#include "gtest/gtest.h"

namespace vmm::x86_64 {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kApicBase = 0xfee0'0900;  // enabled, BSP

// What KVM_GET_SREGS returns for a freshly created vCPU (reset state).
kvm_sregs ResetSregs() {
  kvm_sregs sregs = {};
  sregs.cr0 = 0x6000'0010;  // CD | NW | ET
  sregs.apic_base = kApicBase;
  sregs.idt.limit = 0xffff;
  sregs.gdt.limit = 0xffff;
  sregs.cs.selector = 0xf000;
  sregs.cs.base = 0xffff'0000;
  sregs.cs.limit = 0xffff;
  sregs.ldt.type = 2;
  sregs.ldt.present = 1;
  sregs.ldt.limit = 0xffff;
  sregs.interrupt_bitmap[1] = 0x42;
  return sregs;
}

void ExpectFlatData(const kvm_segment& seg, const char* name) {
  SCOPED_TRACE(name);
  EXPECT_EQ(seg.selector, kBootDataSelector);
  EXPECT_EQ(seg.base, 0u);
  EXPECT_EQ(seg.limit, 0xffffffffu);
  EXPECT_EQ(seg.type, 0x3);
  EXPECT_EQ(seg.s, 1);
  EXPECT_EQ(seg.present, 1);
  EXPECT_EQ(seg.db, 1);
}

// Each loaded segment must be what reloading its selector from the GDT in
// guest memory would give, or the guest's first segment reload changes it.
void ExpectSegmentsMatchGdtInMemory(const kvm_sregs& sregs) {
  RamRange ram[] = {{GuestAddress(0), 2 * kMiB}};
  auto mem = GuestMemory::Create(ram);
  ASSERT_TRUE(mem.ok());
  ASSERT_TRUE(WriteBootGdt(*mem).ok());
  for (const kvm_segment* seg : {&sregs.cs, &sregs.ds, &sregs.es, &sregs.fs, &sregs.gs, &sregs.ss,
                                 &sregs.tr}) {
    ASSERT_LE(seg->selector + 7u, sregs.gdt.limit);
    auto entry = mem->Read<uint64_t>(GuestAddress(sregs.gdt.base + (seg->selector & ~7u)));
    ASSERT_TRUE(entry.ok());
    kvm_segment from_memory = SegmentFromGdtEntry(*entry, seg->selector);
    EXPECT_EQ(from_memory.base, seg->base);
    EXPECT_EQ(from_memory.limit, seg->limit);
    EXPECT_EQ(from_memory.type, seg->type);
    EXPECT_EQ(from_memory.l, seg->l);
    EXPECT_EQ(from_memory.db, seg->db);
    EXPECT_EQ(from_memory.present, seg->present);
  }
}

TEST(BootCpuStateTest, LinuxRegsFollowThe64BitBootProtocol) {
  kvm_regs regs = LinuxBootRegs(GuestAddress(0x100'0200), GuestAddress(kZeroPageStart));
  EXPECT_EQ(regs.rip, 0x100'0200u);
  EXPECT_EQ(regs.rsi, kZeroPageStart);
  EXPECT_EQ(regs.rsp, kBootStackTop);
  EXPECT_EQ(regs.rflags, 0x2u) << "interrupts off";
  EXPECT_EQ(regs.rax | regs.rbx | regs.rcx | regs.rdx | regs.rdi | regs.rbp | regs.r8 | regs.r15,
            0u);
}

TEST(BootCpuStateTest, LinuxSregsEnterLongModeWithPaging) {
  kvm_sregs sregs = LinuxBootSregs(ResetSregs(), kPageTablesStart);
  EXPECT_EQ(sregs.cr0, kCr0Pe | kCr0Et | kCr0Ne | kCr0Pg) << "caching back on: CD/NW cleared";
  EXPECT_EQ(sregs.cr3, kPageTablesStart);
  EXPECT_EQ(sregs.cr4, kCr4Pae);
  EXPECT_EQ(sregs.efer & (kEferLme | kEferLma), kEferLme | kEferLma);
  EXPECT_EQ(sregs.cs.selector, 0x10) << "__BOOT_CS";
  EXPECT_EQ(sregs.cs.l, 1);
  EXPECT_EQ(sregs.cs.db, 0);
  ExpectFlatData(sregs.ds, "ds");
  ExpectFlatData(sregs.es, "es");
  ExpectFlatData(sregs.fs, "fs");
  ExpectFlatData(sregs.gs, "gs");
  ExpectFlatData(sregs.ss, "ss");
  EXPECT_EQ(sregs.tr.selector, kBootTssSelector);
  EXPECT_EQ(sregs.tr.type, 0xb);
  EXPECT_EQ(sregs.gdt.base, kBootGdtStart);
  EXPECT_EQ(sregs.gdt.limit, kBootGdtLimit);
  EXPECT_EQ(sregs.idt.limit, 0);
  ExpectSegmentsMatchGdtInMemory(sregs);
}

TEST(BootCpuStateTest, LinuxSregsKeepWhatTheyNeedNotChange) {
  kvm_sregs reset = ResetSregs();
  reset.efer = 1;  // SCE
  kvm_sregs sregs = LinuxBootSregs(reset, kPageTablesStart);
  EXPECT_EQ(sregs.apic_base, kApicBase);
  EXPECT_EQ(sregs.efer, 1u | kEferLme | kEferLma);
  EXPECT_EQ(sregs.ldt.type, 2);
  EXPECT_EQ(sregs.interrupt_bitmap[1], 0x42u);
}

TEST(BootCpuStateTest, PvhRegsPassStartInfoInRbx) {
  kvm_regs regs = PvhBootRegs(GuestAddress(0x100'0000), GuestAddress(kPvhInfoStart));
  EXPECT_EQ(regs.rip, 0x100'0000u);
  EXPECT_EQ(regs.rbx, kPvhInfoStart);
  EXPECT_EQ(regs.rflags, 0x2u) << "IF, TF and VM clear";
  EXPECT_EQ(regs.rsi, 0u);
}

TEST(BootCpuStateTest, PvhSregsAre32BitProtectedModeWithoutPaging) {
  kvm_sregs reset = ResetSregs();
  reset.efer = kEferLme | kEferLma;  // must not leak into a 32-bit entry
  reset.cr3 = 0x5000;
  kvm_sregs sregs = PvhBootSregs(reset);
  EXPECT_EQ(sregs.cr0, kCr0Pe | kCr0Et);
  EXPECT_EQ(sregs.cr0 & kCr0Pg, 0u);
  EXPECT_EQ(sregs.cr4, 0u);
  EXPECT_EQ(sregs.efer & (kEferLme | kEferLma), 0u);
  EXPECT_EQ(sregs.cs.selector, 0x08);
  EXPECT_EQ(sregs.cs.db, 1) << "32-bit code";
  EXPECT_EQ(sregs.cs.l, 0);
  EXPECT_EQ(sregs.cs.base, 0u);
  EXPECT_EQ(sregs.cs.limit, 0xffffffffu);
  EXPECT_EQ(sregs.cs.type & 0xa, 0xa) << "code, readable";
  ExpectFlatData(sregs.ds, "ds");
  ExpectFlatData(sregs.es, "es");
  ExpectFlatData(sregs.ss, "ss");
  EXPECT_EQ(sregs.tr.base, 0u);
  EXPECT_EQ(sregs.tr.limit, 0x67u);
  EXPECT_EQ(sregs.tr.type, 0xb) << "32-bit busy TSS";
  EXPECT_EQ(sregs.apic_base, kApicBase);
  ExpectSegmentsMatchGdtInMemory(sregs);
}

TEST(BootCpuStateTest, FpuStartsWithResetControlWords) {
  kvm_fpu fpu = BootFpu();
  EXPECT_EQ(fpu.fcw, 0x37f);
  EXPECT_EQ(fpu.mxcsr, 0x1f80u);
  EXPECT_EQ(fpu.fsw, 0);
}

}  // namespace
}  // namespace vmm::x86_64
