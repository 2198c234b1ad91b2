#include "arch/x86_64/loader/cmdline.h"

#include <string>

#include "arch/x86_64/layout.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/arch/x86_64/loader/test_images.h"

namespace vmm::x86_64 {
namespace {

using ::testing::HasSubstr;
using namespace ::vmm::x86_64::testing;

LoadedKernel BzImageKernel(uint32_t cmdline_size) {
  LoadedKernel kernel;
  kernel.kind = KernelKind::kBzImage;
  setup_header hdr = {};
  hdr.cmdline_size = cmdline_size;
  kernel.bzimage_header = hdr;
  return kernel;
}

TEST(CmdlineTest, WrittenNulTerminatedAtCmdlineStart) {
  GuestMemory mem = MakeGuestMemory(16 * kMiB);
  ASSERT_TRUE(mem.Write<uint8_t>(GuestAddress(kCmdlineStart + 16), 0xff).ok());
  auto cmdline = WriteCmdline(mem, LoadedKernel{}, "console=ttyS0");
  ASSERT_TRUE(cmdline.ok()) << cmdline.status();
  EXPECT_EQ(cmdline->addr, GuestAddress(kCmdlineStart));
  EXPECT_EQ(cmdline->size, 14u);
  char buf[14];
  ASSERT_TRUE(mem.ReadBytes(GuestAddress(kCmdlineStart),
                            absl::MakeSpan(reinterpret_cast<uint8_t*>(buf), sizeof(buf)))
                  .ok());
  EXPECT_EQ(std::string(buf, 13), "console=ttyS0");
  EXPECT_EQ(buf[13], '\0');
}

TEST(CmdlineTest, EmptyCommandLineIsJustTheNul) {
  GuestMemory mem = MakeGuestMemory(16 * kMiB);
  ASSERT_TRUE(mem.Write<uint8_t>(GuestAddress(kCmdlineStart), 'x').ok());
  auto cmdline = WriteCmdline(mem, LoadedKernel{}, "");
  ASSERT_TRUE(cmdline.ok()) << cmdline.status();
  EXPECT_EQ(cmdline->size, 1u);
  EXPECT_EQ(*mem.Read<uint8_t>(GuestAddress(kCmdlineStart)), 0);
}

TEST(CmdlineTest, ElfKernelsAcceptUpToTheLayoutMaximum) {
  GuestMemory mem = MakeGuestMemory(16 * kMiB);
  EXPECT_EQ(CmdlineCapacity(LoadedKernel{}), kCmdlineMaxSize);
  EXPECT_TRUE(WriteCmdline(mem, LoadedKernel{}, std::string(kCmdlineMaxSize - 1, 'a')).ok());
  auto too_long = WriteCmdline(mem, LoadedKernel{}, std::string(kCmdlineMaxSize, 'a'));
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CmdlineTest, BzImageCmdlineSizeLimitsTheLength) {
  GuestMemory mem = MakeGuestMemory(16 * kMiB);
  LoadedKernel kernel = BzImageKernel(255);
  EXPECT_EQ(CmdlineCapacity(kernel), 256u);
  EXPECT_TRUE(WriteCmdline(mem, kernel, std::string(255, 'a')).ok());
  auto too_long = WriteCmdline(mem, kernel, std::string(256, 'a'));
  ASSERT_FALSE(too_long.ok());
  EXPECT_THAT(too_long.status().message(),
              HasSubstr("command line is 256 bytes; the kernel accepts at most 255"));
}

TEST(CmdlineTest, HugeBzImageCmdlineSizeIsCappedByTheLayout) {
  EXPECT_EQ(CmdlineCapacity(BzImageKernel(0xffff'ffff)), kCmdlineMaxSize);
}

TEST(CmdlineTest, EmbeddedNulIsRejected) {
  GuestMemory mem = MakeGuestMemory(16 * kMiB);
  auto cmdline = WriteCmdline(mem, LoadedKernel{}, absl::string_view("a\0b", 3));
  ASSERT_FALSE(cmdline.ok());
  EXPECT_THAT(cmdline.status().message(), HasSubstr("NUL"));
}

}  // namespace
}  // namespace vmm::x86_64

namespace vmm::x86_64 {
namespace {

constexpr char kAll[] = "noxsave nosmap clearcpuid=308,151,128,129,137,147,148,153";

TEST(PvmLinuxSwitchesTest, AppendsEverySwitchToAPlainLine) {
  std::string added;
  EXPECT_EQ(WithPvmLinuxSwitches("console=ttyS0 quiet", &added),
            std::string("console=ttyS0 quiet ") + kAll);
  EXPECT_EQ(added, kAll);
  EXPECT_EQ(WithPvmLinuxSwitches("", &added), kAll);
}

TEST(PvmLinuxSwitchesTest, KeepsWhatTheUserAlreadyGave) {
  std::string added;
  EXPECT_EQ(WithPvmLinuxSwitches("noxsave clearcpuid=1 console=ttyS0", &added),
            "noxsave clearcpuid=1 console=ttyS0 nosmap");
  EXPECT_EQ(added, "nosmap");
  // A prefix of a parameter's name is not the parameter.
  WithPvmLinuxSwitches("noxsaveopt", &added);
  EXPECT_EQ(added, kAll);
}

TEST(PvmLinuxSwitchesTest, GoesBeforeInitsArguments) {
  std::string added;
  EXPECT_EQ(WithPvmLinuxSwitches("console=ttyS0 -- noxsave single", &added),
            std::string("console=ttyS0 ") + kAll + " -- noxsave single");
  EXPECT_EQ(added, kAll);
  EXPECT_EQ(WithPvmLinuxSwitches("a --b", &added), std::string("a --b ") + kAll);
}

}  // namespace
}  // namespace vmm::x86_64
