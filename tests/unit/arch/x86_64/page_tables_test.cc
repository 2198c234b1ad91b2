#include "arch/x86_64/page_tables.h"

#include <cstdint>
#include <optional>
#include <vector>

#include "gtest/gtest.h"
#include "tests/fakes/test_guest_memory.h"

namespace vmm::x86_64 {
namespace {

constexpr uint64_t kMiB = 1 << 20;

GuestMemory LowMemory() { return vmm::testing::TestGuestMemory(2 * kMiB); }

// Walks the tables like the MMU does for a 4-level, 2 MiB-page mapping;
// nullopt when a level is not present or the leaf is not a large page.
std::optional<uint64_t> Translate(const GuestMemory& mem, uint64_t cr3, uint64_t linear) {
  const uint64_t indices[3] = {(linear >> 39) & 0x1ff, (linear >> 30) & 0x1ff,
                               (linear >> 21) & 0x1ff};
  uint64_t table = cr3 & kPteAddressMask;
  for (int level = 0; level < 3; ++level) {
    auto entry = mem.Read<uint64_t>(GuestAddress(table + indices[level] * 8));
    if (!entry.ok()) return std::nullopt;
    if (!(*entry & kPtePresent) || !(*entry & kPteWritable)) return std::nullopt;
    const bool large = (*entry & kPteLargePage) != 0;
    if (level < 2 && large) return std::nullopt;  // no 1 GiB pages expected
    if (level == 2) {
      if (!large) return std::nullopt;
      return (*entry & kPteAddressMask & ~((2 * kMiB) - 1)) | (linear & (2 * kMiB - 1));
    }
    table = *entry & kPteAddressMask;
  }
  return std::nullopt;
}

TEST(PageTablesTest, Cr3PointsAtThePml4) {
  GuestMemory mem = LowMemory();
  auto cr3 = WriteIdentityPageTables(mem);
  ASSERT_TRUE(cr3.ok()) << cr3.status();
  EXPECT_EQ(*cr3, kPageTablesStart);
}

TEST(PageTablesTest, EntriesChainPml4ToPdptToPdWithLargePages) {
  GuestMemory mem = LowMemory();
  ASSERT_TRUE(WriteIdentityPageTables(mem).ok());
  EXPECT_EQ(*mem.Read<uint64_t>(GuestAddress(kPml4Start)), kPdptStart | 0x3);
  EXPECT_EQ(*mem.Read<uint64_t>(GuestAddress(kPdptStart)), kPdStart | 0x3);
  EXPECT_EQ(*mem.Read<uint64_t>(GuestAddress(kPdptStart + 8)), (kPdStart + kPageSize) | 0x3);
  EXPECT_EQ(*mem.Read<uint64_t>(GuestAddress(kPdStart)), 0x83u) << "2 MiB page at 0, P|RW|PS";
  EXPECT_EQ(*mem.Read<uint64_t>(GuestAddress(kPdStart + 8)), (2 * kMiB) | 0x83);
}

TEST(PageTablesTest, FirstFourGibAreIdentityMapped) {
  GuestMemory mem = LowMemory();
  auto cr3 = WriteIdentityPageTables(mem);
  ASSERT_TRUE(cr3.ok());
  EXPECT_EQ(kIdentityMapSize, 4ull << 30);
  for (uint64_t address : {0x0ull, 0x7000ull, 0x1234567ull, 0x4000'0000ull, 0xbfff'ffffull,
                           0xfee0'0000ull, 0xffff'ffffull}) {
    EXPECT_EQ(Translate(mem, *cr3, address), address) << std::hex << address;
  }
}

TEST(PageTablesTest, NothingAboveTheIdentityMapIsMapped) {
  GuestMemory mem = LowMemory();
  auto cr3 = WriteIdentityPageTables(mem);
  ASSERT_TRUE(cr3.ok());
  EXPECT_EQ(Translate(mem, *cr3, kIdentityMapSize), std::nullopt);
  EXPECT_EQ(Translate(mem, *cr3, 1ull << 39), std::nullopt) << "second PML4 slot";
}

TEST(PageTablesTest, StaleEntriesInTheTablePagesAreCleared) {
  GuestMemory mem = LowMemory();
  ASSERT_TRUE(mem.Write<uint64_t>(GuestAddress(kPml4Start + 8), 0xdead'b003).ok());
  ASSERT_TRUE(mem.Write<uint64_t>(GuestAddress(kPdptStart + 8 * 100), 0xbeef'0003).ok());
  ASSERT_TRUE(WriteIdentityPageTables(mem).ok());
  EXPECT_EQ(*mem.Read<uint64_t>(GuestAddress(kPml4Start + 8)), 0u);
  EXPECT_EQ(*mem.Read<uint64_t>(GuestAddress(kPdptStart + 8 * 100)), 0u);
}

TEST(PageTablesTest, FailsWhenTheTablesWouldFallOutsideRam) {
  RamRange ram[] = {{GuestAddress(kMiB), kMiB}};
  auto mem = GuestMemory::Create(ram);
  ASSERT_TRUE(mem.ok());
  auto cr3 = WriteIdentityPageTables(*mem);
  EXPECT_FALSE(cr3.ok());
  EXPECT_NE(cr3.status().message().find("page tables"), absl::string_view::npos) << cr3.status();
}

}  // namespace
}  // namespace vmm::x86_64
