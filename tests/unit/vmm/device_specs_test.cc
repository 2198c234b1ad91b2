#include "vmm/device_specs.h"

#include <array>
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

TEST(NetSpecTest, TapAloneGivesOnePciQueuePairAndAVmmChosenMac) {
  absl::StatusOr<NetConfig> net = ParseNetSpec("tap=vmmtap0");
  ASSERT_TRUE(net.ok()) << net.status();
  EXPECT_EQ(net->tap, "vmmtap0");
  EXPECT_EQ(net->tap_fd, -1);
  EXPECT_FALSE(net->mac.has_value());
  EXPECT_EQ(net->queue_pairs, 1);
  EXPECT_EQ(net->transport, VirtioTransport::kPci);
}

TEST(NetSpecTest, EveryKeyIsApplied) {
  absl::StatusOr<NetConfig> net =
      ParseNetSpec("tap=tap-1,mac=52:54:00:AB:cd:09,queues=4,transport=mmio");
  ASSERT_TRUE(net.ok()) << net.status();
  EXPECT_EQ(net->tap, "tap-1");
  ASSERT_TRUE(net->mac.has_value());
  EXPECT_EQ(*net->mac, (std::array<uint8_t, 6>{0x52, 0x54, 0x00, 0xab, 0xcd, 0x09}));
  EXPECT_EQ(net->queue_pairs, 4);
  EXPECT_EQ(net->transport, VirtioTransport::kMmio);
}

TEST(NetSpecTest, FdHandsOverAnOpenTap) {
  absl::StatusOr<NetConfig> net = ParseNetSpec("fd=7,queues=1");
  ASSERT_TRUE(net.ok()) << net.status();
  EXPECT_EQ(net->tap_fd, 7);
  EXPECT_TRUE(net->tap.empty());
}

TEST(NetSpecTest, NetFlagIsRepeatableAndAddsADevicePerOccurrence) {
  const DeviceOption* option = FindDeviceOption("net");
  ASSERT_NE(option, nullptr);
  EXPECT_TRUE(option->repeatable);
  VmConfig config;
  ASSERT_TRUE(option->apply("tap=a", config).ok());
  ASSERT_TRUE(option->apply("fd=3,transport=mmio", config).ok());
  ASSERT_EQ(config.nets.size(), 2u);
  EXPECT_EQ(config.nets[1].tap_fd, 3);
}

class NetSpecBadTest : public ::testing::TestWithParam<BadSpec> {};

TEST_P(NetSpecBadTest, IsRejectedWithAMessageNamingTheProblem) {
  absl::StatusOr<NetConfig> net = ParseNetSpec(GetParam().spec);
  ASSERT_FALSE(net.ok()) << GetParam().spec;
  EXPECT_EQ(net.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(net.status().message()), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, NetSpecBadTest,
    ::testing::Values(
        BadSpec{"", "key=value"}, BadSpec{"mac=52:54:00:00:00:01", "exactly one of tap"},
        BadSpec{"tap=a,fd=3", "exactly one of tap"}, BadSpec{"tap=", "not an interface name"},
        BadSpec{"tap=0123456789abcdef", "not an interface name"},
        BadSpec{"tap=a/b", "not an interface name"}, BadSpec{"tap=a:1", "not an interface name"},
        BadSpec{"tap=..", "not an interface name"},
        BadSpec{"fd=-1", "file descriptor"}, BadSpec{"fd=three", "file descriptor"},
        BadSpec{"fd=3,queues=2", "queues must be 1"},
        BadSpec{"tap=a,queues=0", "expected 1 to 16"}, BadSpec{"tap=a,queues=17", "expected 1 to 16"},
        BadSpec{"tap=a,queues=two", "expected 1 to 16"},
        BadSpec{"tap=a,mac=52:54:00:00:00", "six hex octets"},
        BadSpec{"tap=a,mac=52:54:00:00:00:0g", "six hex octets"},
        BadSpec{"tap=a,mac=52:54:00:00:00:-1", "six hex octets"},
        BadSpec{"tap=a,mac=525400000001", "six hex octets"},
        BadSpec{"tap=a,mac=01:00:5e:00:00:01", "multicast"},
        BadSpec{"tap=a,mac=00:00:00:00:00:00", "all zero"},
        BadSpec{"tap=a,transport=virtio", "expected pci or mmio"},
        BadSpec{"tap=a,tap=b", "given twice"}, BadSpec{"tap=a,vhost=on", "unknown key 'vhost'"}));

}  // namespace
}  // namespace vmm::cli
