#include "base/guest_memory.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace vmm {
namespace {

constexpr uint64_t kMiB = 1 << 20;

TEST(GuestMemoryTest, ReadBackWhatWasWrittenInEachRegion) {
  RamRange ranges[] = {{GuestAddress(0), 2 * kMiB}, {GuestAddress(16 * kMiB), kMiB}};
  auto mem = GuestMemory::Create(ranges);
  ASSERT_TRUE(mem.ok()) << mem.status();
  ASSERT_TRUE(mem->Write<uint32_t>(GuestAddress(0x1000), 0xdeadbeef).ok());
  ASSERT_TRUE(mem->Write<uint64_t>(GuestAddress(16 * kMiB + 8), 42).ok());
  EXPECT_EQ(*mem->Read<uint32_t>(GuestAddress(0x1000)), 0xdeadbeefu);
  EXPECT_EQ(*mem->Read<uint64_t>(GuestAddress(16 * kMiB + 8)), 42u);
  EXPECT_EQ(mem->total_size(), 3 * kMiB);
  EXPECT_EQ(mem->end(), GuestAddress(17 * kMiB));
}

TEST(GuestMemoryTest, AccessOutsideRamIsRejected) {
  RamRange ranges[] = {{GuestAddress(0), kMiB}};
  auto mem = GuestMemory::Create(ranges);
  ASSERT_TRUE(mem.ok());
  EXPECT_FALSE(mem->Read<uint32_t>(GuestAddress(kMiB)).ok());
  EXPECT_FALSE(mem->Read<uint32_t>(GuestAddress(kMiB - 2)).ok()) << "straddles the end";
  EXPECT_FALSE(mem->Slice(GuestAddress(~0ull - 4), 16).ok()) << "wraps 64 bits";
  EXPECT_FALSE(mem->Slice(GuestAddress(16), ~0ull).ok());
  EXPECT_TRUE(mem->Slice(GuestAddress(kMiB), 0).ok()) << "empty range at the end";
}

TEST(GuestMemoryTest, RangeSpanningTwoRegionsIsRejected) {
  RamRange ranges[] = {{GuestAddress(0), kMiB}, {GuestAddress(kMiB), kMiB}};
  auto mem = GuestMemory::Create(ranges);
  ASSERT_TRUE(mem.ok());
  EXPECT_FALSE(mem->Slice(GuestAddress(kMiB - 4), 8).ok());
  EXPECT_TRUE(mem->Slice(GuestAddress(kMiB - 4), 4).ok());
}

TEST(GuestMemoryTest, BadRangesAreRefused) {
  RamRange unaligned[] = {{GuestAddress(0x10), kMiB}};
  EXPECT_FALSE(GuestMemory::Create(unaligned).ok());
  RamRange empty[] = {{GuestAddress(0), 0}};
  EXPECT_FALSE(GuestMemory::Create(empty).ok());
  RamRange overlap[] = {{GuestAddress(0), 2 * kMiB}, {GuestAddress(kMiB), kMiB}};
  EXPECT_FALSE(GuestMemory::Create(overlap).ok());
  EXPECT_FALSE(GuestMemory::Create({}).ok());
}

TEST(GuestMemoryTest, LargeGuestIsNotTouchedUpFront) {
  // 64 GiB of MAP_NORESERVE costs no resident memory until used.
  RamRange ranges[] = {{GuestAddress(0), 64ull << 30}};
  auto mem = GuestMemory::Create(ranges);
  ASSERT_TRUE(mem.ok()) << mem.status();
  EXPECT_EQ(mem->total_size(), 64ull << 30);
  EXPECT_TRUE(mem->Write<uint8_t>(GuestAddress((64ull << 30) - 1), 1).ok());
}

TEST(GuestMemoryTest, MemfdBackedMemorySharesOneFd) {
  RamRange ranges[] = {{GuestAddress(0), kMiB}, {GuestAddress(4 * kMiB), kMiB}};
  auto mem = GuestMemory::Create(ranges, {.memfd = true});
  ASSERT_TRUE(mem.ok()) << mem.status();
  ASSERT_EQ(mem->regions().size(), 2u);
  EXPECT_GE(mem->regions()[0].fd, 0);
  EXPECT_EQ(mem->regions()[0].fd, mem->regions()[1].fd);
  EXPECT_EQ(mem->regions()[1].fd_offset, kMiB);
  ASSERT_TRUE(mem->Write<uint16_t>(GuestAddress(4 * kMiB), 0x55aa).ok());
  EXPECT_EQ(*mem->Read<uint16_t>(GuestAddress(4 * kMiB)), 0x55aa);
}

}  // namespace
}  // namespace vmm
