// virtio-rng end to end: the real `vmm` binary with rng.elf as the driver,
// over virtio-pci and virtio-mmio, with and without a rate limit.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/kvm/subprocess.h"

namespace vmm::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

ProcessResult RunRng(const std::vector<std::string>& vmm_args, const std::string& cmdline) {
  std::vector<std::string> argv = {VmmBinary(), "--kernel", GuestPath("rng.elf"), "--memory",
                                   "64M",       "--timeout", "60", "--stats",
                                   "--cmdline", cmdline};
  argv.insert(argv.end(), vmm_args.begin(), vmm_args.end());
  return RunProcess(argv, absl::Seconds(90));
}

// rng.elf exits through debug-exit with 0 when every device passed: status 1.
void ExpectOk(const ProcessResult& r, const std::string& where) {
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("rng ", where, ": 256 bytes in 4 requests ok")));
  EXPECT_THAT(r.out, HasSubstr("rng: 1 devices ok"));
  EXPECT_THAT(r.err, HasSubstr(" 0 virtio notify")) << r.err;
}

TEST(RngTest, OnByDefaultOverPci) {
  REQUIRE_KVM();
  ProcessResult r = RunRng({}, "devices=1");
  ExpectOk(r, "pci");
}

TEST(RngTest, OverMmio) {
  REQUIRE_KVM();
  ProcessResult r = RunRng({"--rng", "transport=mmio"}, "devices=1 pci=off");
  ExpectOk(r, "mmio");
}

// The device's used-buffer notifications reach the guest as interrupts:
// MSI-X on PCI, the slot's GSI on virtio-mmio.
TEST(RngTest, InterruptsOverPciAndMmio) {
  REQUIRE_KVM();
  ProcessResult r = RunRng({"--rng", "transport=mmio"}, "devices=1 pci=off irq=on");
  ExpectOk(r, "mmio");
  EXPECT_THAT(r.out, HasSubstr("requests ok, 4 interrupts"));
  r = RunRng({}, "devices=1 mmio=off irq=on");
  ExpectOk(r, "pci");
  EXPECT_THAT(r.out, HasSubstr("requests ok, 4 interrupts"));
}

TEST(RngTest, RateLimitedStillDelivers) {
  REQUIRE_KVM();
  // 64 bytes/s: the first second's burst covers one request, the other three
  // wait for the bucket (each is filled with what it holds).
  ProcessResult r = RunRng({"--rng", "rate=64"}, "devices=1 timeout_ms=20000");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("rng: 1 devices ok"));
  EXPECT_GE(r.elapsed, absl::Seconds(2)) << "three more requests at 64 bytes/s take time";
}

TEST(RngTest, OffMeansNoDevice) {
  REQUIRE_KVM();
  ProcessResult r = RunRng({"--rng", "off"}, "");
  EXPECT_EQ(r.exit_code, 2 * 102 + 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("rng: FAIL: found 0 devices"));
}

TEST(RngTest, BadSpecIsAUsageError) {
  ProcessResult r = RunRng({"--rng", "rate=fast"}, "");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("rate=fast"));
  EXPECT_THAT(r.err, Not(HasSubstr("\n\n")));
}

}  // namespace
}  // namespace vmm::testing
