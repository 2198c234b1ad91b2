#include "arch/x86_64/loader/ram_ranges.h"

#include "arch/x86_64/layout.h"
#include "gtest/gtest.h"

namespace vmm::x86_64 {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kGiB = 1ull << 30;

TEST(RamRangesTest, SmallGuestIsOneRangeFromZero) {
  auto ranges = RamRangesFor(64 * kMiB);
  ASSERT_TRUE(ranges.ok()) << ranges.status();
  ASSERT_EQ(ranges->size(), 1u);
  EXPECT_EQ((*ranges)[0].start, GuestAddress(0));
  EXPECT_EQ((*ranges)[0].size, 64 * kMiB);
}

TEST(RamRangesTest, ExactlyThreeGiBEndsAtTheMmioHole) {
  auto ranges = RamRangesFor(3 * kGiB);
  ASSERT_TRUE(ranges.ok()) << ranges.status();
  ASSERT_EQ(ranges->size(), 1u);
  EXPECT_EQ((*ranges)[0].size, kMmioHoleStart);
}

TEST(RamRangesTest, RamBeyondTheHoleMovesAbove4GiB) {
  auto ranges = RamRangesFor(5 * kGiB);
  ASSERT_TRUE(ranges.ok()) << ranges.status();
  ASSERT_EQ(ranges->size(), 2u);
  EXPECT_EQ((*ranges)[0].size, 3 * kGiB);
  EXPECT_EQ((*ranges)[1].start, GuestAddress(4 * kGiB));
  EXPECT_EQ((*ranges)[1].size, 2 * kGiB);
}

TEST(RamRangesTest, TooSmallOrUnalignedOrHugeIsRejected) {
  EXPECT_FALSE(RamRangesFor(kMinMemory - kPageSize).ok());
  EXPECT_FALSE(RamRangesFor(64 * kMiB + 1).ok());
  EXPECT_FALSE(RamRangesFor(~uint64_t{0} & ~(kPageSize - 1)).ok());
}

}  // namespace
}  // namespace vmm::x86_64
