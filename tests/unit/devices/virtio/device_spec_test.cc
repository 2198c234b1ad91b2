#include "devices/virtio/device_spec.h"

#include <array>
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/match.h"

#include "devices/virtio/block/block_config.h"
#include "devices/virtio/console/console_config.h"
#include "devices/virtio/fs/fs_config.h"
#include "devices/virtio/net/net_config.h"
#include "devices/virtio/registry.h"
#include "devices/virtio/rng/rng_config.h"
#include "devices/virtio/vsock/vsock_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vmm {
namespace {

using ::testing::HasSubstr;

// `options` through the named kind's spec, as --device NAME,options does.
template <typename Config>
absl::StatusOr<Config> ParseAs(absl::string_view name, absl::string_view options) {
  const VirtioDeviceSpec* spec = FindVirtioDeviceSpec(name);
  if (spec == nullptr) return absl::NotFoundError(name);
  absl::StatusOr<DeviceConfig> config = spec->Parse(options);
  if (!config.ok()) return config.status();
  const Config* typed = config->As<Config>();
  if (typed == nullptr) return absl::InternalError("another kind's config");
  return *typed;
}
absl::StatusOr<DiskConfig> ParseDiskSpec(absl::string_view s) {
  return ParseAs<DiskConfig>("virtio-blk", s);
}
absl::StatusOr<ConsoleConfig> ParseConsoleSpec(absl::string_view s) {
  return ParseAs<ConsoleConfig>("virtio-console", s);
}
absl::StatusOr<RngConfig> ParseRngSpec(absl::string_view s) {
  return ParseAs<RngConfig>("virtio-rng", s);
}
absl::StatusOr<NetConfig> ParseNetSpec(absl::string_view s) {
  return ParseAs<NetConfig>("virtio-net", s);
}
absl::StatusOr<VsockConfig> ParseVsockSpec(absl::string_view s) {
  return ParseAs<VsockConfig>("virtio-vsock", s);
}

absl::StatusOr<FsConfig> ParseFsSpec(absl::string_view s) {
  return ParseAs<FsConfig>("virtio-fs", s);
}

TEST(DiskSpecTest, PathAloneGivesAWritablePciDisk) {
  absl::StatusOr<DiskConfig> disk = ParseDiskSpec("path=/img/root.raw");
  ASSERT_TRUE(disk.ok()) << disk.status();
  EXPECT_EQ(disk->path, "/img/root.raw");
  EXPECT_FALSE(disk->read_only);
  EXPECT_FALSE(disk->direct);
  EXPECT_EQ(disk->serial, "");
  EXPECT_EQ(disk->poll_us, std::nullopt) << "unset: the device's own default";
  EXPECT_EQ(disk->transport, DiskConfig::Transport::kPci);
}

TEST(DiskSpecTest, EveryKeyIsApplied) {
  absl::StatusOr<DiskConfig> disk =
      ParseDiskSpec("path=d.img,readonly=on,serial=SN-42,transport=mmio,direct=on,poll_us=50");
  ASSERT_TRUE(disk.ok()) << disk.status();
  EXPECT_TRUE(disk->read_only);
  EXPECT_TRUE(disk->direct);
  EXPECT_EQ(disk->poll_us, 50);
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
    ::testing::Values(BadSpec{"", "path=IMAGE (or vhost_user=SOCKET) is required"},
                      BadSpec{"readonly=on", "path=IMAGE (or vhost_user=SOCKET) is required"},
                      BadSpec{"path=", "needs an image file"},
                      BadSpec{"path=a,path=b", "given twice"},
                      BadSpec{"path=a,colour=red", "unknown key 'colour'"},
                      BadSpec{"path=a,readonly=maybe", "expected on or off"},
                      BadSpec{"path=a,transport=usb", "expected pci or mmio"},
                      BadSpec{"path=a,poll_us=-1", "not a number from 0 to 1000"},
                      BadSpec{"path=a,poll_us=1001", "not a number from 0 to 1000"},
                      BadSpec{"path=a,poll_us=fast", "not a number from 0 to 1000"},
                      BadSpec{"vhost_user=s,poll_us=5", "poll_us= are the vhost-user"},
                      BadSpec{"path=a,serial=123456789012345678901", "longer than 20"},
                      BadSpec{"path=a,,readonly=on", "empty option"},
                      BadSpec{"path=a,=on", "key=value"}, BadSpec{"path", "expected path=PATH"},
                      BadSpec{"vhost_user=", "needs a socket path"},
                      BadSpec{"path=a,vhost_user=/s", "not both"},
                      BadSpec{"vhost_user=/s,readonly=on", "the vhost-user back-end's to set"},
                      BadSpec{"vhost_user=/s,serial=x", "the vhost-user back-end's to set"},
                      BadSpec{"path=a,reconnect=2", "reconnect= is for vhost_user= disks"},
                      BadSpec{"vhost_user=/s,reconnect=soon", "1 to 3600"},
                      BadSpec{"vhost_user=/s,reconnect=3601", "1 to 3600"}));

TEST(DiskSpecTest, VhostUserNamesTheBackEndsSocketAndSharesRam) {
  absl::StatusOr<DiskConfig> disk = ParseDiskSpec("vhost_user=/run/qsd.sock");
  ASSERT_TRUE(disk.ok()) << disk.status();
  EXPECT_EQ(disk->vhost_user, "/run/qsd.sock");
  EXPECT_TRUE(disk->path.empty());
  EXPECT_TRUE(disk->needs_shared_memory()) << "the back-end maps guest RAM";
  EXPECT_EQ(disk->reconnect_seconds, 0) << "off unless asked for";
  disk = ParseDiskSpec("vhost_user=/run/qsd.sock,reconnect=2");
  ASSERT_TRUE(disk.ok()) << disk.status();
  EXPECT_EQ(disk->reconnect_seconds, 2);
  disk = ParseDiskSpec("path=/img");
  ASSERT_TRUE(disk.ok()) << disk.status();
  EXPECT_FALSE(disk->needs_shared_memory());
}

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
  EXPECT_EQ(ParseConsoleSpec("pty")->mode, ConsoleConfig::Mode::kPty);
}

