// The CLI's devices: --device NAME,OPTIONS and each kind's short flag, read
// from the device registry (devices/virtio/registry.h); --device help.
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "devices/virtio/block/block_config.h"
#include "devices/virtio/net/net_config.h"
#include "devices/virtio/registry.h"
#include "devices/virtio/rng/rng_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/vmm/cli_test_util.h"
#include "vmm/cli.h"

namespace vmm::cli {
namespace {

using ::testing::HasSubstr;
using namespace ::vmm::cli::testing;  // NOLINT: the shared helpers

TEST(CliDeviceTest, DeviceHelpListsEveryKindWithItsShortFlag) {
  absl::StatusOr<CliRequest> request = Parse({"--device", "help"});
  ASSERT_TRUE(request.ok()) << request.status();
  ASSERT_EQ(request->action, Action::kPrintDeviceHelp);
  ASSERT_GE(VirtioDeviceSpecs().size(), 5u);
  for (const VirtioDeviceSpec* spec : VirtioDeviceSpecs()) {
    EXPECT_THAT(request->device_help, HasSubstr(std::string(spec->name())));
    EXPECT_THAT(request->device_help, HasSubstr(absl::StrCat("--", spec->flag())));
    EXPECT_THAT(request->device_help, HasSubstr(std::string(spec->summary())));
  }
}

TEST(CliDeviceTest, NameCommaHelpListsThatKindsKeysAndDefaults) {
  for (const VirtioDeviceSpec* spec : VirtioDeviceSpecs()) {
    const std::string value = absl::StrCat(spec->name(), ",help");
    absl::StatusOr<CliRequest> request = Parse({"--device", value});
    ASSERT_TRUE(request.ok()) << value << ": " << request.status();
    ASSERT_EQ(request->action, Action::kPrintDeviceHelp);
    for (const DeviceKey& key : spec->keys()) {
      EXPECT_THAT(request->device_help, HasSubstr(key.name)) << value;
      EXPECT_THAT(request->device_help, HasSubstr(key.help)) << value;
    }
    EXPECT_THAT(request->device_help, HasSubstr("transport=pci|mmio"));
    EXPECT_THAT(request->device_help, HasSubstr("addr=SLOT"));
    // The short flag asks the same way.
    absl::StatusOr<CliRequest> short_form = Parse({absl::StrCat("--", spec->flag()), "help"});
    ASSERT_TRUE(short_form.ok()) << spec->flag() << ": " << short_form.status();
    EXPECT_EQ(short_form->device_help, spec->Help());
  }
  const std::string blk = Parse({"--device", "virtio-blk,help"})->device_help;
  EXPECT_THAT(blk, HasSubstr("path=PATH"));
  EXPECT_THAT(blk, HasSubstr("(required)"));
  EXPECT_THAT(blk, HasSubstr("readonly=on|off"));
  EXPECT_THAT(blk, HasSubstr("(default: off)"));
}

TEST(CliDeviceTest, DeviceByNameIsTheShortFlag) {
  const std::vector<DiskConfig> by_name = DevicesOf<DiskConfig>(
      ParseRun({"--device", "virtio-blk,path=a.img,transport=mmio,serial=S1"}));
  const std::vector<DiskConfig> by_flag =
      DevicesOf<DiskConfig>(ParseRun({"--disk", "path=a.img,transport=mmio,serial=S1"}));
  ASSERT_EQ(by_name.size(), 1u);
  EXPECT_EQ(by_name, by_flag);
  EXPECT_EQ(by_name[0].transport, VirtioTransport::kMmio);
  const std::vector<NetConfig> net =
      DevicesOf<NetConfig>(ParseRun({"--device=virtio-net,tap=t0,queues=2"}));
  ASSERT_EQ(net.size(), 1u);
  EXPECT_EQ(net[0].queue_pairs, 2);
}

TEST(CliDeviceTest, BothSpellingsCountAsOneKind) {
  ExpectUsageError({"--kernel", "k", "--console", "stdio", "--device", "virtio-console,off"},
                   "may be given only once");
  // Repeatable kinds mix freely, in command-line order.
  const std::vector<DiskConfig> disks = DevicesOf<DiskConfig>(
      ParseRun({"--disk", "path=a", "--device", "virtio-blk,path=b", "--disk", "path=c"}));
  ASSERT_EQ(disks.size(), 3u);
  EXPECT_EQ(disks[1].path, "b");
  EXPECT_EQ(disks[2].path, "c");
}

TEST(CliDeviceTest, RngIsPresentByDefaultAndAFlagReplacesIt) {
  std::vector<RngConfig> rng = DevicesOf<RngConfig>(ParseRun({}));
  ASSERT_EQ(rng.size(), 1u);
  EXPECT_TRUE(rng[0].enabled);
  rng = DevicesOf<RngConfig>(ParseRun({"--rng", "off"}));
  ASSERT_EQ(rng.size(), 1u);
  EXPECT_FALSE(rng[0].enabled);
  rng = DevicesOf<RngConfig>(ParseRun({"--device", "virtio-rng,rate=4096,addr=7"}));
  ASSERT_EQ(rng.size(), 1u);
  EXPECT_EQ(rng[0].rate_limit_bytes_per_second, 4096u);
  EXPECT_EQ(rng[0].pci_slot, 7);
  rng = DevicesOf<RngConfig>(ParseRun({"--device", "virtio-rng"}));
  ASSERT_EQ(rng.size(), 1u) << "a name alone means the defaults";
  EXPECT_TRUE(rng[0].enabled);
}

TEST(CliDeviceTest, AddrPicksAPciSlot) {
  std::vector<DiskConfig> disks = DevicesOf<DiskConfig>(ParseRun({"--disk", "path=a,addr=0x1f"}));
  ASSERT_EQ(disks.size(), 1u);
  EXPECT_EQ(disks[0].pci_slot, 31);
  disks = DevicesOf<DiskConfig>(ParseRun({"--disk", "path=a,addr=05.0"}));
  EXPECT_EQ(disks[0].pci_slot, 5);
  EXPECT_EQ(DevicesOf<DiskConfig>(ParseRun({"--disk", "path=a"}))[0].pci_slot, std::nullopt);
  ExpectUsageError({"--kernel", "k", "--disk", "path=a,addr=32"}, "from 1 to 31");
  ExpectUsageError({"--kernel", "k", "--disk", "path=a,addr=0"}, "from 1 to 31");
  ExpectUsageError({"--kernel", "k", "--disk", "path=a,transport=mmio,addr=3"},
                   "needs transport=pci");
}

TEST(CliDeviceTest, BadDeviceUsesAreOneLineErrors) {
  ExpectUsageError({"--kernel", "k", "--device", "virtio-gpu,help"}, "unknown device 'virtio-gpu'");
  ExpectUsageError({"--kernel", "k", "--device", "disk,path=a"}, "unknown device 'disk'");
  ExpectUsageError({"--kernel", "k", "--device"}, "--device needs a value");
  ExpectUsageError({"--kernel", "k", "--device", "virtio-rng,"}, "nothing after 'virtio-rng,'");
  ExpectUsageError({"--kernel", "k", "--rng", "rate=5,"}, "empty option");
  ExpectUsageError({"--kernel", "k", "--device", "virtio-blk,readonly=on"},
                   "path=IMAGE (or vhost_user=SOCKET) is required");
  ExpectUsageError({"--kernel", "k", "--device", "virtio-blk,path=a,colour=red"},
                   "unknown key 'colour' (expected path, readonly, serial, direct, poll_us, vhost_user, "
                   "reconnect, transport, addr)");
}

// README.md's "Embedding": a library user's devices, by hand or parsed.
TEST(LibraryConfigTest, DevicesByHandOrFromTheCliSyntaxAreTheSame) {
  VmConfig config;
  ASSERT_EQ(config.devices.size(), 1u) << "the default rng";
  DiskConfig disk;
  disk.path = "root.img";
  disk.transport = VirtioTransport::kMmio;
  config.devices.push_back(disk);
  absl::StatusOr<DeviceConfig> parsed =
      FindVirtioDeviceSpec("virtio-blk")->Parse("path=root.img,transport=mmio");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  config.devices.push_back(*parsed);
  const std::vector<DiskConfig> disks = DevicesOf<DiskConfig>(config);
  ASSERT_EQ(disks.size(), 2u);
  EXPECT_EQ(disks[0], disks[1]);
  // A copied VmConfig (a restart) has the same devices.
  const VmConfig copy = config;
  EXPECT_EQ(DevicesOf<DiskConfig>(copy), disks);
}

TEST(CliDeviceTest, HelpTextListsEveryDeviceFlag) {
  const std::string help = HelpText();
  for (const VirtioDeviceSpec* spec : VirtioDeviceSpecs()) {
    EXPECT_THAT(help, HasSubstr(absl::StrCat("--", spec->flag(), " OPTIONS")));
    EXPECT_THAT(help, HasSubstr(std::string(spec->summary())));
  }
  EXPECT_THAT(help, HasSubstr("--device NAME,OPTIONS"));
  EXPECT_THAT(help, HasSubstr("--device help"));
}


}  // namespace
}  // namespace vmm::cli
