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

// --- --console ------------------------------------------------------------

TEST(ConsoleSpecTest, EachModeParses) {
  EXPECT_EQ(ParseConsoleSpec("stdio")->mode, ConsoleConfig::Mode::kStdio);
  EXPECT_EQ(ParseConsoleSpec("off")->mode, ConsoleConfig::Mode::kOff);
  absl::StatusOr<ConsoleConfig> file = ParseConsoleSpec("file=/tmp/hvc.log");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->mode, ConsoleConfig::Mode::kFile);
  EXPECT_EQ(file->path, "/tmp/hvc.log");
  EXPECT_EQ(file->transport, VirtioTransport::kPci);
  absl::StatusOr<ConsoleConfig> sock = ParseConsoleSpec("socket=/run/c.sock,transport=mmio");
  ASSERT_TRUE(sock.ok()) << sock.status();
  EXPECT_EQ(sock->mode, ConsoleConfig::Mode::kSocket);
  EXPECT_EQ(sock->path, "/run/c.sock");
  EXPECT_EQ(sock->transport, VirtioTransport::kMmio);
  EXPECT_EQ(ParseConsoleSpec("stdio,transport=mmio")->transport, VirtioTransport::kMmio);
}

TEST(ConsoleSpecTest, DefaultIsOff) { EXPECT_EQ(VmConfig().console.mode, ConsoleConfig::Mode::kOff); }

class ConsoleSpecBadTest : public ::testing::TestWithParam<BadSpec> {};

TEST_P(ConsoleSpecBadTest, IsRejectedWithAMessageNamingTheProblem) {
  absl::StatusOr<ConsoleConfig> console = ParseConsoleSpec(GetParam().spec);
  ASSERT_FALSE(console.ok()) << GetParam().spec;
  EXPECT_EQ(console.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(console.status().message()), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ConsoleSpecBadTest,
    ::testing::Values(BadSpec{"", "expected stdio, file=PATH, socket=PATH or off"},
                      BadSpec{"tty", "'tty': expected stdio"},
                      BadSpec{"file=", "'file=' needs a path"},
                      BadSpec{"socket=", "'socket=' needs a path"},
                      BadSpec{"stdio,transport=usb", "expected pci or mmio"},
                      BadSpec{"stdio,path=x", "unknown key 'path'"},
                      BadSpec{"stdio,transport=pci,transport=mmio", "given twice"},
                      BadSpec{"stdio,", "key=value"}));

// --- --rng ----------------------------------------------------------------

TEST(RngSpecTest, OnByDefaultWithoutALimit) {
  EXPECT_TRUE(VmConfig().rng.enabled);
  EXPECT_EQ(VmConfig().rng.rate_limit_bytes_per_second, 0u);
  EXPECT_EQ(*ParseRngSpec("on"), RngConfig());
  EXPECT_FALSE(ParseRngSpec("off")->enabled);
}

TEST(RngSpecTest, RateAndTransportKeysMeanOn) {
  absl::StatusOr<RngConfig> rng = ParseRngSpec("rate=4096,transport=mmio");
  ASSERT_TRUE(rng.ok()) << rng.status();
  EXPECT_TRUE(rng->enabled);
  EXPECT_EQ(rng->rate_limit_bytes_per_second, 4096u);
  EXPECT_EQ(rng->transport, VirtioTransport::kMmio);
  EXPECT_EQ(ParseRngSpec("transport=mmio")->rate_limit_bytes_per_second, 0u);
}

class RngSpecBadTest : public ::testing::TestWithParam<BadSpec> {};

TEST_P(RngSpecBadTest, IsRejectedWithAMessageNamingTheProblem) {
  absl::StatusOr<RngConfig> rng = ParseRngSpec(GetParam().spec);
  ASSERT_FALSE(rng.ok()) << GetParam().spec;
  EXPECT_EQ(rng.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(rng.status().message()), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, RngSpecBadTest,
    ::testing::Values(BadSpec{"", "key=value"}, BadSpec{"maybe", "key=value"},
                      BadSpec{"rate=0", "'rate=0': expected bytes per second"},
                      BadSpec{"rate=-5", "expected bytes per second"},
                      BadSpec{"rate=1k", "expected bytes per second"},
                      BadSpec{"rate=1000000001", "1 to 1000000000"},
                      BadSpec{"rate=1,rate=2", "given twice"},
                      BadSpec{"speed=1", "unknown key 'speed'"},
                      BadSpec{"transport=isa", "expected pci or mmio"}));

TEST(DeviceRegistryTest, ConsoleAndRngAreSingleFlags) {
  ASSERT_NE(FindDeviceOption("console"), nullptr);
  ASSERT_NE(FindDeviceOption("rng"), nullptr);
  EXPECT_FALSE(FindDeviceOption("console")->repeatable);
  EXPECT_FALSE(FindDeviceOption("rng")->repeatable);
  VmConfig config;
  ASSERT_TRUE(FindDeviceOption("rng")->apply("off", config).ok());
  EXPECT_FALSE(config.rng.enabled);
  ASSERT_TRUE(FindDeviceOption("console")->apply("file=/x", config).ok());
  EXPECT_EQ(config.console.path, "/x");
}
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
