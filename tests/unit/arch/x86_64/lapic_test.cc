#include "arch/x86_64/lapic.h"

#include "gtest/gtest.h"

namespace vmm::x86_64 {
namespace {

TEST(LapicTest, LintsDeliverExtIntAndNmiAndKeepTheirOtherBits) {
  kvm_lapic_state lapic{};
  // KVM's reset state: both LVT entries masked (bit 16); LINT1 with a
  // level trigger bit set here to see it kept, and a stale fixed mode.
  SetApicRegister(lapic, kApicLvtLint0, 0x0001'0000);
  SetApicRegister(lapic, kApicLvtLint1, 0x0001'8000 | 0x200);
  SetApicRegister(lapic, 0x340, 0xdead'beef);  // the neighbour (LVT perf) is untouched
  SetLintDeliveryLikeFirmware(lapic);
  EXPECT_EQ(ApicRegister(lapic, kApicLvtLint0), 0x0001'0700u);
  EXPECT_EQ(ApicRegister(lapic, kApicLvtLint1), 0x0001'8400u);
  EXPECT_EQ(ApicRegister(lapic, 0x340), 0xdead'beefu);
}

}  // namespace
}  // namespace vmm::x86_64
