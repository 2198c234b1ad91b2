// seccomp: a system call outside the vCPU allow-list, made on a vCPU thread,
// ends the VMM (SIGSYS) when enforced, and is let through in log mode and
// with seccomp off. (seccomp_probe.cc makes the call.)
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <string>

#include "absl/algorithm/container.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
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

// Issue 17, item 9: the binary's signal thread ran without a filter (one of
// four threads); an unfiltered thread can be hijacked from a filtered one in
// the same address space. Every task of a running vmm shows "Seccomp: 2".
TEST(SeccompTest, EveryThreadOfARunningVmmIsFiltered) {
  REQUIRE_KVM();
  if (SanitizerBuild()) GTEST_SKIP() << "sanitizer runtimes start threads of their own";
  pid_t pid = fork();
  if (pid == 0) {
    execl(VmmBinary().c_str(), VmmBinary().c_str(), "--kernel", GuestPath("halt.elf").c_str(),
          "--cpus", "2", "--serial", "off", "--timeout", "60", static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_GT(pid, 0);
  // Threads: the event loop (main), the signal thread, two vCPUs. Filters
  // are installed as each starts running the guest: poll until all four are.
  std::map<std::string, std::string> modes;
  for (int attempt = 0; attempt < 250; ++attempt) {
    modes.clear();
    const std::string tasks = absl::StrCat("/proc/", pid, "/task");
    if (DIR* d = ::opendir(tasks.c_str())) {
      while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        std::ifstream status(tasks + "/" + e->d_name + "/status");
        std::string line;
        while (std::getline(status, line)) {
          if (absl::StartsWith(line, "Seccomp:")) modes[e->d_name] = line;
        }
      }
      ::closedir(d);
    }
    if (modes.size() >= 4 && absl::c_all_of(modes, [](const auto& m) {
          return absl::StrContains(m.second, "2");
        })) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  ::kill(pid, SIGINT);  // at once (SIGTERM would press the power button first)
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_GE(modes.size(), 4u);
  for (const auto& [task, mode] : modes) {
    EXPECT_THAT(mode, HasSubstr("2")) << "task " << task << " is not filtered";
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 130) << "status " << status;
}

}  // namespace
}  // namespace vmm::testing
