#include "firmware/reset_vector.h"

#include <cstdint>

#include "arch/x86_64/layout.h"
#include "gtest/gtest.h"
#include "tests/fakes/test_guest_memory.h"

namespace vmm::firmware {
namespace {

// Real mode's F000:FFF0 is where a Linux that gave up on every other way to
// reboot jumps; what it finds there must reset the machine through the
// i8042 (command 0xFE on port 0x64), which vmm handles as the guest's reset.
TEST(ResetVectorTest, F000FFF0PulsesTheI8042ResetLineThenHalts) {
  GuestMemory memory = testing::TestGuestMemory(2 << 20);
  ASSERT_TRUE(WriteResetVector(memory).ok());
  const uint64_t linear = (0xf000ull << 4) + 0xfff0;
  ASSERT_EQ(linear, x86_64::kResetVectorStart);
  uint8_t code[8];
  ASSERT_TRUE(memory.ReadBytes(GuestAddress(linear), absl::MakeSpan(code)).ok());
  EXPECT_EQ(code[0], 0xb0);  // mov al, imm8
  EXPECT_EQ(code[1], 0xfe);  //   0xFE: pulse the reset line
  EXPECT_EQ(code[2], 0xe6);  // out imm8, al
  EXPECT_EQ(code[3], x86_64::kI8042CommandPort);
  EXPECT_EQ(code[4], 0xfa);  // cli
  EXPECT_EQ(code[5], 0xf4);  // hlt
  EXPECT_EQ(code[6], 0xeb);  // jmp short ...
  EXPECT_EQ(static_cast<int8_t>(code[7]), -4);  // ... back to cli
}

TEST(ResetVectorTest, AcpiTablesEndBeforeTheResetVector) {
  EXPECT_LE(x86_64::kAcpiStart + x86_64::kAcpiSize, x86_64::kResetVectorStart);
}

}  // namespace
}  // namespace vmm::firmware
