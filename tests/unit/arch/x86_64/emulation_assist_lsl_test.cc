// The LSL assist: segment limits read from the guest's GDT.
#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/arch/x86_64/emulation_assists_fixture.h"
#include "arch/x86_64/emulation_assist.h"

namespace vmm::x86_64 {
namespace {

using testing::EmulationAssistsTest;

// A GDT at linear 0xfffffe0000001000 (guest-physical 0x4000) with Linux's
// per-CPU segment (index 15, selector 0x7b: data, DPL 3, byte-granular limit
// = node << 12 | cpu), a kernel code segment and a 4 KiB-granular one.
class LslTest : public EmulationAssistsTest {
 protected:
  void SetUp() override {
    vcpu_.pages[0xfffffe0000001000] = 0x4000;
    vcpu_.sregs.gdt.base = 0xfffffe0000001000;
    vcpu_.sregs.gdt.limit = 16 * 8 - 1;
    // limit 0x01003 (node 1, cpu 3), type 3 (data RW accessed), S, DPL 3, P.
    Descriptor(15, 0x1003, 0xf3, 0);
    Descriptor(2, 0xffff, 0x9b, 0xa0);   // kernel code: DPL 0, L, G
    Descriptor(4, 0x0000f, 0xf3, 0x80);  // G: limit 0xf << 12 | 0xfff = 0xffff
    Descriptor(6, 0x67, 0x89, 0);        // 64-bit TSS, DPL 0
    Descriptor(7, 0x67, 0x8c, 0);        // call gate: LSL refuses its type
  }
  void Descriptor(int index, uint32_t limit, uint8_t access, uint8_t flags) {
    uint64_t d = (limit & 0xffff) | (uint64_t{access} << 40) |
                 (uint64_t{(limit >> 16) & 0xf} << 48) | (uint64_t{flags} << 48);
    ASSERT_TRUE(memory_.Write<uint64_t>(GuestAddress(0x4000 + index * 8), d).ok());
  }
  static constexpr uint64_t kZf = 1u << 6;
};

TEST_F(LslTest, ReadsTheCpuNumberFromTheGdtAndSetsZf) {
  vcpu_.regs.rax = 0x7b;
  const uint64_t rip = vcpu_.regs.rip;
  ASSERT_TRUE(Apply({0x48, 0x0f, 0x03, 0xc0}).ok());  // lsl rax, rax
  EXPECT_EQ(vcpu_.regs.rax, 0x1003u);
  EXPECT_NE(vcpu_.regs.rflags & kZf, 0u);
  EXPECT_EQ(vcpu_.regs.rip, rip + 4);
  EXPECT_EQ(assists_.counts().lsl, 1u);
}

TEST_F(LslTest, UserModeGetsItToo) {
  vcpu_.sregs.ss.dpl = 3;
  vcpu_.sregs.cs.selector = 0x33;
  vcpu_.regs.rcx = 0x7b;
  ASSERT_TRUE(Apply({0x44, 0x0f, 0x03, 0xc9}).ok());  // lsl r9d, ecx
  EXPECT_EQ(vcpu_.regs.r9, 0x1003u);
  EXPECT_NE(vcpu_.regs.rflags & kZf, 0u);
}

TEST_F(LslTest, GranularityScalesTheLimitAnd16BitKeepsTheUpperBits) {
  vcpu_.regs.rbx = 0x7b;
  vcpu_.regs.rax = 0xdead'0000'0000'1111;
  ASSERT_TRUE(Apply({0x66, 0x0f, 0x03, 0xc3}).ok());  // lsl ax, bx
  EXPECT_EQ(vcpu_.regs.rax, 0xdead'0000'0000'1003u);
  vcpu_.regs.rbx = 0x23;  // index 4, 4 KiB granular
  vcpu_.regs.rax = 0;
  ASSERT_TRUE(Apply({0x48, 0x0f, 0x03, 0xc3}).ok());  // lsl rax, rbx
  EXPECT_EQ(vcpu_.regs.rax, 0xffffu);
}

TEST_F(LslTest, InvalidSelectorsClearZfAndLeaveTheDestination) {
  // null, past the GDT limit, a call gate, a DPL 0 segment from user mode
  // (and with RPL 3), an LDT selector without an LDT.
  struct Case {
    uint64_t selector;
    uint8_t cpl;
  };
  for (Case c : {Case{0x0, 0}, Case{0x3, 0}, Case{0x80, 0}, Case{0x38, 0}, Case{0x10, 3},
                 Case{0x13, 0}, Case{0x7c, 0}}) {
    SCOPED_TRACE(c.selector);
    vcpu_.sregs.ss.dpl = c.cpl;
    vcpu_.regs.rax = c.selector;
    vcpu_.regs.rdx = 0x1234;
    vcpu_.regs.rflags = 0x2 | kZf;
    ASSERT_TRUE(Apply({0x48, 0x0f, 0x03, 0xd0}).ok());  // lsl rdx, rax
    EXPECT_EQ(vcpu_.regs.rdx, 0x1234u);
    EXPECT_EQ(vcpu_.regs.rflags & kZf, 0u);
  }
  // The kernel's own code segment and TSS are fine at CPL 0.
  vcpu_.sregs.ss.dpl = 0;
  vcpu_.regs.rax = 0x30;
  ASSERT_TRUE(Apply({0x48, 0x0f, 0x03, 0xd0}).ok());
  EXPECT_EQ(vcpu_.regs.rdx, 0x67u);
  EXPECT_NE(vcpu_.regs.rflags & kZf, 0u);
}

TEST_F(LslTest, AnUnmappedGdtIsRefusedNotGuessed) {
  vcpu_.sregs.gdt.base = 0xfffffe0000100000;
  vcpu_.regs.rax = 0x7b;
  const kvm_regs before = vcpu_.regs;
  EXPECT_FALSE(Apply({0x48, 0x0f, 0x03, 0xc0}).ok());
  EXPECT_EQ(vcpu_.regs.rax, before.rax);
  EXPECT_EQ(assists_.counts().refused, 1u);
}

}  // namespace
}  // namespace vmm::x86_64
