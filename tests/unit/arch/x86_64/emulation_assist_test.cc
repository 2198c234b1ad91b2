// EmulationAssists::Apply: each assist's effect on the vCPU, the faults it
// raises instead, and what it refuses.
#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/arch/x86_64/emulation_assists_fixture.h"
#include "arch/x86_64/emulation_assist.h"

namespace vmm::x86_64 {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::EmulationAssistsTest;
using testing::FakeAssistVcpu;

TEST_F(EmulationAssistsTest, Int3AdvancesRipThenInjectsBreakpointKeepingOtherEvents) {
  vcpu_.events.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW;
  vcpu_.events.nmi.pending = 1;
  vcpu_.events.interrupt.shadow = 1;
  const uint64_t rip = vcpu_.regs.rip;
  ASSERT_TRUE(Apply({0xcc}).ok());
  EXPECT_EQ(vcpu_.regs.rip, rip + 1);
  // KVM_SET_REGS drops a pending exception: registers must go first.
  EXPECT_THAT(vcpu_.log, ElementsAre("SetRegs", "SetVcpuEvents"));
  EXPECT_EQ(vcpu_.events.exception.injected, 1);
  EXPECT_EQ(vcpu_.events.exception.nr, 3);
  EXPECT_EQ(vcpu_.events.exception.has_error_code, 0);
  EXPECT_EQ(vcpu_.events.flags, KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW);
  EXPECT_EQ(vcpu_.events.nmi.pending, 1);
  EXPECT_EQ(vcpu_.events.interrupt.shadow, 0);  // the instruction retired
  EXPECT_EQ(assists_.counts().int3, 1u);
}

TEST_F(EmulationAssistsTest, FwaitOnlyAdvancesRip) {
  const uint64_t rip = vcpu_.regs.rip;
  vcpu_.regs.rflags |= 1u << 16;  // RF clears when an instruction completes
  ASSERT_TRUE(Apply({0x9b, 0xdb, 0xe3}).ok());
  EXPECT_EQ(vcpu_.regs.rip, rip + 1);
  EXPECT_EQ(vcpu_.regs.rflags, 0x2u);
  EXPECT_THAT(vcpu_.log, ElementsAre("SetRegs"));
  EXPECT_EQ(assists_.counts().fwait, 1u);
}

TEST_F(EmulationAssistsTest, ClacClearsAndStacSetsAlignmentCheck) {
  const uint64_t rip = vcpu_.regs.rip;
  ASSERT_TRUE(Apply({0x0f, 0x01, 0xcb}).ok());
  EXPECT_EQ(vcpu_.regs.rflags, 0x2u | (1u << 18));
  EXPECT_EQ(vcpu_.regs.rip, rip + 3);
  ASSERT_TRUE(Apply({0x0f, 0x01, 0xca}).ok());
  EXPECT_EQ(vcpu_.regs.rflags, 0x2u);
  EXPECT_EQ(vcpu_.regs.rip, rip + 6);
  EXPECT_EQ(assists_.counts().stac, 1u);
  EXPECT_EQ(assists_.counts().clac, 1u);
}

TEST_F(EmulationAssistsTest, RipWrapsAt32BitsInProtectedMode) {
  vcpu_.sregs.efer = 0;
  vcpu_.sregs.cs.l = 0;
  vcpu_.sregs.cs.db = 1;
  vcpu_.regs.rip = 0xffffffff;
  ASSERT_TRUE(Apply({0x9b}).ok());
  EXPECT_EQ(vcpu_.regs.rip, 0u);
}

TEST_F(EmulationAssistsTest, ClacInUserModeRaisesUndefinedOpcode) {
  vcpu_.sregs.ss.dpl = 3;
  const kvm_regs before = vcpu_.regs;
  ASSERT_TRUE(Apply({0x0f, 0x01, 0xca}).ok());
  EXPECT_EQ(vcpu_.regs.rip, before.rip);
  EXPECT_EQ(vcpu_.events.exception.injected, 1);
  EXPECT_EQ(vcpu_.events.exception.nr, 6);
  EXPECT_EQ(assists_.counts().faults_injected, 1u);
  EXPECT_EQ(assists_.counts().clac, 0u);
}

TEST_F(EmulationAssistsTest, LdmxcsrLoadsTheOperandThroughTranslation) {
  vcpu_.pages[0xffff888000001000] = 0x3000;
  vcpu_.regs.rbp = 0xffff888000001010;
  ASSERT_TRUE(memory_.Write<uint32_t>(GuestAddress(0x3008), 0x9fc0).ok());
  const uint64_t rip = vcpu_.regs.rip;
  ASSERT_TRUE(Apply({0x0f, 0xae, 0x55, 0xf8}).ok());  // ldmxcsr [rbp-8]
  EXPECT_EQ(vcpu_.mxcsr, 0x9fc0u);
  EXPECT_EQ(vcpu_.regs.rip, rip + 4);
  EXPECT_THAT(vcpu_.log, ElementsAre("SetMxcsr", "SetRegs"));
  EXPECT_EQ(assists_.counts().ldmxcsr, 1u);
}

TEST_F(EmulationAssistsTest, StmxcsrStoresMxcsrAcrossAPageBoundary) {
  // The operand's first two bytes end one page, the last two start the next,
  // which maps to a lower physical page.
  vcpu_.pages[0x7000] = 0x5000;
  vcpu_.pages[0x8000] = 0x2000;
  vcpu_.regs.rax = 0x7ffe;
  vcpu_.mxcsr = 0x11223344;
  ASSERT_TRUE(Apply({0x0f, 0xae, 0x18}).ok());  // stmxcsr [rax]
  EXPECT_EQ(*memory_.Read<uint16_t>(GuestAddress(0x5ffe)), 0x3344);
  EXPECT_EQ(*memory_.Read<uint16_t>(GuestAddress(0x2000)), 0x1122);
  EXPECT_EQ(vcpu_.translations, 2);
  EXPECT_EQ(assists_.counts().stmxcsr, 1u);
}

TEST_F(EmulationAssistsTest, LdmxcsrAcrossAPageBoundaryAssemblesBothHalves) {
  vcpu_.pages[0x7000] = 0x5000;
  vcpu_.pages[0x8000] = 0x2000;
  vcpu_.regs.rax = 0x7fff;
  ASSERT_TRUE(memory_.Write<uint8_t>(GuestAddress(0x5fff), 0x80).ok());
  ASSERT_TRUE(memory_.Write<uint16_t>(GuestAddress(0x2000), 0x001f).ok());
  ASSERT_TRUE(memory_.Write<uint8_t>(GuestAddress(0x2002), 0x00).ok());
  ASSERT_TRUE(Apply({0x0f, 0xae, 0x10}).ok());
  EXPECT_EQ(vcpu_.mxcsr, 0x1f80u);
}

TEST_F(EmulationAssistsTest, LdmxcsrWithReservedBitsRaisesGeneralProtectionZero) {
  vcpu_.pages[0x1000] = 0x1000;
  vcpu_.regs.rax = 0x1000;
  const kvm_regs before = vcpu_.regs;
  for (uint32_t bad : {0x10000u | 0x1f80u, 0x80000000u}) {
    ASSERT_TRUE(memory_.Write<uint32_t>(GuestAddress(0x1000), bad).ok());
    vcpu_.events = {};
    ASSERT_TRUE(Apply({0x0f, 0xae, 0x10}).ok());
    EXPECT_EQ(vcpu_.mxcsr, 0x1f80u);
    EXPECT_EQ(vcpu_.regs.rip, before.rip);  // a fault: RIP stays on the instruction
    EXPECT_EQ(vcpu_.events.exception.injected, 1);
    EXPECT_EQ(vcpu_.events.exception.nr, 13);
    EXPECT_EQ(vcpu_.events.exception.has_error_code, 1);
    EXPECT_EQ(vcpu_.events.exception.error_code, 0u);
  }
  EXPECT_EQ(assists_.counts().faults_injected, 2u);
  EXPECT_EQ(assists_.counts().ldmxcsr, 0u);
}

TEST_F(EmulationAssistsTest, SseDisabledOrTaskSwitchedRaisesUdOrNm) {
  vcpu_.regs.rax = 0x1000;
  vcpu_.pages[0x1000] = 0x1000;
  vcpu_.sregs.cr0 |= 1u << 3;  // TS
  ASSERT_TRUE(Apply({0x0f, 0xae, 0x10}).ok());
  EXPECT_EQ(vcpu_.events.exception.nr, 7);
  vcpu_.events = {};
  vcpu_.sregs.cr4 = 0;  // no OSFXSR: #UD outranks #NM
  ASSERT_TRUE(Apply({0x0f, 0xae, 0x10}).ok());
  EXPECT_EQ(vcpu_.events.exception.nr, 6);
}

TEST_F(EmulationAssistsTest, UnmappedOperandIsRefusedAndStateIsUnchanged) {
  vcpu_.regs.rax = 0x4000;  // no translation
  absl::Status s = Apply({0x0f, 0xae, 0x10});
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("not mapped"));
  EXPECT_TRUE(vcpu_.log.empty());
  EXPECT_EQ(assists_.counts().refused, 1u);
  EXPECT_TRUE(notices_.empty());
}

