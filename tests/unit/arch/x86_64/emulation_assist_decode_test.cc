// Decoding the instructions KVM's emulator stopped on, and their memory
// operands' linear addresses.
#include "arch/x86_64/emulation_assist.h"

#include <cstdint>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/test_guest_memory.h"

namespace vmm::x86_64 {
namespace {

using ::testing::HasSubstr;
using testing::TestGuestMemory;

constexpr uint8_t kNone = MemoryOperand::kNoReg;
constexpr uint8_t kRax = 0, kRcx = 1, kRsp = 4, kRbp = 5, kR8 = 8, kR12 = 12, kR13 = 13;

std::optional<Assist> Decode(std::vector<uint8_t> bytes, CpuMode mode = CpuMode::kLong64) {
  return DecodeEmulationFailure(bytes, mode);
}

// --- Decoding ---

TEST(DecodeEmulationFailureTest, Int3AndFwaitAreOneByteInEveryMode) {
  for (CpuMode mode : {CpuMode::kReal, CpuMode::kProtected16, CpuMode::kProtected32,
                       CpuMode::kLong64}) {
    auto int3 = Decode({0xcc, 0x90}, mode);
    ASSERT_TRUE(int3.has_value());
    EXPECT_EQ(int3->kind, AssistKind::kInt3);
    EXPECT_EQ(int3->length, 1);
    EXPECT_FALSE(int3->memory.has_value());
    auto fwait = Decode({0x9b}, mode);
    ASSERT_TRUE(fwait.has_value());
    EXPECT_EQ(fwait->kind, AssistKind::kFwait);
    EXPECT_EQ(fwait->length, 1);
  }
}

TEST(DecodeEmulationFailureTest, ClacAndStacAreThreeBytes) {
  auto clac = Decode({0x0f, 0x01, 0xca});
  ASSERT_TRUE(clac.has_value());
  EXPECT_EQ(clac->kind, AssistKind::kClac);
  EXPECT_EQ(clac->length, 3);
  auto stac = Decode({0x0f, 0x01, 0xcb}, CpuMode::kProtected32);
  ASSERT_TRUE(stac.has_value());
  EXPECT_EQ(stac->kind, AssistKind::kStac);
  EXPECT_EQ(stac->length, 3);
}

TEST(DecodeEmulationFailureTest, PrefixedOneByteFormsAreRefused) {
  EXPECT_FALSE(Decode({0x66, 0xcc}));
  EXPECT_FALSE(Decode({0x48, 0x9b}));
  EXPECT_FALSE(Decode({0xf3, 0x0f, 0x01, 0xca}));
  EXPECT_FALSE(Decode({0x41, 0x0f, 0x01, 0xcb}));
}

TEST(DecodeEmulationFailureTest, LdmxcsrThroughBaseRegister) {
  auto a = Decode({0x0f, 0xae, 0x10});  // ldmxcsr [rax]
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->kind, AssistKind::kLdmxcsr);
  EXPECT_EQ(a->length, 3);
  ASSERT_TRUE(a->memory.has_value());
  EXPECT_EQ(a->memory->base, kRax);
  EXPECT_EQ(a->memory->index, kNone);
  EXPECT_EQ(a->memory->disp, 0);
  EXPECT_EQ(a->memory->segment, SegmentReg::kDs);
  EXPECT_EQ(a->memory->address_bits, 64);
  EXPECT_FALSE(a->vex);
}

TEST(DecodeEmulationFailureTest, StmxcsrWithRbpAndNegativeDisp8DefaultsToSs) {
  auto a = Decode({0x0f, 0xae, 0x5d, 0xf8});  // stmxcsr [rbp-8]
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->kind, AssistKind::kStmxcsr);
  EXPECT_EQ(a->length, 4);
  EXPECT_EQ(a->memory->base, kRbp);
  EXPECT_EQ(a->memory->disp, -8);
  EXPECT_EQ(a->memory->segment, SegmentReg::kSs);
}

TEST(DecodeEmulationFailureTest, RspBaseNeedsSib) {
  auto a = Decode({0x0f, 0xae, 0x54, 0x24, 0x10});  // ldmxcsr [rsp+0x10]
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->length, 5);
  EXPECT_EQ(a->memory->base, kRsp);
  EXPECT_EQ(a->memory->index, kNone);
  EXPECT_EQ(a->memory->disp, 0x10);
  EXPECT_EQ(a->memory->segment, SegmentReg::kSs);
}

TEST(DecodeEmulationFailureTest, SibWithScaledIndexAndDisp32) {
  // ldmxcsr [rax + rcx*4 + 0x12345678]
  auto a = Decode({0x0f, 0xae, 0x94, 0x88, 0x78, 0x56, 0x34, 0x12});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->length, 8);
  EXPECT_EQ(a->memory->base, kRax);
  EXPECT_EQ(a->memory->index, kRcx);
  EXPECT_EQ(a->memory->scale, 4);
  EXPECT_EQ(a->memory->disp, 0x12345678);
}

