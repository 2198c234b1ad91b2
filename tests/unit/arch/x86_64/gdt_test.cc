#include "arch/x86_64/gdt.h"

#include <cstdint>

#include "arch/x86_64/layout.h"
#include "gtest/gtest.h"

namespace vmm::x86_64 {
namespace {

constexpr uint64_t kMiB = 1 << 20;

TEST(GdtTest, Code64SegmentIsLongModeExecuteRead) {
  kvm_segment cs = BootSegment(kBootCode64Selector);
  EXPECT_EQ(cs.selector, 0x10);
  EXPECT_EQ(cs.l, 1);
  EXPECT_EQ(cs.db, 0) << "L=1 requires D=0";
  EXPECT_EQ(cs.type, 0xb) << "execute/read, accessed";
  EXPECT_EQ(cs.s, 1);
  EXPECT_EQ(cs.present, 1);
  EXPECT_EQ(cs.dpl, 0);
  EXPECT_EQ(cs.g, 1);
  EXPECT_EQ(cs.base, 0u);
  EXPECT_EQ(cs.limit, 0xffffffffu);
  EXPECT_EQ(cs.unusable, 0);
}

TEST(GdtTest, Code32SegmentIsFlat32BitExecuteRead) {
  kvm_segment cs = BootSegment(kBootCode32Selector);
  EXPECT_EQ(cs.selector, 0x08);
  EXPECT_EQ(cs.l, 0);
  EXPECT_EQ(cs.db, 1);
  EXPECT_EQ(cs.type, 0xb);
  EXPECT_EQ(cs.s, 1);
  EXPECT_EQ(cs.present, 1);
  EXPECT_EQ(cs.base, 0u);
  EXPECT_EQ(cs.limit, 0xffffffffu);
}

TEST(GdtTest, DataSegmentIsFlatReadWrite) {
  kvm_segment ds = BootSegment(kBootDataSelector);
  EXPECT_EQ(ds.selector, 0x18);
  EXPECT_EQ(ds.type, 0x3) << "read/write, accessed";
  EXPECT_EQ(ds.s, 1);
  EXPECT_EQ(ds.present, 1);
  EXPECT_EQ(ds.db, 1);
  EXPECT_EQ(ds.l, 0);
  EXPECT_EQ(ds.g, 1);
  EXPECT_EQ(ds.base, 0u);
  EXPECT_EQ(ds.limit, 0xffffffffu);
}

TEST(GdtTest, TssIsBusyTssWithBaseZeroAndLimit0x67) {
  kvm_segment tr = BootSegment(kBootTssSelector);
  EXPECT_EQ(tr.selector, 0x20);
  EXPECT_EQ(tr.type, 0xb) << "busy TSS (32-bit in protected mode, 64-bit in long mode)";
  EXPECT_EQ(tr.s, 0) << "system descriptor";
  EXPECT_EQ(tr.present, 1);
  EXPECT_EQ(tr.g, 0);
  EXPECT_EQ(tr.base, 0u);
  EXPECT_EQ(tr.limit, 0x67u);
}

TEST(GdtTest, NullAndOutOfTableSelectorsAreUnusable) {
  EXPECT_EQ(BootSegment(0).unusable, 1);
  EXPECT_EQ(BootSegment(0).present, 0);
  EXPECT_EQ(BootSegment(0x80).unusable, 1);
}

TEST(GdtTest, UpperHalfOfTheLongModeTssDescriptorIsZero) {
  EXPECT_EQ(BootGdt()[5], 0u) << "base 63:32 of the TSS and the reserved dword";
}

TEST(GdtTest, EntryRoundTripsBaseLimitAndGranularity) {
  kvm_segment byte_granular = SegmentFromGdtEntry(GdtEntry(0x0093, 0x12345678, 0xabcde), 0x18);
  EXPECT_EQ(byte_granular.base, 0x12345678u);
  EXPECT_EQ(byte_granular.limit, 0xabcdeu);
  EXPECT_EQ(byte_granular.g, 0);

  kvm_segment page_granular = SegmentFromGdtEntry(GdtEntry(0x8093, 0xff000000, 0x00001), 0x18);
  EXPECT_EQ(page_granular.base, 0xff000000u);
  EXPECT_EQ(page_granular.limit, 0x1fffu) << "2 pages, last byte included";
  EXPECT_EQ(page_granular.g, 1);

  kvm_segment dpl3 = SegmentFromGdtEntry(GdtEntry(0x10f3, 0, 0), 0x1b);
  EXPECT_EQ(dpl3.dpl, 3);
  EXPECT_EQ(dpl3.avl, 1);
}

TEST(GdtTest, WriteBootGdtPlacesTheTableAtBootGdtStart) {
  RamRange ram[] = {{GuestAddress(0), 2 * kMiB}};
  auto mem = GuestMemory::Create(ram);
  ASSERT_TRUE(mem.ok()) << mem.status();
  ASSERT_TRUE(WriteBootGdt(*mem).ok());
  const auto expected = BootGdt();
  for (size_t i = 0; i < kBootGdtEntries; ++i) {
    auto entry = mem->Read<uint64_t>(GuestAddress(kBootGdtStart + 8 * i));
    ASSERT_TRUE(entry.ok());
    EXPECT_EQ(*entry, expected[i]) << "entry " << i;
  }
  EXPECT_EQ(*mem->Read<uint64_t>(GuestAddress(kBootGdtStart + 0x10)), 0x00af9b000000ffffu)
      << "the canonical 64-bit flat code descriptor";
  EXPECT_EQ(kBootGdtLimit, 6 * 8 - 1);
}

TEST(GdtTest, WriteBootGdtFailsWhenLowMemoryIsNotRam) {
  RamRange ram[] = {{GuestAddress(kMiB), kMiB}};
  auto mem = GuestMemory::Create(ram);
  ASSERT_TRUE(mem.ok());
  absl::Status status = WriteBootGdt(*mem);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("boot GDT"), absl::string_view::npos) << status;
}

}  // namespace
}  // namespace vmm::x86_64
