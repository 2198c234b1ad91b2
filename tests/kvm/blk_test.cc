// virtio-blk end to end: the real `vmm` binary, blk.elf as the driver (over
// virtio-pci and virtio-mmio, polled and with interrupts), and the host
// checking the image files afterwards.
#include <sys/stat.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/backend_process.h"
#include "tests/kvm/subprocess.h"

namespace vmm::testing {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kSectors = 256;
constexpr uint32_t kReadSectors = 8;   // blk.elf's defaults
constexpr uint32_t kWriteSectors = 8;

// tests/guests/blk_pattern.h: word i of sector s of disk d, generation g.
uint32_t PatternWord(uint32_t disk, uint32_t generation, uint64_t sector, uint32_t word) {
  uint32_t x = static_cast<uint32_t>(sector * 128 + word);
  return x * 0x9E3779B1u + disk * 0x85EBCA77u + generation * 0xC2B2AE3Du;
}

std::vector<uint8_t> PatternSector(uint32_t disk, uint32_t generation, uint64_t sector) {
  std::vector<uint8_t> bytes(512);
  for (uint32_t i = 0; i < 128; ++i) {
    uint32_t w = PatternWord(disk, generation, sector, i);
    std::memcpy(&bytes[i * 4], &w, 4);
  }
  return bytes;
}

// An image whose sectors hold the host (generation 0) pattern of `disk`.
std::string MakeImage(const std::string& name, uint32_t disk) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (uint64_t s = 0; s < kSectors; ++s) {
    std::vector<uint8_t> sector = PatternSector(disk, 0, s);
    out.write(reinterpret_cast<const char*>(sector.data()), sector.size());
  }
  return path;
}

std::vector<uint8_t> ReadSector(const std::string& path, uint64_t sector) {
  std::vector<uint8_t> bytes(512);
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(sector * 512));
  in.read(reinterpret_cast<char*>(bytes.data()), bytes.size());
  return bytes;
}

// What blk.elf leaves on disk `disk`: its pattern over the written sectors,
// zeros where it used WRITE_ZEROES and DISCARD, the host pattern elsewhere.
void ExpectGuestWrites(const std::string& path, uint32_t disk) {
  const std::vector<uint8_t> zeros(512, 0);
  for (uint64_t s = 0; s < 24; ++s) {
    std::vector<uint8_t> want;
    if (s >= kReadSectors && s < kReadSectors + kWriteSectors) {
      want = PatternSector(disk, 1, s);
    } else if (s == kReadSectors + kWriteSectors || s == kReadSectors + kWriteSectors + 1) {
      want = zeros;
    } else {
      want = PatternSector(disk, 0, s);
    }
    EXPECT_EQ(ReadSector(path, s), want) << path << " sector " << s;
  }
  EXPECT_EQ(ReadSector(path, kSectors - 1), PatternSector(disk, 0, kSectors - 1));
}

ProcessResult RunBlk(const std::vector<std::string>& vmm_args, const std::string& cmdline) {
  std::vector<std::string> argv = {VmmBinary(), "--kernel", GuestPath("blk.elf"), "--memory",
                                   "64M", "--timeout", "120", "--stats", "--cmdline", cmdline};
  argv.insert(argv.end(), vmm_args.begin(), vmm_args.end());
  return RunProcess(argv, absl::Seconds(180));
}

// blk.elf exits through debug-exit with 0 when every disk passed: status 1.
void ExpectAllDisksOk(const ProcessResult& r, int disks) {
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("blk: ", disks, " disks ok")));
  // Every queue notification went through an ioeventfd.
  EXPECT_THAT(r.err, HasSubstr(" 0 virtio notify")) << r.err;
}

TEST(BlkTest, PciDiskPolled) {
  REQUIRE_KVM();
  std::string img = MakeImage("pci-polled.img", 0);
  ProcessResult r = RunBlk({"--disk", "path=" + img + ",serial=pci-disk"}, "disks=1");
  ExpectAllDisksOk(r, 1);
  EXPECT_THAT(r.out, HasSubstr("serial pci-disk ok"));
  ExpectGuestWrites(img, 0);
}

TEST(BlkTest, MmioDiskWithItsInterrupt) {
  REQUIRE_KVM();
  std::string img = MakeImage("mmio-irq.img", 0);
  ProcessResult r =
      RunBlk({"--acpi", "off", "--disk", "path=" + img + ",transport=mmio"},
             "disks=1 mmio=cmdline irq=mmio-irq");
  ExpectAllDisksOk(r, 1);
  EXPECT_THAT(r.out, HasSubstr("blk mmio 0"));
  ExpectGuestWrites(img, 0);
}

