#include "arch/x86_64/loader/boot_params.h"

#include <vector>

#include "arch/x86_64/layout.h"
#include "arch/x86_64/loader/bzimage.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/arch/x86_64/loader/test_images.h"

namespace vmm::x86_64 {
namespace {

using ::testing::HasSubstr;
using namespace ::vmm::x86_64::testing;

BootInfo TypicalInfo() { return TypicalBootInfo(); }

LoadedKernel LoadedBzImage(GuestMemory& mem) {
  auto kernel = LoadBzImage(mem, MakeBzImage());
  EXPECT_TRUE(kernel.ok()) << kernel.status();
  return *kernel;
}

TEST(BootParamsTest, BzImageSetupHeaderIsCopied) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  auto bp = BuildBootParams(LoadedBzImage(mem), TypicalInfo());
  ASSERT_TRUE(bp.ok()) << bp.status();
  EXPECT_EQ(bp->hdr.header, kHeaderMagic);
  EXPECT_EQ(bp->hdr.boot_flag, kBootFlag);
  EXPECT_EQ(bp->hdr.version, 0x020f);
  EXPECT_EQ(bp->hdr.setup_sects, 4);
  EXPECT_EQ(bp->hdr.init_size, 4 * kMiB);
  EXPECT_EQ(bp->hdr.cmdline_size, 2047u) << "the kernel's own limit is kept";
  EXPECT_EQ(bp->hdr.code32_start, 16 * kMiB);
}

TEST(BootParamsTest, LoaderTypeAndLoadedHighAreSet) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  auto bp = BuildBootParams(LoadedBzImage(mem), TypicalInfo());
  ASSERT_TRUE(bp.ok()) << bp.status();
  EXPECT_EQ(bp->hdr.type_of_loader, 0xff);
  EXPECT_TRUE(bp->hdr.loadflags & LOADED_HIGH);
  EXPECT_EQ(bp->sentinel, 0) << "a clean zero page, not the file's bytes";
}

TEST(BootParamsTest, CmdlinePointerIsSet) {
  auto bp = BuildBootParams(LoadedKernel{}, TypicalInfo());
  ASSERT_TRUE(bp.ok()) << bp.status();
  EXPECT_EQ(bp->hdr.cmd_line_ptr, kCmdlineStart);
  EXPECT_EQ(bp->ext_cmd_line_ptr, 0u);
}

TEST(BootParamsTest, InitrdFieldsAreSet) {
  auto bp = BuildBootParams(LoadedKernel{}, TypicalInfo());
  ASSERT_TRUE(bp.ok()) << bp.status();
  EXPECT_EQ(bp->hdr.ramdisk_image, 60 * kMiB);
  EXPECT_EQ(bp->hdr.ramdisk_size, 0x1234u);
  EXPECT_EQ(bp->ext_ramdisk_image, 0u);
  EXPECT_EQ(bp->ext_ramdisk_size, 0u);
}

TEST(BootParamsTest, InitrdAbove4GiBUsesTheExtFields) {
  BootInfo info = TypicalInfo();
  info.initrd = LoadedInitrd{GuestAddress(0x1'2345'6000), 0x1'0000'0010};
  auto bp = BuildBootParams(LoadedKernel{}, info);
  ASSERT_TRUE(bp.ok()) << bp.status();
  EXPECT_EQ(bp->hdr.ramdisk_image, 0x2345'6000u);
  EXPECT_EQ(bp->ext_ramdisk_image, 1u);
  EXPECT_EQ(bp->hdr.ramdisk_size, 0x10u);
  EXPECT_EQ(bp->ext_ramdisk_size, 1u);
}

TEST(BootParamsTest, NoInitrdLeavesRamdiskFieldsZero) {
  BootInfo info = TypicalInfo();
  info.initrd.reset();
  auto bp = BuildBootParams(LoadedKernel{}, info);
  ASSERT_TRUE(bp.ok()) << bp.status();
  EXPECT_EQ(bp->hdr.ramdisk_image, 0u);
  EXPECT_EQ(bp->hdr.ramdisk_size, 0u);
}

TEST(BootParamsTest, E820TableIsCopied) {
  auto bp = BuildBootParams(LoadedKernel{}, TypicalInfo());
  ASSERT_TRUE(bp.ok()) << bp.status();
  ASSERT_EQ(bp->e820_entries, 3);
  EXPECT_EQ(bp->e820_table[1].addr, 0x9fc00u);
  EXPECT_EQ(bp->e820_table[1].size, 0x60400u);
  EXPECT_EQ(bp->e820_table[1].type, 2u);
  EXPECT_EQ(bp->e820_table[2].addr, kMiB);
  EXPECT_EQ(bp->e820_table[2].size, 63 * kMiB);
  EXPECT_EQ(bp->e820_table[2].type, 1u);
}

TEST(BootParamsTest, TooManyE820EntriesAreRejected) {
  std::vector<E820Entry> map(E820_MAX_ENTRIES_ZEROPAGE + 1,
                             E820Entry{GuestAddress(0), 0x1000, E820Type::kRam});
  BootInfo info = TypicalInfo();
  info.e820 = map;
  auto bp = BuildBootParams(LoadedKernel{}, info);
  ASSERT_FALSE(bp.ok());
  EXPECT_THAT(bp.status().message(), HasSubstr("129 entries"));
}

TEST(BootParamsTest, AcpiRsdpAddressIsPassed) {
  BootInfo info = TypicalInfo();
  info.acpi_rsdp_addr = 0xe0000;
  auto bp = BuildBootParams(LoadedKernel{}, info);
  ASSERT_TRUE(bp.ok()) << bp.status();
  EXPECT_EQ(bp->acpi_rsdp_addr, 0xe0000u);
}

TEST(BootParamsTest, ElfKernelGetsTheHeaderFieldsLinuxChecks) {
  auto bp = BuildBootParams(LoadedKernel{}, TypicalInfo());
  ASSERT_TRUE(bp.ok()) << bp.status();
  EXPECT_EQ(bp->hdr.boot_flag, 0xaa55);
  EXPECT_EQ(bp->hdr.header, 0x53726448u);
  EXPECT_EQ(bp->hdr.version, kElfBootProtocol);
  EXPECT_EQ(bp->hdr.cmdline_size, 13u);
  EXPECT_EQ(bp->hdr.type_of_loader, 0xff);
}

TEST(BootParamsTest, WrittenAtTheZeroPage) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  auto addr = WriteBootParams(mem, LoadedBzImage(mem), TypicalInfo());
  ASSERT_TRUE(addr.ok()) << addr.status();
  EXPECT_EQ(*addr, GuestAddress(kZeroPageStart));
  auto bp = mem.Read<boot_params>(GuestAddress(kZeroPageStart));
  ASSERT_TRUE(bp.ok());
  EXPECT_EQ(bp->hdr.header, kHeaderMagic);
  EXPECT_EQ(bp->hdr.cmd_line_ptr, kCmdlineStart);
  EXPECT_EQ(bp->e820_entries, 3);
  // The fields sit where the kernel looks for them.
  EXPECT_EQ(*mem.Read<uint32_t>(GuestAddress(kZeroPageStart + 0x228)), kCmdlineStart);
  EXPECT_EQ(*mem.Read<uint8_t>(GuestAddress(kZeroPageStart + 0x1e8)), 3);
  EXPECT_EQ(*mem.Read<uint64_t>(GuestAddress(kZeroPageStart + 0x2d0 + 20 + 0)), 0x9fc00u);
}

}  // namespace
}  // namespace vmm::x86_64
