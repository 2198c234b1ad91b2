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

TEST(VsockSpecTest, CidAndSocketGiveAPciDevice) {
  absl::StatusOr<VsockConfig> v = ParseVsockSpec("cid=3,socket=/run/v.sock");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->guest_cid, 3u);
  EXPECT_EQ(v->socket_path, "/run/v.sock");
  EXPECT_EQ(v->transport, VirtioTransport::kPci);
}

TEST(VsockSpecTest, LargestCidAndMmioAreAccepted) {
  absl::StatusOr<VsockConfig> v = ParseVsockSpec("transport=mmio,socket=s,cid=4294967295");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->guest_cid, 4294967295u);
  EXPECT_EQ(v->transport, VirtioTransport::kMmio);
}

TEST(VsockSpecTest, TheFlagSetsTheConfigAndMayBeGivenOnce) {
  const DeviceOption* option = FindDeviceOption("vsock");
  ASSERT_NE(option, nullptr);
  EXPECT_FALSE(option->repeatable);
  VmConfig config;
  ASSERT_TRUE(option->apply("cid=7,socket=/tmp/x", config).ok());
  ASSERT_TRUE(config.vsock.has_value());
  EXPECT_EQ(config.vsock->guest_cid, 7u);
}

class VsockSpecBadTest : public ::testing::TestWithParam<BadSpec> {};

TEST_P(VsockSpecBadTest, IsRejectedWithAMessageNamingTheProblem) {
  absl::StatusOr<VsockConfig> v = ParseVsockSpec(GetParam().spec);
  ASSERT_FALSE(v.ok()) << GetParam().spec;
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(v.status().message()), HasSubstr(GetParam().message));
}

const std::string kLongPath = "socket=/" + std::string(96, 'p');  // 97 bytes
const std::string kLongestPath = "cid=3,socket=/" + std::string(95, 'p');

TEST(VsockSpecTest, PathLengthLeavesRoomForThePortSuffix) {
  EXPECT_TRUE(ParseVsockSpec(kLongestPath).ok());  // 96 + "_4294967295" = 107
  EXPECT_FALSE(ParseVsockSpec("cid=3," + kLongPath).ok());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, VsockSpecBadTest,
    ::testing::Values(BadSpec{"", "key=value"}, BadSpec{"socket=/s", "cid=N is required"},
                      BadSpec{"cid=3", "socket=PATH is required"},
                      BadSpec{"cid=3,socket=", "needs a path"},
                      BadSpec{"cid=2,socket=s", "from 3 to 4294967295"},
                      BadSpec{"cid=0,socket=s", "reserved"},
                      BadSpec{"cid=4294967296,socket=s", "from 3"},
                      BadSpec{"cid=-1,socket=s", "from 3"}, BadSpec{"cid=x,socket=s", "from 3"},
                      BadSpec{"cid=3,cid=4,socket=s", "given twice"},
                      BadSpec{"cid=3,socket=s,port=1", "unknown key 'port'"},
                      BadSpec{"cid=3,socket=s,transport=usb", "expected pci or mmio"}));

}  // namespace
}  // namespace vmm::cli
