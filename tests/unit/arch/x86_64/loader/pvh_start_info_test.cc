#include "arch/x86_64/loader/pvh_start_info.h"

#include <vector>

#include "arch/x86_64/layout.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/arch/x86_64/loader/test_images.h"

namespace vmm::x86_64 {
namespace {

using ::testing::HasSubstr;
using namespace ::vmm::x86_64::testing;

BootInfo TypicalInfo() {
  BootInfo info = TypicalBootInfo();
  info.acpi_rsdp_addr = 0xe0000;
  return info;
}

TEST(PvhStartInfoTest, HeaderHasMagicVersionCmdlineAndRsdp) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  auto addr = WritePvhStartInfo(mem, TypicalInfo());
  ASSERT_TRUE(addr.ok()) << addr.status();
  EXPECT_EQ(*addr, GuestAddress(kPvhInfoStart)) << "the value for EBX";
  auto si = mem.Read<HvmStartInfo>(GuestAddress(kPvhInfoStart));
  ASSERT_TRUE(si.ok());
  EXPECT_EQ(si->magic, 0x336ec578u);
  EXPECT_EQ(si->version, 1u);
  EXPECT_EQ(si->cmdline_paddr, kCmdlineStart);
  EXPECT_EQ(si->rsdp_paddr, 0xe0000u);
}

TEST(PvhStartInfoTest, InitrdIsModuleZero) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  ASSERT_TRUE(WritePvhStartInfo(mem, TypicalInfo()).ok());
  auto si = mem.Read<HvmStartInfo>(GuestAddress(kPvhInfoStart));
  ASSERT_TRUE(si.ok());
  EXPECT_EQ(si->nr_modules, 1u);
  EXPECT_EQ(si->modlist_paddr, kPvhModlistStart);
  auto module = mem.Read<HvmModlistEntry>(GuestAddress(kPvhModlistStart));
  ASSERT_TRUE(module.ok());
  EXPECT_EQ(module->paddr, 60 * kMiB);
  EXPECT_EQ(module->size, 0x1234u);
}

TEST(PvhStartInfoTest, NoInitrdMeansNoModules) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  BootInfo info = TypicalInfo();
  info.initrd.reset();
  ASSERT_TRUE(WritePvhStartInfo(mem, info).ok());
  auto si = mem.Read<HvmStartInfo>(GuestAddress(kPvhInfoStart));
  ASSERT_TRUE(si.ok());
  EXPECT_EQ(si->nr_modules, 0u);
  EXPECT_EQ(si->modlist_paddr, 0u);
}

TEST(PvhStartInfoTest, MemoryMapUsesE820Types) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  ASSERT_TRUE(WritePvhStartInfo(mem, TypicalInfo()).ok());
  auto si = mem.Read<HvmStartInfo>(GuestAddress(kPvhInfoStart));
  ASSERT_TRUE(si.ok());
  EXPECT_EQ(si->memmap_paddr, kPvhMemmapStart);
  ASSERT_EQ(si->memmap_entries, 3u);
  for (size_t i = 0; i < kTypicalE820Map.size(); ++i) {
    auto e = mem.Read<HvmMemmapTableEntry>(
        GuestAddress(kPvhMemmapStart + i * sizeof(HvmMemmapTableEntry)));
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(e->addr, kTypicalE820Map[i].addr.value()) << i;
    EXPECT_EQ(e->size, kTypicalE820Map[i].size) << i;
    EXPECT_EQ(e->type, i == 1 ? 2u : 1u) << i;
  }
}

TEST(PvhStartInfoTest, TooManyMemoryMapEntriesAreRejected) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  std::vector<E820Entry> map(kPvhMemmapMaxEntries + 1,
                             E820Entry{GuestAddress(0), 0x1000, E820Type::kRam});
  BootInfo info = TypicalInfo();
  info.e820 = map;
  auto addr = WritePvhStartInfo(mem, info);
  ASSERT_FALSE(addr.ok());
  EXPECT_THAT(addr.status().message(), HasSubstr("at most 128"));
}

}  // namespace
}  // namespace vmm::x86_64