TEST_F(EmulationAssistsTest, OperandOutsideRamIsRefused) {
  vcpu_.pages[0x1000] = 0xfee00000;  // the LAPIC page, not RAM
  vcpu_.regs.rax = 0x1000;
  absl::Status s = Apply({0x0f, 0xae, 0x18});
  EXPECT_THAT(s.message(), HasSubstr("not RAM"));
  EXPECT_TRUE(vcpu_.log.empty());
}

// KVM_TRANSLATE ignores page permissions, so a user program's MXCSR access
// is not done for it: it gets #UD, as KVM would give it.
TEST_F(EmulationAssistsTest, MxcsrMemoryAccessOutsideRingZeroRaisesUd) {
  vcpu_.sregs.ss.dpl = 3;
  vcpu_.pages[0x1000] = 0x1000;
  vcpu_.regs.rax = 0x1000;
  const kvm_regs before = vcpu_.regs;
  ASSERT_TRUE(Apply({0x0f, 0xae, 0x18}).ok());
  EXPECT_EQ(vcpu_.regs.rip, before.rip);
  EXPECT_EQ(vcpu_.events.exception.injected, 1);
  EXPECT_EQ(vcpu_.events.exception.nr, 6);
  EXPECT_EQ(assists_.counts().user_ud, 1u);
  EXPECT_EQ(assists_.counts().stmxcsr, 0u);
}