TEST(BlkTest, DeviceByNameInTheSlotAskedFor) {
  REQUIRE_KVM();
  // --device virtio-blk is --disk; addr= puts it in PCI slot 7, and the
  // disk without addr= takes the lowest free slot (1), in front of the rng.
  std::string a = MakeImage("addr-a.img", 0);
  std::string b = MakeImage("addr-b.img", 1);
  ProcessResult r = RunBlk({"--device", "virtio-blk,path=" + b + ",addr=7,serial=seven",
                            "--disk", "path=" + a},
                           "disks=2");
  ExpectAllDisksOk(r, 2);
  EXPECT_THAT(r.out, HasSubstr("blk pci 00:01.0"));
  EXPECT_THAT(r.out, HasSubstr("blk pci 00:07.0"));
  EXPECT_THAT(r.out, HasSubstr("serial seven ok"));
  ExpectGuestWrites(a, 0);
  ExpectGuestWrites(b, 1);
}

TEST(BlkTest, TwoDevicesAskingForOneSlotIsAOneLineUsageError) {
  REQUIRE_KVM();
  std::string a = MakeImage("clash-a.img", 0);
  ProcessResult r = RunBlk({"--disk", "path=" + a + ",addr=3", "--device",
                            "virtio-rng,addr=3"},
                           "disks=1");
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("virtio-rng addr=3: PCI slot 3 is taken by another device"));
  EXPECT_EQ(absl::c_count(absl::StripTrailingAsciiWhitespace(r.err), '\n'), 0) << r.err;
}

TEST(BlkTest, FourDisksOnBothTransportsWithMsixAndTwoVcpus) {
  REQUIRE_KVM();
  // Discovery order: PCI functions first, then virtio-mmio slots.
  std::string a = MakeImage("multi-a.img", 0);
  std::string b = MakeImage("multi-b.img", 1);
  std::string c = MakeImage("multi-c.img", 2);
  std::string d = MakeImage("multi-d.img", 3);
  ProcessResult r = RunBlk({"--cpus", "2", "--disk", "path=" + a, "--disk", "path=" + b,
                            "--disk", "path=" + c + ",transport=mmio", "--disk",
                            "path=" + d + ",transport=mmio"},
                           "disks=4 irq=msix");
  ExpectAllDisksOk(r, 4);
  EXPECT_THAT(r.out, HasSubstr("smp: 2 cpus up"));
  ExpectGuestWrites(a, 0);
  ExpectGuestWrites(b, 1);
  ExpectGuestWrites(c, 2);
  ExpectGuestWrites(d, 3);
}

TEST(BlkTest, ResetMidRunAndReinitialiseOnBothTransports) {
  REQUIRE_KVM();
  std::string a = MakeImage("reset-a.img", 0);
  std::string b = MakeImage("reset-b.img", 1);
  ProcessResult r = RunBlk({"--disk", "path=" + a, "--disk", "path=" + b + ",transport=mmio"},
                           "disks=2 reset=1 irq=msix");
  ExpectAllDisksOk(r, 2);
  EXPECT_THAT(r.out, HasSubstr("blk pci 00:01.0: reset and re-initialised"));
  EXPECT_THAT(r.out, HasSubstr("blk mmio 0: reset and re-initialised"));
  ExpectGuestWrites(a, 0);
  ExpectGuestWrites(b, 1);
}

// One PCI disk, driven in one of the ways a driver may choose.
struct DriverVariant {
  const char* name;
  const char* cmdline;   // blk.elf's options
  const char* expected;  // a line fragment that proves the variant ran
};

class BlkDriverVariantTest : public ::testing::TestWithParam<DriverVariant> {};