TEST(ConsoleSpecTest, DefaultIsOff) {
  EXPECT_EQ(ConsoleConfig().mode, ConsoleConfig::Mode::kOff);
  for (const DeviceConfig& device : DefaultVirtioDevices()) {
    EXPECT_EQ(device.As<ConsoleConfig>(), nullptr) << "no console unless asked for";
  }
}

class ConsoleSpecBadTest : public ::testing::TestWithParam<BadSpec> {};

TEST_P(ConsoleSpecBadTest, IsRejectedWithAMessageNamingTheProblem) {
  absl::StatusOr<ConsoleConfig> console = ParseConsoleSpec(GetParam().spec);
  ASSERT_FALSE(console.ok()) << GetParam().spec;
  EXPECT_EQ(console.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(console.status().message()), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ConsoleSpecBadTest,
    ::testing::Values(BadSpec{"", "expected one of stdio, file=PATH, socket=PATH, pty, off"},
                      BadSpec{"tty", "unknown key 'tty'"},
                      BadSpec{"stdio,file=x", "give only one of stdio, file=PATH"},
                      BadSpec{"stdio=1", "'stdio' takes no value"},
                      BadSpec{"file=", "'file=' needs a path"},
                      BadSpec{"socket=", "'socket=' needs a path"},
                      BadSpec{"stdio,transport=usb", "expected pci or mmio"},
                      BadSpec{"stdio,path=x", "unknown key 'path'"},
                      BadSpec{"stdio,transport=pci,transport=mmio", "given twice"},
                      BadSpec{"stdio,", "empty option"}));

// --- --rng ----------------------------------------------------------------

TEST(RngSpecTest, OnByDefaultWithoutALimit) {
  int present = 0;
  for (const DeviceConfig& device : DefaultVirtioDevices()) {
    if (const RngConfig* rng = device.As<RngConfig>()) {
      ++present;
      EXPECT_TRUE(rng->enabled);
      EXPECT_EQ(rng->rate_limit_bytes_per_second, 0u);
    }
  }
  EXPECT_EQ(present, 1);
  EXPECT_EQ(*ParseRngSpec("on"), RngConfig());
  EXPECT_EQ(*ParseRngSpec(""), RngConfig());
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
    ::testing::Values(BadSpec{"maybe", "unknown key 'maybe'"},
                      BadSpec{"off,rate=5", "'off' takes no rate"},
                      BadSpec{"rate=0", "'rate=0': expected bytes per second"},
                      BadSpec{"rate=-5", "expected bytes per second"},
                      BadSpec{"rate=1k", "expected bytes per second"},
                      BadSpec{"rate=1000000001", "1 to 1000000000"},
                      BadSpec{"rate=1,rate=2", "given twice"},
                      BadSpec{"speed=1", "unknown key 'speed'"},
                      BadSpec{"transport=isa", "expected pci or mmio"}));

TEST(DeviceRegistryTest, EveryKindHasAUniqueNameAndFlagAndFindsByEither) {
  std::vector<std::string> seen;
  for (const VirtioDeviceSpec* spec : VirtioDeviceSpecs()) {
    EXPECT_TRUE(absl::StartsWith(spec->name(), "virtio-")) << spec->name();
    EXPECT_EQ(FindVirtioDeviceSpec(spec->name()), spec);
    EXPECT_EQ(FindVirtioDeviceSpec(spec->flag()), spec);
    for (absl::string_view word : {spec->name(), spec->flag()}) {
      EXPECT_EQ(absl::c_count(seen, word), 0) << word << " used twice";
      seen.emplace_back(word);
    }
    // Its default config is its own kind, and says which spec it is.
    EXPECT_EQ(&spec->DefaultConfig()->spec(), spec);
    // Every kind takes the common keys, listed last.
    ASSERT_GE(spec->keys().size(), 2u);
    EXPECT_EQ(spec->keys()[spec->keys().size() - 2].name, "transport");
    EXPECT_EQ(spec->keys().back().name, "addr");
  }
  EXPECT_EQ(FindVirtioDeviceSpec("virtio-gpu"), nullptr);
}

TEST(DeviceRegistryTest, SingleAndRepeatableKinds) {
  EXPECT_TRUE(FindVirtioDeviceSpec("virtio-blk")->repeatable());
  EXPECT_TRUE(FindVirtioDeviceSpec("virtio-net")->repeatable());
  EXPECT_FALSE(FindVirtioDeviceSpec("virtio-console")->repeatable());
  EXPECT_FALSE(FindVirtioDeviceSpec("virtio-rng")->repeatable());
  EXPECT_FALSE(FindVirtioDeviceSpec("virtio-vsock")->repeatable());
}

TEST(DeviceRegistryTest, CommonKeysAddrAndTransport) {
  absl::StatusOr<DiskConfig> disk = ParseDiskSpec("path=a,addr=3");
  ASSERT_TRUE(disk.ok()) << disk.status();
  EXPECT_EQ(disk->pci_slot, 3);
  EXPECT_EQ(ParseNetSpec("tap=t,addr=0x10")->pci_slot, 16);
  EXPECT_EQ(ParseVsockSpec("cid=3,socket=s,addr=1f.0")->pci_slot, 31);
  for (const char* bad : {"0", "32", "0x20", "x", "", "3.1", "-1", "1e1"}) {
    absl::StatusOr<DiskConfig> rejected = ParseDiskSpec(std::string("path=a,addr=") + bad);
    ASSERT_FALSE(rejected.ok()) << bad;
    EXPECT_THAT(std::string(rejected.status().message()), HasSubstr("from 1 to 31")) << bad;
  }
  absl::StatusOr<RngConfig> mmio = ParseRngSpec("transport=mmio,addr=4");
  ASSERT_FALSE(mmio.ok());
  EXPECT_THAT(std::string(mmio.status().message()), HasSubstr("needs transport=pci"));
}

TEST(DeviceRegistryTest, HelpNamesEveryKeyWithItsDefault) {
  const std::string help = FindVirtioDeviceSpec("virtio-net")->Help();
  EXPECT_THAT(help, HasSubstr("virtio-net (--net OPTIONS is --device virtio-net,OPTIONS)"));
  EXPECT_THAT(help, HasSubstr("Any number per VM."));
  EXPECT_THAT(help, HasSubstr("queues=1..16"));
  EXPECT_THAT(help, HasSubstr("(default: 1)"));
  EXPECT_THAT(help, HasSubstr("transport=pci|mmio"));
  const std::string rng = FindVirtioDeviceSpec("virtio-rng")->Help();
  EXPECT_THAT(rng, HasSubstr("Present unless turned off."));
  EXPECT_THAT(rng, HasSubstr("rate=BYTES_PER_SEC"));
  EXPECT_THAT(rng, HasSubstr("1..1000000000"));
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
        BadSpec{"", "expected one of tap=NAME, fd=N"},
        BadSpec{"mac=52:54:00:00:00:01", "expected one of tap=NAME, fd=N"},
        BadSpec{"tap=a,fd=3", "give only one of tap=NAME, fd=N"}, BadSpec{"tap=", "not an interface name"},
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
        BadSpec{"tap=a,tap=b", "given twice"}, BadSpec{"tap=a,vhost=yes please", "expected on or off"},
        BadSpec{"tap=a,vhost=on,vhost=off", "given twice"}, BadSpec{"tap=a,vhosts=on", "unknown key 'vhosts'"}));

