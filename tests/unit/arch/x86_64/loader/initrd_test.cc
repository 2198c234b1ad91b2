#include "arch/x86_64/loader/initrd.h"

#include "absl/status/status.h"
#include "arch/x86_64/layout.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/arch/x86_64/loader/test_images.h"

namespace vmm::x86_64 {
namespace {

using ::testing::HasSubstr;
using namespace ::vmm::x86_64::testing;

LoadedKernel ElfKernel(uint64_t end) {
  LoadedKernel kernel;
  kernel.start = GuestAddress(2 * kMiB);
  kernel.end = GuestAddress(end);
  return kernel;
}

LoadedKernel BzImageKernel(uint64_t end, uint32_t initrd_addr_max, uint16_t version = 0x020f) {
  LoadedKernel kernel = ElfKernel(end);
  kernel.kind = KernelKind::kBzImage;
  setup_header hdr = {};
  hdr.version = version;
  hdr.initrd_addr_max = initrd_addr_max;
  kernel.bzimage_header = hdr;
  return kernel;
}

TEST(InitrdTest, PlacedAtTheHighestPageThatFitsInRam) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  auto addr = PlaceInitrd(mem, ElfKernel(4 * kMiB), 0x1800);
  ASSERT_TRUE(addr.ok()) << addr.status();
  EXPECT_EQ(*addr, GuestAddress(64 * kMiB - 0x2000)) << "page-aligned start, ends below RAM end";
}

TEST(InitrdTest, StaysBelowInitrdAddrMax) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  auto addr = PlaceInitrd(mem, BzImageKernel(4 * kMiB, 0x01ff'ffff), 0x3000);
  ASSERT_TRUE(addr.ok()) << addr.status();
  EXPECT_EQ(*addr, GuestAddress(32 * kMiB - 0x3000));
}

TEST(InitrdTest, OldProtocolUsesTheDefaultLimit) {
  LoadedKernel kernel = BzImageKernel(4 * kMiB, 0x7fff'ffff, 0x0202);
  EXPECT_EQ(InitrdEndLimit(kernel), kDefaultInitrdAddrMax + 1);
}

TEST(InitrdTest, LargeGuestKeepsTheInitrdBelowTheMmioHole) {
  GuestMemory mem = MakeGuestMemory(6 * 1024 * kMiB);
  auto addr = PlaceInitrd(mem, BzImageKernel(32 * kMiB, 0xffff'ffff), kMiB);
  ASSERT_TRUE(addr.ok()) << addr.status();
  EXPECT_EQ(*addr, GuestAddress(kMmioHoleStart - kMiB));
}

TEST(InitrdTest, ElfKernelsUseRamBelowTheHole) {
  EXPECT_EQ(InitrdEndLimit(ElfKernel(4 * kMiB)), kMmioHoleStart);
}

TEST(InitrdTest, ExactFitAboveTheKernelIsAccepted) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  auto addr = PlaceInitrd(mem, ElfKernel(16 * kMiB), 48 * kMiB);
  ASSERT_TRUE(addr.ok()) << addr.status();
  EXPECT_EQ(*addr, GuestAddress(16 * kMiB));
}

TEST(InitrdTest, InitrdThatWouldOverlapTheKernelDoesNotFit) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  auto addr = PlaceInitrd(mem, ElfKernel(16 * kMiB + 1), 48 * kMiB);
  ASSERT_FALSE(addr.ok());
  EXPECT_EQ(addr.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(addr.status().message(), HasSubstr("do not fit in guest RAM"));
}

TEST(InitrdTest, InitrdLargerThanRamDoesNotFit) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  EXPECT_FALSE(PlaceInitrd(mem, ElfKernel(4 * kMiB), ~uint64_t{0}).ok());
}

TEST(InitrdTest, InitrdAddrMaxBelowKernelEndDoesNotFit) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  EXPECT_FALSE(PlaceInitrd(mem, BzImageKernel(40 * kMiB, 0x01ff'ffff), 0x1000).ok());
}

TEST(InitrdTest, EmptyInitrdIsRejected) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  EXPECT_FALSE(PlaceInitrd(mem, ElfKernel(4 * kMiB), 0).ok());
}

TEST(InitrdTest, LoadInitrdCopiesTheFileToItsPlace) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  std::vector<uint8_t> bytes(5000);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = KernelByte(i);
  TempFile file("initrd.img", bytes);
  const std::string& path = file.path();
  auto initrd = LoadInitrd(mem, ElfKernel(4 * kMiB), path);
  ASSERT_TRUE(initrd.ok()) << initrd.status();
  EXPECT_EQ(initrd->size, 5000u);
  EXPECT_EQ(initrd->addr, GuestAddress(64 * kMiB - 0x2000));
  std::vector<uint8_t> back(5000);
  ASSERT_TRUE(mem.ReadBytes(initrd->addr, absl::MakeSpan(back)).ok());
  EXPECT_EQ(back, bytes);
}

TEST(InitrdTest, MissingInitrdIsNotFound) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  auto initrd = LoadInitrd(mem, ElfKernel(4 * kMiB), "/nonexistent/initrd.img");
  ASSERT_FALSE(initrd.ok());
  EXPECT_EQ(initrd.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(initrd.status().message(), HasSubstr("/nonexistent/initrd.img"));
}

TEST(InitrdTest, InitrdThatDoesNotFitNamesTheFile) {
  GuestMemory mem = MakeGuestMemory(8 * kMiB);
  TempFile file("big-initrd.img", std::vector<uint8_t>(6 * kMiB));
  const std::string& path = file.path();
  auto initrd = LoadInitrd(mem, ElfKernel(4 * kMiB), path);
  ASSERT_FALSE(initrd.ok());
  EXPECT_EQ(initrd.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(initrd.status().message(), HasSubstr(path));
  EXPECT_THAT(initrd.status().message(), HasSubstr("do not fit"));
}

TEST(InitrdTest, DirectoryAsInitrdIsInvalidArgument) {
  GuestMemory mem = MakeGuestMemory(8 * kMiB);
  auto initrd = LoadInitrd(mem, ElfKernel(4 * kMiB), ::testing::TempDir());
  ASSERT_FALSE(initrd.ok());
  EXPECT_EQ(initrd.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(initrd.status().message(), HasSubstr("not a regular file"));
}

}  // namespace
}  // namespace vmm::x86_64