TEST_P(BlkDriverVariantTest, DiskPassesAndImageHoldsTheGuestsWrites) {
  REQUIRE_KVM();
  std::string img = MakeImage(absl::StrCat(GetParam().name, ".img"), 0);
  ProcessResult r = RunBlk({"--disk", "path=" + img}, absl::StrCat("disks=1 ", GetParam().cmdline));
  ExpectAllDisksOk(r, 1);
  EXPECT_THAT(r.out, HasSubstr(GetParam().expected));
  ExpectGuestWrites(img, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Variants, BlkDriverVariantTest,
    ::testing::Values(
        // 0xCF8/0xCFC and ECAM must show the same functions.
        DriverVariant{"ConfigMechanismOneAndEcamAgree", "pci=both", "cf8 and ecam agree"},
        // INTx through the IOAPIC, for drivers that never enable MSI-X.
        DriverVariant{"Intx", "irq=intx", "irq intx"},
        // The guest moves the BAR: the notify ioeventfds must follow it
        // (ExpectAllDisksOk checks no notify reached user space).
        DriverVariant{"NotifyIoeventfdsFollowAMovedBar", "irq=msix bar_remap=0xc8000000",
                      "irq msix"},
        DriverVariant{"WithoutIndirectOrEventIdx", "indirect=0 event_idx=0",
                      "indirect 0, event_idx 0"}),
    [](const ::testing::TestParamInfo<DriverVariant>& info) { return info.param.name; });

// --disk vhost_user=: blk.elf's driver against qemu-storage-daemon exporting
// the image, through a real VM: kicks through KVM's ioeventfds to the
// daemon, its completions back through the MSI-X vector's irqfd (msix), or
// through vmm's call eventfd to the INTx line (intx) and the virtio-mmio
// slot's interrupt (mmio).
struct VhostUserVariant {
  const char* name;
  std::vector<std::string> vmm_args;  // besides --disk
  const char* disk_suffix;
  const char* cmdline;
};

class BlkVhostUserTest : public ::testing::TestWithParam<VhostUserVariant> {};

TEST_P(BlkVhostUserTest, TheGuestsDriverWorksAgainstQemuStorageDaemon) {
  REQUIRE_KVM();
  if (::access("/usr/bin/qemu-storage-daemon", X_OK) != 0) {
    std::fprintf(stderr, "\n*** SKIPPED: no qemu-storage-daemon (qemu-utils) ***\n\n");
    GTEST_SKIP() << "SKIPPED: no qemu-storage-daemon";
  }
  const std::string img = MakeImage(absl::StrCat("vu-", GetParam().name, ".img"), 0);
  const std::string sock = absl::StrCat(::testing::TempDir(), "/vu-", GetParam().name, ".sock");
  ::unlink(sock.c_str());
  BackendProcess qsd;
  qsd.Start({"/usr/bin/qemu-storage-daemon", "--blockdev",
             // discard=unmap: blk.elf checks its DISCARD left zeros, as vmm does.
             "driver=file,node-name=d0,discard=unmap,filename=" + img, "--export",
             "type=vhost-user-blk,id=e0,node-name=d0,writable=on,addr.type=unix,addr.path=" +
                 sock},
            sock);
  std::vector<std::string> args = GetParam().vmm_args;
  args.insert(args.end(), {"--disk", "vhost_user=" + sock + GetParam().disk_suffix});
  ProcessResult r = RunBlk(args, absl::StrCat("disks=1 ", GetParam().cmdline));
  qsd.Stop();
  ExpectAllDisksOk(r, 1);
  ExpectGuestWrites(img, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Interrupts, BlkVhostUserTest,
    ::testing::Values(VhostUserVariant{"Msix", {}, "", "irq=msix"},
                      VhostUserVariant{"Intx", {}, "", "irq=intx"},
                      VhostUserVariant{"Mmio", {"--acpi", "off"}, ",transport=mmio", ""}),
    [](const ::testing::TestParamInfo<VhostUserVariant>& info) { return info.param.name; });

TEST(BlkTest, ReadOnlyDiskRefusesWritesAndStaysUnchanged) {
  REQUIRE_KVM();
  std::string img = MakeImage("read-only.img", 0);
  ProcessResult r = RunBlk({"--disk", "path=" + img + ",readonly=on"}, "disks=1");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(", ro"));
  for (uint64_t s = 0; s < 24; ++s) {
    EXPECT_EQ(ReadSector(img, s), PatternSector(0, 0, s)) << "sector " << s;
  }
}

TEST(BlkTest, SecondVmmCannotOpenAnImageInUseForWriting) {
  REQUIRE_KVM();
  std::string img = MakeImage("locked.img", 0);
  // The first VMM holds the image while its guest halts.
  pid_t first = fork();
  if (first == 0) {
    execl(VmmBinary().c_str(), VmmBinary().c_str(), "--kernel", GuestPath("halt.elf").c_str(),
          "--disk", ("path=" + img).c_str(), "--serial", "off", "--timeout", "30",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  absl::SleepFor(absl::Seconds(1));
  ProcessResult r =
      RunProcess({VmmBinary(), "--kernel", GuestPath("hello.elf"), "--disk", "path=" + img},
                 absl::Seconds(30));
  kill(first, SIGINT);
  int status = 0;
  waitpid(first, &status, 0);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr(img));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(BlkTest, MissingImageIsAUsageError) {
  REQUIRE_KVM();  // found while building the machine, after /dev/kvm
  ProcessResult r = RunProcess({VmmBinary(), "--kernel", GuestPath("hello.elf"), "--disk",
                                "path=/nonexistent/disk.img"},
                               absl::Seconds(30));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("/nonexistent/disk.img"));
}

}  // namespace
}  // namespace vmm::testing
