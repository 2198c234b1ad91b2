// seccomp: a system call outside the vCPU allow-list, made on a vCPU thread,
// ends the VMM (SIGSYS) when enforced, and is let through in log mode and
// with seccomp off. (seccomp_probe.cc makes the call.)
#include <signal.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/sanitizer_build.h"
#include "tests/kvm/subprocess.h"

namespace vmm::testing {
namespace {

using ::testing::HasSubstr;

std::string Probe() {
  const char* path = std::getenv("VMM_SECCOMP_PROBE");
  return path != nullptr ? path : "seccomp_probe";
}

ProcessResult RunProbe(const std::string& mode) {
  return RunProcess({Probe(), GuestPath("hello.elf"), mode}, absl::Seconds(60));
}

TEST(SeccompTest, ForbiddenSyscallOnAVcpuThreadKillsTheVmm) {
  REQUIRE_KVM();
  if (SanitizerBuild()) GTEST_SKIP() << "sanitizer builds log instead of enforcing";
  ProcessResult r = RunProbe("on");
  EXPECT_EQ(r.signal, SIGSYS) << r.out << r.err;
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("socket:")));
}

TEST(SeccompTest, LogModeLetsTheCallThroughAndTheGuestFinishes) {
  REQUIRE_KVM();
  ProcessResult r = RunProbe("log");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("socket: allowed"));
  EXPECT_THAT(r.out, HasSubstr("exit: 1"));  // debug-exit 0
}

TEST(SeccompTest, OffLetsTheCallThrough) {
  REQUIRE_KVM();
  ProcessResult r = RunProbe("off");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("socket: allowed"));
}

// The CLI confines its event-loop thread too; every other KVM test runs the
// binary with the default (enforced) filters, so a missing entry in an
// allow-list shows up there as a SIGSYS.
TEST(SeccompTest, TheCliRunsGuestsUnderItsDefaultFilters) {
  REQUIRE_KVM();
  ProcessResult r = RunProcess(
      {VmmBinary(), "--kernel", GuestPath("hello.elf"), "--cpus", "2", "--cmdline", "exit=0",
       "--timeout", "60"},
      absl::Seconds(90));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.signal, 0);
}

}  // namespace
}  // namespace vmm::testing