TEST(DecodeEmulationFailureTest, RexXAndRexBExtendIndexAndBase) {
  auto a = Decode({0x43, 0x0f, 0xae, 0x14, 0x2c});  // ldmxcsr [r12 + r13]
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->length, 5);
  EXPECT_EQ(a->memory->base, kR12);
  EXPECT_EQ(a->memory->index, kR13);
  EXPECT_EQ(a->memory->scale, 1);
  // Without REX.X, index 100 means "no index"; with it, r12.
  EXPECT_EQ(Decode({0x0f, 0xae, 0x14, 0x20})->memory->index, kNone);
  EXPECT_EQ(Decode({0x42, 0x0f, 0xae, 0x14, 0x20})->memory->index, kR12);
  // REX.W is ignored by LDMXCSR; REX.B on a plain base.
  EXPECT_EQ(Decode({0x49, 0x0f, 0xae, 0x10})->memory->base, kR8);
}

TEST(DecodeEmulationFailureTest, RipRelativeIn64BitModeEvenWithRexB) {
  auto a = Decode({0x0f, 0xae, 0x15, 0x10, 0x00, 0x00, 0x00});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->length, 7);
  EXPECT_TRUE(a->memory->rip_relative);
  EXPECT_EQ(a->memory->base, kNone);
  EXPECT_EQ(a->memory->disp, 0x10);
  EXPECT_TRUE(Decode({0x41, 0x0f, 0xae, 0x15, 0, 0, 0, 0})->memory->rip_relative);
  // [r13] needs mod=01 with a zero disp8.
  auto r13 = Decode({0x41, 0x0f, 0xae, 0x55, 0x00});
  EXPECT_FALSE(r13->memory->rip_relative);
  EXPECT_EQ(r13->memory->base, kR13);
}

TEST(DecodeEmulationFailureTest, SibWithoutBaseIsAbsoluteDisp32) {
  auto a = Decode({0x0f, 0xae, 0x14, 0x25, 0x00, 0x10, 0x00, 0x00});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->length, 8);
  EXPECT_EQ(a->memory->base, kNone);
  EXPECT_EQ(a->memory->index, kNone);
  EXPECT_FALSE(a->memory->rip_relative);
  EXPECT_EQ(a->memory->disp, 0x1000);
}

TEST(DecodeEmulationFailureTest, SegmentOverrideAndAddressSizePrefix) {
  auto gs = Decode({0x65, 0x0f, 0xae, 0x1c, 0x25, 0x28, 0, 0, 0});  // stmxcsr gs:[0x28]
  ASSERT_TRUE(gs.has_value());
  EXPECT_EQ(gs->kind, AssistKind::kStmxcsr);
  EXPECT_EQ(gs->length, 9);
  EXPECT_EQ(gs->memory->segment, SegmentReg::kGs);
  auto fs = Decode({0x64, 0x48, 0x0f, 0xae, 0x10});
  EXPECT_EQ(fs->memory->segment, SegmentReg::kFs);
  EXPECT_EQ(fs->length, 5);
  auto a32 = Decode({0x67, 0x0f, 0xae, 0x10});
  EXPECT_EQ(a32->memory->address_bits, 32);
  EXPECT_EQ(a32->length, 4);
}

TEST(DecodeEmulationFailureTest, ThirtyTwoBitModeHasNoRexAndNoRipRelative) {
  auto a = Decode({0x0f, 0xae, 0x15, 0x00, 0x10, 0x00, 0x00}, CpuMode::kProtected32);
  ASSERT_TRUE(a.has_value());
  EXPECT_FALSE(a->memory->rip_relative);
  EXPECT_EQ(a->memory->disp, 0x1000);
  EXPECT_EQ(a->memory->address_bits, 32);
  EXPECT_FALSE(Decode({0x40, 0x0f, 0xae, 0x10}, CpuMode::kProtected32));  // 0x40 is INC
  // 16-bit addressing is not decoded; 0x67 switches real mode to 32-bit.
  EXPECT_FALSE(Decode({0x0f, 0xae, 0x10}, CpuMode::kProtected16));
  EXPECT_FALSE(Decode({0x67, 0x0f, 0xae, 0x10}, CpuMode::kProtected32));
  EXPECT_EQ(Decode({0x67, 0x0f, 0xae, 0x10}, CpuMode::kReal)->memory->address_bits, 32);
}