TEST(NetSpecTest, VhostOnPutsTheDataPathInTheKernel) {
  absl::StatusOr<NetConfig> net = ParseNetSpec("tap=t0,queues=2,vhost=on");
  ASSERT_TRUE(net.ok()) << net.status();
  EXPECT_TRUE(net->vhost);
  EXPECT_EQ(net->queue_pairs, 2);
  net = ParseNetSpec("tap=t0");
  ASSERT_TRUE(net.ok()) << net.status();
  EXPECT_FALSE(net->vhost) << "the VMM's own data path is the default";
}
TEST(VsockSpecTest, CidAndSocketGiveAPciDevice) {
  absl::StatusOr<VsockConfig> v = ParseVsockSpec("cid=3,socket=/run/v.sock");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->guest_cid, 3u);
  EXPECT_EQ(v->socket_path, "/run/v.sock");
  EXPECT_EQ(v->transport, VirtioTransport::kPci);
}

TEST(VsockSpecTest, BackendVhostNeedsOnlyACid) {
  absl::StatusOr<VsockConfig> v = ParseVsockSpec("cid=42,backend=vhost");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->vhost);
  EXPECT_EQ(v->guest_cid, 42u);
  EXPECT_TRUE(v->socket_path.empty());
  v = ParseVsockSpec("cid=42,socket=/s,backend=unix");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_FALSE(v->vhost);
}