// With KVM_CAP_EXIT_ON_EMULATION_FAILURE on, a guest program's failure
// reaches vmm: it must cost the program a #UD, never the VM.
TEST_F(EmulationAssistsTest, UnknownInstructionOutsideRingZeroRaisesUd) {
  vcpu_.sregs.ss.dpl = 3;
  const kvm_regs before = vcpu_.regs;
  ASSERT_TRUE(Apply({0xf3, 0x0f, 0xb8, 0xc0}).ok());  // popcnt
  EXPECT_EQ(vcpu_.regs.rip, before.rip);
  EXPECT_THAT(vcpu_.log, ElementsAre("SetVcpuEvents"));
  EXPECT_EQ(vcpu_.events.exception.nr, 6);
  EXPECT_EQ(assists_.counts().user_ud, 1u);
  EXPECT_EQ(assists_.counts().refused, 0u);
  // Unless an event is already on its way: then the VM ends as in ring 0.
  vcpu_.log.clear();
  vcpu_.events = {};
  vcpu_.events.interrupt.injected = 1;
  EXPECT_FALSE(Apply({0xf3, 0x0f, 0xb8, 0xc0}).ok());
  EXPECT_TRUE(vcpu_.log.empty());
}

TEST_F(EmulationAssistsTest, VexFormRaisesUdWithoutOsxsaveAndIsRefusedWithIt) {
  vcpu_.regs.rax = 0x1000;
  vcpu_.pages[0x1000] = 0x1000;
  ASSERT_TRUE(Apply({0xc5, 0xf8, 0xae, 0x10}).ok());
  EXPECT_EQ(vcpu_.events.exception.nr, 6);
  vcpu_.events = {};
  vcpu_.sregs.cr4 |= 1u << 18;
  EXPECT_FALSE(Apply({0xc5, 0xf8, 0xae, 0x10}).ok());
}

TEST_F(EmulationAssistsTest, UnknownInstructionIsRefusedAndCounted) {
  absl::Status s = Apply({0xf3, 0x0f, 0xb8, 0xc0});  // popcnt
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("not one of int3, fwait"));
  EXPECT_TRUE(vcpu_.log.empty());
  EXPECT_EQ(assists_.counts().refused, 1u);
}