TEST(DecodeEmulationFailureTest, PrefixesThatMakeAnotherInstructionAreRefused) {
  EXPECT_FALSE(Decode({0xf3, 0x0f, 0xae, 0x10}));  // F3 0F AE /2 family: WRFSBASE
  EXPECT_FALSE(Decode({0x66, 0x0f, 0xae, 0x10}));
  EXPECT_FALSE(Decode({0xf2, 0x0f, 0xae, 0x10}));
  EXPECT_FALSE(Decode({0xf0, 0x0f, 0xae, 0x10}));
}

TEST(DecodeEmulationFailureTest, OtherOpcodesAndRegisterFormsAreRefused) {
  EXPECT_FALSE(Decode({0x0f, 0xae, 0xd0}));  // mod=11
  EXPECT_FALSE(Decode({0x0f, 0xae, 0x38}));  // clflush [rax]
  EXPECT_FALSE(Decode({0x0f, 0xae, 0x20}));  // xsave [rax]
  EXPECT_FALSE(Decode({0x0f, 0x0b}));        // ud2
  EXPECT_FALSE(Decode({0x0f, 0x01, 0xd0}));  // xgetbv
  EXPECT_FALSE(Decode({0x90}));
  EXPECT_FALSE(Decode({0xf3, 0x0f, 0xb8, 0xc0}));  // popcnt
}

TEST(DecodeEmulationFailureTest, TruncatedBytesAreRefused) {
  EXPECT_FALSE(Decode({}));
  EXPECT_FALSE(Decode({0x65}));
  EXPECT_FALSE(Decode({0x0f}));
  EXPECT_FALSE(Decode({0x0f, 0xae}));
  EXPECT_FALSE(Decode({0x0f, 0x01}));
  EXPECT_FALSE(Decode({0x0f, 0xae, 0x14}));                    // SIB missing
  EXPECT_FALSE(Decode({0x0f, 0xae, 0x50}));                    // disp8 missing
  EXPECT_FALSE(Decode({0x0f, 0xae, 0x15, 0x10, 0x00, 0x00}));  // disp32 short
  EXPECT_FALSE(Decode({0xc5, 0xf8, 0xae}));
}

TEST(DecodeEmulationFailureTest, MoreThanFifteenBytesIsRefused) {
  auto with_overrides = [](size_t n) {  // n DS overrides, then ldmxcsr [rax]
    std::vector<uint8_t> bytes(n + 3, 0x3e);
    bytes[n] = 0x0f;
    bytes[n + 1] = 0xae;
    bytes[n + 2] = 0x10;
    return bytes;
  };
  EXPECT_FALSE(Decode(with_overrides(13)));
  EXPECT_EQ(Decode(with_overrides(12))->length, 15);
}

TEST(DecodeEmulationFailureTest, VexForms) {
  auto v2 = Decode({0xc5, 0xf8, 0xae, 0x5d, 0xf8});  // vstmxcsr [rbp-8]
  ASSERT_TRUE(v2.has_value());
  EXPECT_TRUE(v2->vex);
  EXPECT_EQ(v2->kind, AssistKind::kStmxcsr);
  EXPECT_EQ(v2->length, 5);
  EXPECT_EQ(v2->memory->base, kRbp);
  auto v3 = Decode({0xc4, 0xc1, 0x78, 0xae, 0x10});  // vldmxcsr [r8] (VEX.B)
  ASSERT_TRUE(v3.has_value());
  EXPECT_EQ(v3->kind, AssistKind::kLdmxcsr);
  EXPECT_EQ(v3->length, 5);
  EXPECT_EQ(v3->memory->base, kR8);
  EXPECT_FALSE(Decode({0xc5, 0xf9, 0xae, 0x10}));        // pp=01
  EXPECT_FALSE(Decode({0xc5, 0xfc, 0xae, 0x10}));        // L=1
  EXPECT_FALSE(Decode({0xc5, 0xf0, 0xae, 0x10}));        // vvvv used
  EXPECT_FALSE(Decode({0x66, 0xc5, 0xf8, 0xae, 0x10}));  // prefix before VEX
  EXPECT_FALSE(Decode({0xc5, 0x10}, CpuMode::kProtected32));  // LDS
}

// --- Effective addresses ---

struct AddressFixture {
  kvm_regs regs{};
  kvm_sregs sregs{};
};

TEST(OperandLinearAddressTest, SumsBaseScaledIndexAndDisp) {
  AddressFixture f;
  f.regs.rax = 0x1000;
  f.regs.rcx = 0x10;
  f.sregs.ds.base = 0xdead0000;  // ignored in 64-bit mode
  auto a = Decode({0x0f, 0xae, 0x94, 0x88, 0x08, 0x00, 0x00, 0x00});
  auto la = OperandLinearAddress(*a->memory, f.regs, f.sregs, 0, CpuMode::kLong64, 4);
  ASSERT_TRUE(la.ok()) << la.status();
  EXPECT_EQ(*la, 0x1000u + 0x10 * 4 + 8);
}

