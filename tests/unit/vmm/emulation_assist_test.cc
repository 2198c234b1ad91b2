#include "vmm/emulation_assist.h"

#include <cstdint>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_assist_vcpu.h"
#include "tests/fakes/test_guest_memory.h"

namespace vmm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::FakeAssistVcpu;
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

// --- Applying ---

class EmulationAssistsTest : public ::testing::Test {
 protected:
  absl::Status Apply(std::vector<uint8_t> bytes) { return assists_.Apply(vcpu_, bytes); }

  GuestMemory memory_ = TestGuestMemory(0x10000);
  std::vector<std::string> notices_;
  EmulationAssists assists_{&memory_, [this](absl::string_view s) { notices_.emplace_back(s); }};
  FakeAssistVcpu vcpu_;
};

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
}  // namespace vmm