TEST_F(EmulationAssistsTest, SingleSteppingOrAnEventInFlightIsRefused) {
  vcpu_.regs.rflags |= 1u << 8;
  EXPECT_FALSE(Apply({0x9b}).ok());
  vcpu_.regs.rflags = 0x2;
  vcpu_.events.interrupt.injected = 1;
  EXPECT_FALSE(Apply({0xcc}).ok());
  EXPECT_TRUE(vcpu_.log.empty());
}

TEST_F(EmulationAssistsTest, NoticeIsGivenOnceOnTheFirstAssist) {
  ASSERT_TRUE(Apply({0x9b}).ok());
  ASSERT_TRUE(Apply({0x0f, 0x01, 0xcb}).ok());
  ASSERT_TRUE(Apply({0x9b}).ok());
  ASSERT_EQ(notices_.size(), 1u);
  EXPECT_THAT(notices_[0], HasSubstr("PVM-backed"));
  EXPECT_THAT(notices_[0], HasSubstr("fwait"));
  EXPECT_EQ(assists_.counts().fwait, 2u);
}

TEST_F(EmulationAssistsTest, WithoutGuestMemoryMemoryFormsAreRefused) {
  EmulationAssists no_memory(nullptr, {});
  vcpu_.regs.rax = 0x1000;
  vcpu_.pages[0x1000] = 0x1000;
  EXPECT_FALSE(no_memory.Apply(vcpu_, std::vector<uint8_t>{0x0f, 0xae, 0x10}).ok());
  EXPECT_TRUE(no_memory.Apply(vcpu_, std::vector<uint8_t>{0xcc}).ok());
}

// A vCPU type without GetMxcsr/SetMxcsr (as KvmVcpu was before them).
struct VcpuWithoutMxcsr {
  explicit VcpuWithoutMxcsr(FakeAssistVcpu& f) : fake(f) {}
  absl::StatusOr<kvm_regs> GetRegs() const { return fake.GetRegs(); }
  absl::Status SetRegs(const kvm_regs& r) { return fake.SetRegs(r); }
  absl::StatusOr<kvm_sregs> GetSregs() const { return fake.GetSregs(); }
  absl::StatusOr<kvm_vcpu_events> GetVcpuEvents() const { return fake.GetVcpuEvents(); }
  absl::Status SetVcpuEvents(const kvm_vcpu_events& e) { return fake.SetVcpuEvents(e); }
  absl::StatusOr<kvm_translation> Translate(uint64_t la) const { return fake.Translate(la); }
  FakeAssistVcpu& fake;
};

TEST_F(EmulationAssistsTest, AdapterWithoutMxcsrAccessRefusesMxcsrFormsOnly) {
  VcpuWithoutMxcsr plain(vcpu_);
  AssistVcpuAdapter<VcpuWithoutMxcsr> adapter(plain);
  vcpu_.pages[0x1000] = 0x1000;
  vcpu_.regs.rax = 0x1000;
  const uint64_t rip = vcpu_.regs.rip;
  EXPECT_FALSE(assists_.Apply(adapter, std::vector<uint8_t>{0x0f, 0xae, 0x18}).ok());
  EXPECT_FALSE(assists_.Apply(adapter, std::vector<uint8_t>{0x0f, 0xae, 0x10}).ok());
  EXPECT_EQ(vcpu_.regs.rip, rip);
  EXPECT_EQ(*memory_.Read<uint32_t>(GuestAddress(0x1000)), 0u);
  EXPECT_TRUE(assists_.Apply(adapter, std::vector<uint8_t>{0xcc}).ok());
  EXPECT_EQ(vcpu_.regs.rip, rip + 1);
}

TEST(EmulationAssistsMaskTest, HostMxcsrMaskAllowsTheDefaultAndRejectsBit16) {
  EmulationAssists assists(nullptr, {});
  EXPECT_EQ(assists.mxcsr_mask() & 0xffbfu, 0xffbfu);
  EXPECT_EQ(assists.mxcsr_mask() & 0xfffe0000u & ~(1u << 17), 0u);
  EXPECT_EQ(assists.mxcsr_mask() & (1u << 16), 0u);
}

}  // namespace
}  // namespace vmm::x86_64