TEST(OperandLinearAddressTest, RipRelativeCountsFromTheNextInstruction) {
  AddressFixture f;
  auto a = Decode({0x0f, 0xae, 0x15, 0xf0, 0xff, 0xff, 0xff});  // [rip-0x10]
  auto la = OperandLinearAddress(*a->memory, f.regs, f.sregs, 0xffffffff81000007,
                                 CpuMode::kLong64, 4);
  ASSERT_TRUE(la.ok());
  EXPECT_EQ(*la, 0xffffffff80fffff7u);
}

TEST(OperandLinearAddressTest, FsAndGsBasesApplyIn64BitMode) {
  AddressFixture f;
  f.sregs.gs.base = 0xffff888000100000;
  auto a = Decode({0x65, 0x0f, 0xae, 0x1c, 0x25, 0x28, 0, 0, 0});
  EXPECT_EQ(*OperandLinearAddress(*a->memory, f.regs, f.sregs, 0, CpuMode::kLong64, 4),
            0xffff888000100028u);
}

TEST(OperandLinearAddressTest, NonCanonicalAddressIsRefused) {
  AddressFixture f;
  f.regs.rax = 0x0000800000000000;
  auto a = Decode({0x0f, 0xae, 0x10});
  EXPECT_FALSE(OperandLinearAddress(*a->memory, f.regs, f.sregs, 0, CpuMode::kLong64, 4).ok());
  f.regs.rax = 0x00007ffffffffffe;  // the last byte crosses into the hole
  EXPECT_FALSE(OperandLinearAddress(*a->memory, f.regs, f.sregs, 0, CpuMode::kLong64, 4).ok());
  f.sregs.cr4 = 1u << 12;  // LA57: now canonical
  EXPECT_TRUE(OperandLinearAddress(*a->memory, f.regs, f.sregs, 0, CpuMode::kLong64, 4).ok());
}

TEST(OperandLinearAddressTest, AddressSizePrefixTruncatesTo32Bits) {
  AddressFixture f;
  f.regs.rax = 0xffffffff00001000;
  auto a = Decode({0x67, 0x0f, 0xae, 0x10});
  EXPECT_EQ(*OperandLinearAddress(*a->memory, f.regs, f.sregs, 0, CpuMode::kLong64, 4), 0x1000u);
}

TEST(OperandLinearAddressTest, ThirtyTwoBitModeAddsSegmentBaseAndChecksLimit) {
  AddressFixture f;
  f.regs.rbp = 0x2000;
  f.sregs.ss = {.base = 0x100000, .limit = 0x2003, .type = 3, .present = 1, .db = 1};
  auto a = Decode({0x0f, 0xae, 0x5d, 0x00}, CpuMode::kProtected32);  // [ebp+0] -> SS
  EXPECT_EQ(*OperandLinearAddress(*a->memory, f.regs, f.sregs, 0, CpuMode::kProtected32, 4),
            0x102000u);
  f.regs.rbp = 0x2001;  // the last byte passes the limit
  auto over = OperandLinearAddress(*a->memory, f.regs, f.sregs, 0, CpuMode::kProtected32, 4);
  EXPECT_FALSE(over.ok());
  EXPECT_THAT(over.status().message(), HasSubstr("limit"));
}

TEST(DecodeEmulationFailureTest, LslRegisterFormsAndOperandSizes) {
  // lsl rax, rax: Linux's GET_PERCPU_BASE in paranoid entry.
  std::optional<Assist> a = Decode({0x48, 0x0f, 0x03, 0xc0});
  ASSERT_TRUE(a);
  EXPECT_EQ(a->kind, AssistKind::kLsl);
  EXPECT_EQ(a->length, 4);
  EXPECT_EQ(a->dest_reg, 0);
  EXPECT_EQ(a->src_reg, 0);
  EXPECT_EQ(a->operand_bits, 64);
  // lsl r9d, ecx: REX.R extends the destination.
  a = Decode({0x44, 0x0f, 0x03, 0xc9});
  ASSERT_TRUE(a);
  EXPECT_EQ(a->dest_reg, 9);
  EXPECT_EQ(a->src_reg, 1);
  EXPECT_EQ(a->operand_bits, 32);
  a = Decode({0x66, 0x0f, 0x03, 0xc3});  // lsl ax, bx
  ASSERT_TRUE(a);
  EXPECT_EQ(a->operand_bits, 16);
  EXPECT_EQ(a->length, 4);
  EXPECT_EQ(a->src_reg, 3);
  EXPECT_FALSE(Decode({0x0f, 0x03, 0x00}));  // memory form: not needed, refused
  EXPECT_FALSE(Decode({0xf3, 0x0f, 0x03, 0xc0}));
  EXPECT_FALSE(Decode({0x0f, 0x03, 0xc0}, CpuMode::kReal));
}

}  // namespace
}  // namespace vmm::x86_64