TEST(VsockSpecTest, LargestCidAndMmioAreAccepted) {
  absl::StatusOr<VsockConfig> v = ParseVsockSpec("transport=mmio,socket=s,cid=4294967294");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->guest_cid, 4294967294u);
  EXPECT_EQ(v->transport, VirtioTransport::kMmio);
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
    ::testing::Values(BadSpec{"", "cid=N is required"}, BadSpec{"socket=/s", "cid=N is required"},
                      BadSpec{"cid=3", "socket=PATH is required"},
                      BadSpec{"cid=3,socket=", "needs a path"},
                      BadSpec{"cid=2,socket=s", "from 3 to 4294967294"},
                      BadSpec{"cid=4294967295,socket=s", "VMADDR_CID_ANY, are reserved"},
                      BadSpec{"cid=0,socket=s", "reserved"},
                      BadSpec{"cid=4294967296,socket=s", "from 3"},
                      BadSpec{"cid=-1,socket=s", "from 3"}, BadSpec{"cid=x,socket=s", "from 3"},
                      BadSpec{"cid=3,cid=4,socket=s", "given twice"},
                      BadSpec{"cid=3,socket=s,port=1", "unknown key 'port'"},
                      BadSpec{"cid=3,socket=s,transport=usb", "expected pci or mmio"},
                      BadSpec{"cid=3,socket=s,backend=vhost", "'socket=' is for backend=unix"},
                      BadSpec{"cid=3,backend=kernel", "expected unix or vhost"},
                      BadSpec{"backend=vhost", "cid=N is required"}));

// --- --fs -------------------------------------------------------------------

TEST(FsSpecTest, TagAndSocketGiveAVirtioFsDeviceOnSharedRam) {
  absl::StatusOr<FsConfig> fs = ParseFsSpec("tag=src,socket=/run/fs.sock,queues=2,reconnect=1");
  ASSERT_TRUE(fs.ok()) << fs.status();
  EXPECT_EQ(fs->tag, "src");
  EXPECT_EQ(fs->socket_path, "/run/fs.sock");
  EXPECT_EQ(fs->request_queues, 2);
  EXPECT_EQ(fs->reconnect_seconds, 1);
  EXPECT_TRUE(fs->needs_shared_memory());
}

class FsSpecBadTest : public ::testing::TestWithParam<BadSpec> {};

TEST_P(FsSpecBadTest, IsRejectedWithAMessageNamingTheProblem) {
  absl::StatusOr<FsConfig> fs = ParseFsSpec(GetParam().spec);
  ASSERT_FALSE(fs.ok()) << GetParam().spec;
  EXPECT_EQ(fs.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(fs.status().message()), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, FsSpecBadTest,
    ::testing::Values(BadSpec{"socket=/s", "tag=NAME is required"},
                      BadSpec{"tag=a", "socket=PATH is required"},
                      BadSpec{"tag=,socket=/s", "expected 1 to 36 bytes"},
                      BadSpec{"tag=0123456789012345678901234567890123456,socket=/s",
                              "expected 1 to 36 bytes"},
                      BadSpec{"tag=a,socket=", "Unix socket path"},
                      BadSpec{"tag=a,socket=/s,queues=0", "expected 1 to 16"},
                      BadSpec{"tag=a,socket=/s,queues=17", "expected 1 to 16"},
                      BadSpec{"tag=a,socket=/s,reconnect=-1", "1 to 3600"}));

}  // namespace
}  // namespace vmm
