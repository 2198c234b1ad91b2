#include "vmm/device_specs.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vmm::cli {
namespace {

using ::testing::HasSubstr;

TEST(DiskSpecTest, PathAloneGivesAWritablePciDisk) {
  absl::StatusOr<DiskConfig> disk = ParseDiskSpec("path=/img/root.raw");
  ASSERT_TRUE(disk.ok()) << disk.status();
  EXPECT_EQ(disk->path, "/img/root.raw");
  EXPECT_FALSE(disk->read_only);
  EXPECT_FALSE(disk->direct);
  EXPECT_EQ(disk->serial, "");
  EXPECT_EQ(disk->transport, DiskConfig::Transport::kPci);
}

TEST(DiskSpecTest, EveryKeyIsApplied) {
  absl::StatusOr<DiskConfig> disk =
      ParseDiskSpec("path=d.img,readonly=on,serial=SN-42,transport=mmio,direct=on");
  ASSERT_TRUE(disk.ok()) << disk.status();
  EXPECT_TRUE(disk->read_only);
  EXPECT_TRUE(disk->direct);
  EXPECT_EQ(disk->serial, "SN-42");
  EXPECT_EQ(disk->transport, DiskConfig::Transport::kMmio);
}

TEST(DiskSpecTest, BooleansAcceptTheUsualSpellings) {
  for (const char* on : {"on", "true", "yes", "1"}) {
    EXPECT_TRUE(ParseDiskSpec(std::string("path=x,readonly=") + on)->read_only) << on;
  }
  for (const char* off : {"off", "false", "no", "0"}) {
    EXPECT_FALSE(ParseDiskSpec(std::string("path=x,readonly=") + off)->read_only) << off;
  }
}

struct BadSpec {
  const char* spec;
  const char* message;
};

class DiskSpecBadTest : public ::testing::TestWithParam<BadSpec> {};

TEST_P(DiskSpecBadTest, IsRejectedWithAMessageNamingTheProblem) {
  absl::StatusOr<DiskConfig> disk = ParseDiskSpec(GetParam().spec);
  ASSERT_FALSE(disk.ok()) << GetParam().spec;
  EXPECT_EQ(disk.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(disk.status().message()), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, DiskSpecBadTest,
    ::testing::Values(BadSpec{"", "key=value"}, BadSpec{"readonly=on", "path=IMAGE is required"},
                      BadSpec{"path=", "needs an image file"},
                      BadSpec{"path=a,path=b", "given twice"},
                      BadSpec{"path=a,colour=red", "unknown key 'colour'"},
                      BadSpec{"path=a,readonly=maybe", "expected on or off"},
                      BadSpec{"path=a,transport=usb", "expected pci or mmio"},
                      BadSpec{"path=a,serial=123456789012345678901", "longer than 20"},
                      BadSpec{"path=a,,readonly=on", "key=value"},
                      BadSpec{"path=a,=on", "key=value"}, BadSpec{"path", "key=value"}));

}  // namespace
}  // namespace vmm::cli
