#include "firmware/e820.h"

#include <vector>

#include "arch/x86_64/layout.h"
#include "arch/x86_64/loader/ram_ranges.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vmm::x86_64 {
// Readable failure output (found by ADL).
void PrintTo(const E820Entry& e, std::ostream* os) {
  *os << std::hex << "{0x" << e.addr.value() << "+0x" << e.size << " type "
      << static_cast<uint32_t>(e.type) << "}";
}
}  // namespace vmm::x86_64

namespace vmm::firmware {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using x86_64::E820Entry;
using x86_64::E820Type;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kGiB = 1ull << 30;

E820Entry Ram(uint64_t addr, uint64_t size) { return {GuestAddress(addr), size, E820Type::kRam}; }
E820Entry Reserved(uint64_t addr, uint64_t size) {
  return {GuestAddress(addr), size, E820Type::kReserved};
}

std::vector<E820Entry> MapFor(uint64_t memory, std::vector<E820Entry> extra = {}) {
  auto ranges = x86_64::RamRangesFor(memory);
  EXPECT_TRUE(ranges.ok()) << ranges.status();
  auto map = BuildE820Map(*ranges, extra);
  EXPECT_TRUE(map.ok()) << map.status();
  return map.value_or(std::vector<E820Entry>{});
}

TEST(E820Test, SmallGuestHasLowRamBiosHoleAndHighRam) {
  EXPECT_THAT(MapFor(64 * kMiB), ElementsAre(Ram(0, 0x9fc00), Reserved(0x9fc00, 0x60400),
                                             Ram(kMiB, 63 * kMiB)));
}

TEST(E820Test, ExactlyThreeGiBGuestEndsAtTheMmioHole) {
  EXPECT_THAT(MapFor(3 * kGiB), ElementsAre(Ram(0, 0x9fc00), Reserved(0x9fc00, 0x60400),
                                            Ram(kMiB, x86_64::kMmioHoleStart - kMiB)));
}

TEST(E820Test, GuestAbove4GiBGetsRamAboveTheHole) {
  EXPECT_THAT(MapFor(6 * kGiB),
              ElementsAre(Ram(0, 0x9fc00), Reserved(0x9fc00, 0x60400),
                          Ram(kMiB, 3 * kGiB - kMiB), Ram(4 * kGiB, 3 * kGiB)));
}

TEST(E820Test, ExtraReservedRangesAreSortedIn) {
  EXPECT_THAT(MapFor(5 * kGiB, {Reserved(x86_64::kEcamStart, x86_64::kEcamSize),
                                Reserved(x86_64::kIoapicStart, x86_64::kIoapicSize)}),
              ElementsAre(Ram(0, 0x9fc00), Reserved(0x9fc00, 0x60400),
                          Ram(kMiB, 3 * kGiB - kMiB),
                          Reserved(x86_64::kEcamStart, x86_64::kEcamSize),
                          Reserved(x86_64::kIoapicStart, x86_64::kIoapicSize),
                          Ram(4 * kGiB, 2 * kGiB)));
}

TEST(E820Test, EmptyExtraRangesAreDropped) {
  EXPECT_EQ(MapFor(64 * kMiB, {Reserved(0xe000'0000, 0)}).size(), 3u);
}

TEST(E820Test, ExtraRangeOverlappingRamIsRejected) {
  auto ranges = x86_64::RamRangesFor(64 * kMiB);
  ASSERT_TRUE(ranges.ok());
  std::vector<E820Entry> extra = {Reserved(32 * kMiB, kMiB)};
  auto map = BuildE820Map(*ranges, extra);
  ASSERT_FALSE(map.ok());
  EXPECT_EQ(map.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(map.status().message(), HasSubstr("overlaps"));
}

TEST(E820Test, ExtraRangeThatWrapsIsRejected) {
  auto ranges = x86_64::RamRangesFor(64 * kMiB);
  ASSERT_TRUE(ranges.ok());
  std::vector<E820Entry> extra = {Reserved(~uint64_t{0} - 10, 100)};
  EXPECT_FALSE(BuildE820Map(*ranges, extra).ok());
}

TEST(E820Test, SmallestGuestStillHasRamAboveOneMiB) {
  EXPECT_THAT(MapFor(x86_64::kMinMemory),
              ElementsAre(Ram(0, 0x9fc00), Reserved(0x9fc00, 0x60400),
                          Ram(kMiB, x86_64::kMinMemory - kMiB)));
}

}  // namespace
}  // namespace vmm::firmware
