// The real `vmm` binary on the test guests: serial output and exit status as
// a CI user sees them.
#include <sys/wait.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "base/unix_socket.h"
#include "tests/kvm/subprocess.h"
#include "vmm/kvm/kvm_system.h"

namespace vmm::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::Duration kGuestLimit = absl::Seconds(120);

TEST(VmmBinaryTest, GuestGreetsAndExitStatusFollowsDebugExit) {
  REQUIRE_KVM();
  ProcessResult r = RunProcess(
      {VmmBinary(), "--kernel", GuestPath("hello.elf"), "--memory", "64M", "--cmdline", "exit=3"},
      kGuestLimit);
  EXPECT_EQ(r.exit_code, (3 << 1) | 1) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Hello from the vmm test guest"));
  EXPECT_THAT(r.out, HasSubstr("smp: 1 cpus up"));
}

TEST(VmmBinaryTest, GuestResetThroughI8042ExitsZero) {
  REQUIRE_KVM();
  ProcessResult r = RunProcess({VmmBinary(), "--kernel", GuestPath("hello.elf")}, kGuestLimit);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Hello from the vmm test guest"));
}

// hello.elf resets at the end of every boot: with --on-reboot restart it
// boots again (both vCPUs each time) until the timeout ends the run.
TEST(VmmBinaryTest, OnRebootRestartBootsTheGuestAgain) {
  REQUIRE_KVM();
  ProcessResult r =
      RunProcess({VmmBinary(), "--kernel", GuestPath("hello.elf"), "--memory", "64M", "--cpus",
                  "2", "--on-reboot", "restart", "--timeout", "6", "--stats"},
                 kGuestLimit);
  EXPECT_EQ(r.exit_code, 124) << r.err;
  size_t boots = 0;
  for (size_t at = r.out.find("smp: 2 cpus up"); at != std::string::npos;
       at = r.out.find("smp: 2 cpus up", at + 1)) {
    ++boots;
  }
  EXPECT_GE(boots, 2u) << r.out;
  EXPECT_THAT(r.err, HasSubstr("the guest rebooted (i8042 reset, port 0x64); starting it again "
                               "(restart 1,"));
  EXPECT_THAT(r.err, Not(HasSubstr("; 0 restarts")));
}

// A triple fault resets the machine, as on hardware, so vmm exits 0 with
// --on-reboot exit; but a crash must not pass for a reboot the guest asked
// for: vmm says so, with the vCPU and where it was.
TEST(VmmBinaryTest, TripleFaultExitsZeroAndSaysWhere) {
  REQUIRE_KVM();
  ProcessResult r = RunProcess({VmmBinary(), "--kernel", GuestPath("hello.elf"), "--memory", "64M",
                                "--cmdline", "exit=triple-fault"},
                               kGuestLimit);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("exit: triple fault"));
  EXPECT_THAT(r.err, HasSubstr("vmm: the guest reset after a triple fault on vCPU 0 at RIP 0x"));
}

// A reboot the guest asks for is not reported as a crash.
TEST(VmmBinaryTest, RequestedResetIsNotReportedAsATripleFault) {
  REQUIRE_KVM();
  ProcessResult r = RunProcess({VmmBinary(), "--kernel", GuestPath("hello.elf"), "--memory", "64M"},
                               kGuestLimit);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("exit: reset"));
  EXPECT_THAT(r.err, Not(HasSubstr("triple fault")));
}

// Linux parks the other CPUs with INIT before it reboots (stop_other_cpus):
// a CPU waiting for a SIPI must stay put through the wait and the reset, so
// the reboot ends vmm with 0 rather than a parked vCPU running garbage.
// Both ways Linux resets: the i8042 and (its default) the FADT's reset
// register.
TEST(VmmBinaryTest, RebootWithTheOtherCpusParkedInInitExitsZero) {
  REQUIRE_KVM();
  for (const char* how : {"park", "park exit=acpi-reset"}) {
    SCOPED_TRACE(how);
    ProcessResult r = RunProcess({VmmBinary(), "--kernel", GuestPath("hello.elf"), "--memory",
                                  "64M", "--cpus", "2", "--cmdline", how},
                                 kGuestLimit);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr("smp: other cpus parked in INIT"));
    EXPECT_THAT(r.out, ::testing::ContainsRegex("exit: (acpi )?reset"));
    EXPECT_THAT(r.err, Not(HasSubstr("internal error")));
  }
}

// On PVM hosts KVM's emulator stops on LSL and vmm finishes it (Linux's NMI
// entry and the vDSO's getcpu use it); on hardware it runs natively. The
// guest checks the results either way.
TEST(VmmBinaryTest, InstructionsTheEmulatorLacksGiveTheCpusAnswers) {
  REQUIRE_KVM();
  ProcessResult r =
      RunProcess({VmmBinary(), "--kernel", GuestPath("assists.elf"), "--memory", "64M",
                  "--stats"},
                 kGuestLimit);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("assists: all ok"));
  EXPECT_THAT(r.out, Not(HasSubstr("FAIL")));
  // --stats counts them: the guest's two LSLs on PVM, none on hardware.
  if (KvmSystem::IsPvmHost()) {
    EXPECT_THAT(r.err, HasSubstr("; 2 emulation assists, 0 #UD to guest programs")) << r.err;
  } else {
    EXPECT_THAT(r.err, HasSubstr("; 0 emulation assists")) << r.err;
  }
}

// A guest's user space entering its kernel, set up exactly as Linux sets it
// up, by SYSCALL/SYSRETQ and by INT 0x80/IRETQ. Hardware KVM runs both.
// A PVM host runs the guest's ring 3 natively and gets both wrong (SYSCALL
// reaches LSTAR at CPL 3; INT 0x80 raises #UD), out of vmm's reach:
// guest-debug single-step and breakpoints do not see ring 3 there either.
// That exact failure is a skip with the reason; any other outcome fails, so
// a host that starts doing it right shows up here.
TEST(VmmBinaryTest, GuestUserSpaceEntersItsKernelLikeLinux) {
  REQUIRE_KVM();
  struct Path {
    const char* name;
    const char* pvm_gap;
  };
  std::vector<std::string> gaps;
  for (const Path& path : {Path{"syscall", "syscall: SYSCALL entered LSTAR at CPL 3"},
                           Path{"int80", "syscall: INT 0x80 from ring 3 raised #UD"}}) {
    SCOPED_TRACE(path.name);
    ProcessResult r = RunProcess({VmmBinary(), "--kernel", GuestPath("syscall.elf"), "--memory",
                                  "64M", "--cmdline", absl::StrCat("path=", path.name)},
                                 kGuestLimit);
    if (KvmSystem::IsPvmHost() && r.out.find(path.pvm_gap) != std::string::npos) {
      EXPECT_EQ(r.exit_code, (100 << 1) | 1) << r.err;  // GUEST_EXIT_FAILURE
      gaps.push_back(path.pvm_gap);
      continue;
    }
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr("syscall: all ok"));
    EXPECT_THAT(r.out, Not(HasSubstr("FAIL")));
  }
  if (!gaps.empty()) {
    GTEST_SKIP() << "SKIPPED on this PVM host, as known (tests/linux/pvm/BOOT_LOG.md stop 10): "
                 << absl::StrJoin(gaps, "; ");
  }
}

TEST(VmmBinaryTest, GuestPanicThroughPvpanicExitsFour) {
  REQUIRE_KVM();
  ProcessResult r = RunProcess(
      {VmmBinary(), "--kernel", GuestPath("hello.elf"), "--cmdline", "exit=panic"}, kGuestLimit);
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_THAT(r.out, HasSubstr("exit: panic"));
  EXPECT_THAT(r.err, HasSubstr("panicked"));
}

TEST(VmmBinaryTest, AcpiSleepControlPowerOffExitsZero) {
  REQUIRE_KVM();
  ProcessResult r = RunProcess(
      {VmmBinary(), "--kernel", GuestPath("hello.elf"), "--cmdline", "exit=poweroff"},
      kGuestLimit);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("exit: acpi poweroff"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("did not stop")));
}

TEST(VmmBinaryTest, TwoVcpusAreBroughtUpByTheGuest) {
  REQUIRE_KVM();
  ProcessResult r = RunProcess({VmmBinary(), "--kernel", GuestPath("hello.elf"), "--cpus", "2",
                                "--cmdline", "exit=0"},
                               kGuestLimit);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.out, HasSubstr("cpus: 2"));
  EXPECT_THAT(r.out, HasSubstr("smp: 2 cpus up"));
}

TEST(VmmBinaryTest, FourVcpusAreBroughtUpByTheGuest) {
  REQUIRE_KVM();
  ProcessResult r = RunProcess({VmmBinary(), "--kernel", GuestPath("hello.elf"), "--cpus", "4",
                                "--cmdline", "exit=0"},
                               kGuestLimit);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.out, HasSubstr("smp: 4 cpus up"));
}

TEST(VmmBinaryTest, TimeoutStopsAGuestHaltedWithInterruptsOff) {
  REQUIRE_KVM();
  ProcessResult r = RunProcess(
      {VmmBinary(), "--kernel", GuestPath("halt.elf"), "--timeout", "2"}, absl::Seconds(60));
  EXPECT_FALSE(r.killed_after_limit);
  EXPECT_EQ(r.exit_code, 124) << r.err;
  EXPECT_THAT(r.out, HasSubstr("halting"));
  EXPECT_LT(r.elapsed, absl::Seconds(30));
}

TEST(VmmBinaryTest, SerialFileKeepsTheConsoleLog) {
  REQUIRE_KVM();
  std::string path = ::testing::TempDir() + "/serial.log";
  std::remove(path.c_str());
  ProcessResult r = RunProcess({VmmBinary(), "--kernel", GuestPath("hello.elf"), "--serial",
                                "file=" + path, "--cmdline", "exit=5"},
                               kGuestLimit);
  EXPECT_EQ(r.exit_code, 11) << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("Hello")));
  std::ifstream log(path);
  std::stringstream contents;
  contents << log.rdbuf();
  EXPECT_THAT(contents.str(), HasSubstr("Hello from the vmm test guest"));
}

// Nobody has COM1's pty open: its output is dropped and the guest runs to
// its end instead of waiting for a reader; the pty is named for the user.
TEST(VmmBinaryTest, SerialPtyIsNamedAndAGuestNobodyReadsStillFinishes) {
  REQUIRE_KVM();
  ProcessResult r = RunProcess({VmmBinary(), "--kernel", GuestPath("hello.elf"), "--serial",
                                "pty", "--cmdline", "exit=5"},
                               kGuestLimit);
  EXPECT_EQ(r.exit_code, 11) << r.err;
  EXPECT_THAT(r.err, HasSubstr("vmm: COM1 (ttyS0) is on /dev/pts/"));
  EXPECT_THAT(r.out, Not(HasSubstr("Hello")));
}

TEST(VmmBinaryTest, SerialSocketWithoutAClientDropsOutputAndIsRemovedAtExit) {
  REQUIRE_KVM();
  const std::string path = ::testing::TempDir() + "/com1.sock";
  ProcessResult r = RunProcess({VmmBinary(), "--kernel", GuestPath("hello.elf"), "--serial",
                                "socket=" + path, "--cmdline", "exit=5"},
                               kGuestLimit);
  EXPECT_EQ(r.exit_code, 11) << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("Hello")));
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << "the socket file is left behind";
}

// Issue 17, item 8: HUP, QUIT, USR1, ALRM used to kill vmm by their default
// action (the terminal left raw, socket files left behind). Each terminating
// signal now takes the SIGTERM path: exit 130, the console's socket file
// removed.
class StopSignalTest : public ::testing::TestWithParam<int> {};

TEST_P(StopSignalTest, EndsTheVmCleanlyWithExit130) {
  REQUIRE_KVM();
  const std::string sock =
      ::testing::TempDir() + "/sig-" + std::to_string(GetParam()) + "-" + std::to_string(getpid());
  ::unlink(sock.c_str());
  pid_t pid = fork();
  if (pid == 0) {
    // --shutdown-grace 0: SIGTERM stops at once too (its graceful path is
    // SigtermTest's).
    execl(VmmBinary().c_str(), VmmBinary().c_str(), "--kernel", GuestPath("halt.elf").c_str(),
          "--serial", "off", "--console", ("socket=" + sock).c_str(), "--timeout", "60",
          "--shutdown-grace", "0", static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_GT(pid, 0);
  // The socket exists once the VM is built; the guest then halts forever.
  for (int i = 0; i < 300 && ::access(sock.c_str(), F_OK) != 0; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(::access(sock.c_str(), F_OK), 0) << "vmm never created its console socket";
  ASSERT_EQ(::kill(pid, GetParam()), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_NE(::access(sock.c_str(), F_OK), 0) << "the console socket file was left behind";
}

INSTANTIATE_TEST_SUITE_P(Signals, StopSignalTest,
                         ::testing::Values(SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
                                           SIGALRM),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(sigabbrev_np(info.param));
                         });

// Issue 14: SIGTERM presses the power button and waits out the grace; a
// guest that ignores it (halt.elf has no ACPI) is stopped after it with the
// timeout status and a line saying so; a second SIGTERM stops at once.
// (That Linux powers off cleanly on the press: the Linux suite's
// "shutdown" check.)
struct SigtermRun {
  int status = 0;
  absl::Duration after_last_signal;
  std::string err;
};

SigtermRun SigtermHalt(int signals) {
  BackgroundProcess vmm({VmmBinary(), "--kernel", GuestPath("halt.elf"), "--timeout", "60",
                         "--shutdown-grace", "1.5"});
  absl::SleepFor(absl::Milliseconds(500));  // built and running
  absl::Time last;
  for (int i = 0; i < signals; ++i) {
    if (i > 0) absl::SleepFor(absl::Milliseconds(200));
    ::kill(vmm.pid(), SIGTERM);
    last = absl::Now();
  }
  SigtermRun run;
  run.status = vmm.Wait();
  run.after_last_signal = absl::Now() - last;
  run.err = vmm.err();
  return run;
}

TEST(SigtermTest, AGuestThatIgnoresThePowerButtonIsStoppedAfterTheGrace) {
  REQUIRE_KVM();
  SigtermRun run = SigtermHalt(1);
  ASSERT_TRUE(WIFEXITED(run.status));
  EXPECT_EQ(WEXITSTATUS(run.status), 124) << run.err;
  EXPECT_GE(run.after_last_signal, absl::Milliseconds(1400)) << "did not wait for the grace";
  EXPECT_LT(run.after_last_signal, absl::Seconds(10));
  EXPECT_THAT(run.err, HasSubstr("1.5s shutdown grace"));
}

TEST(SigtermTest, ASecondSigtermStopsAtOnce) {
  REQUIRE_KVM();
  SigtermRun run = SigtermHalt(2);
  ASSERT_TRUE(WIFEXITED(run.status));
  EXPECT_EQ(WEXITSTATUS(run.status), 130) << run.err;
  EXPECT_LT(run.after_last_signal, absl::Milliseconds(1300));
}

// Issue 17, item 1: a stop signal during start-up used to wait until
// start-up was over (here: a vhost-user back-end that accepts and never
// answers, 5 s per request, then exit 1). It now cancels start-up: exit 130
// at once, one line naming the signal, COM1's socket (made before the
// devices) removed.
class StartupSignalTest : public ::testing::TestWithParam<int> {};

TEST_P(StartupSignalTest, CutsStartUpShortWithExit130) {
  REQUIRE_KVM();
  const std::string dir = ::testing::TempDir() + "/startup-" + std::to_string(GetParam()) + "-" +
                          std::to_string(getpid());
  ::mkdir(dir.c_str(), 0700);
  const std::string backend = dir + "/silent.sock", serial = dir + "/serial.sock";
  absl::StatusOr<UniqueFd> silent = ListenUnix(backend, 4, "silent back-end");
  ASSERT_TRUE(silent.ok()) << silent.status();
  BackgroundProcess vmm({VmmBinary(), "--kernel", GuestPath("halt.elf"), "--serial",
                         "socket=" + serial, "--disk", "vhost_user=" + backend});
  ASSERT_GT(vmm.pid(), 0);
  // COM1's socket exists once start-up is under way; the devices come next.
  for (int i = 0; i < 300 && ::access(serial.c_str(), F_OK) != 0; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(::access(serial.c_str(), F_OK), 0) << "vmm never created COM1's socket";
  absl::SleepFor(absl::Milliseconds(300));  // into the wait for the back-end's answer
  const absl::Time sent = absl::Now();
  ASSERT_EQ(::kill(vmm.pid(), GetParam()), 0);
  const int status = vmm.Wait();
  const absl::Duration took = absl::Now() - sent;
  const std::string& err = vmm.err();
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 130) << err;
  EXPECT_LT(took, absl::Seconds(2)) << "start-up was not cut short";
  EXPECT_THAT(err, HasSubstr(absl::StrCat("interrupted by SIG", sigabbrev_np(GetParam()))));
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_NE(::access(serial.c_str(), F_OK), 0) << "COM1's socket file was left behind";
  ::unlink(backend.c_str());
  ::rmdir(dir.c_str());
}

INSTANTIATE_TEST_SUITE_P(Signals, StartupSignalTest, ::testing::Values(SIGINT, SIGTERM, SIGHUP),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(sigabbrev_np(info.param));
                         });

// --- Bad input: one line on stderr, exit 2, no crash. The command line's
// own checks need no KVM; the rest are found while the machine is built,
// after /dev/kvm is opened (without it, vmm's one-line error is that). ---

struct BadInput {
  const char* name;
  std::vector<std::string> args;
  const char* expected;  // a substring of the one-line error
  bool needs_kvm = true;  // found while building the machine
  std::string image;      // a disk image the case names: it must not change
};

class VmmBadInputTest : public ::testing::TestWithParam<BadInput> {};

TEST_P(VmmBadInputTest, ExitsTwoWithOneLine) {
  if (GetParam().needs_kvm) REQUIRE_KVM();
  std::vector<std::string> argv = {VmmBinary()};
  for (const std::string& a : GetParam().args) {
    argv.push_back(a == "@hello" ? GuestPath("hello.elf") : a);
  }
  std::string before;
  if (!GetParam().image.empty()) {
    std::ifstream in(GetParam().image, std::ios::binary);
    before.assign(std::istreambuf_iterator<char>(in), {});
    ASSERT_FALSE(before.empty()) << GetParam().image;
  }
  ProcessResult r = RunProcess(argv, absl::Seconds(30));  // no case may hang
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.signal, 0);
  EXPECT_THAT(r.err, HasSubstr(GetParam().expected));
  // One line: exactly one newline, at the end.
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  if (!GetParam().image.empty()) {
    std::ifstream in(GetParam().image, std::ios::binary);
    const std::string after{std::istreambuf_iterator<char>(in), {}};
    EXPECT_TRUE(after == before) << GetParam().image << " changed";
  }
}

std::string WriteFile(const std::string& name, const std::string& bytes) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// A named pipe (nobody writes it: opening it for reading must not block).
std::string Fifo(const std::string& name) {
  std::string path = ::testing::TempDir() + "/" + name;
  ::unlink(path.c_str());
  if (::mkfifo(path.c_str(), 0600) != 0) return "/failed-to-create-" + name;
  return path;
}

// A symbolic link to nothing.
std::string DanglingLink(const std::string& name) {
  std::string path = ::testing::TempDir() + "/" + name;
  ::unlink(path.c_str());
  if (::symlink("/nonexistent/target", path.c_str()) != 0) return "/failed-to-create-" + name;
  return path;
}

// A small disk image with a pattern, for the cases that must leave it alone.
const std::string& PatternImage() {
  static const std::string* path = [] {
    std::string bytes(64 << 10, '\0');
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 31 + 7);
    return new std::string(WriteFile("bad-input-disk.img", bytes));
  }();
  return *path;
}

// A sparse file of `size` bytes.
std::string SparseFile(const std::string& name, off_t size) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary).close();
  if (truncate(path.c_str(), size) != 0) return "/failed-to-create-" + name;
  return path;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, VmmBadInputTest,
    ::testing::Values(
        BadInput{"MissingKernel", {"--kernel", "/nonexistent/kernel"}, "/nonexistent/kernel"},
        BadInput{"NoKernelFlag", {"--memory", "64M"}, "--kernel", false},
        BadInput{"UnknownFlag", {"--kernel", "@hello", "--frobnicate"}, "frobnicate", false},
        BadInput{"CpusZero", {"--kernel", "@hello", "--cpus", "0"}, "cpus", false},
        BadInput{"BadMemory", {"--kernel", "@hello", "--memory", "12Q"}, "memory", false},
        BadInput{"MemoryTooSmall", {"--kernel", "@hello", "--memory", "4K"}, "memory"},
        BadInput{"NotAKernel",
                 {"--kernel", WriteFile("not-a-kernel", std::string(4096, 'x'))},
                 "not-a-kernel"},
        BadInput{"TruncatedSetupHeader",
                 {"--kernel", WriteFile("truncated-bzimage", std::string(0x1f0, '\0'))},
                 "truncated-bzimage"},
        BadInput{"CpusAboveLimit", {"--kernel", "@hello", "--cpus", "256"}, "cpus", false},
        BadInput{"CpusAboveMpTableLimit", {"--kernel", "@hello", "--cpus", "64"}, "cpus"},
        BadInput{"MemoryBeyondHost", {"--kernel", "@hello", "--memory", "4096T"}, "memory"},
        BadInput{"InitrdDoesNotFit",
                 {"--kernel", "@hello", "--memory", "64M", "--initrd",
                  SparseFile("huge-initrd", 100 << 20)},
                 "initrd"},
        BadInput{"MissingInitrd",
                 {"--kernel", "@hello", "--initrd", "/nonexistent/initrd"},
                 "/nonexistent/initrd"},
        BadInput{"UnwritableSerialFile",
                 {"--kernel", "@hello", "--serial", "file=/nonexistent/com1.log"},
                 "serial: cannot open output file /nonexistent/com1.log", false},
        BadInput{"SerialSocketInAMissingDirectory",
                 {"--kernel", "@hello", "--serial", "socket=/nonexistent/com1.sock"},
                 "serial: cannot listen on socket /nonexistent/com1.sock", false},
        // Flags and their values: found before anything is opened.
        BadInput{"FlagWithoutItsValue", {"--kernel", "@hello", "--memory"},
                 "--memory needs a value", false},
        BadInput{"CpusNotANumber", {"--kernel", "@hello", "--cpus", "abc"},
                 "expected a whole number of vCPUs", false},
        BadInput{"NegativeTimeout", {"--kernel", "@hello", "--timeout", "-1"},
                 "timeout must be greater than zero", false},
        BadInput{"UnknownSerialMode", {"--kernel", "@hello", "--serial", "bogus"},
                 "expected stdio, file=PATH, socket=PATH, pty or off", false},
        BadInput{"UnknownSeccompMode", {"--kernel", "@hello", "--seccomp", "maybe"},
                 "expected on, off or log", false},
        BadInput{"UnknownRebootPolicy", {"--kernel", "@hello", "--on-reboot", "sometimes"},
                 "expected exit or restart", false},
        BadInput{"UnknownDecompressor", {"--kernel", "@hello", "--decompress", "fast"},
                 "expected auto, vmm or guest", false},
        BadInput{"FlagGivenTwice", {"--kernel", "@hello", "--kernel", "@hello"},
                 "--kernel is given twice", false},
        BadInput{"UnknownDevice", {"--kernel", "@hello", "--device", "nosuch"},
                 "unknown device 'nosuch'", false},
        BadInput{"UnknownDiskKey", {"--kernel", "@hello", "--disk", "colour=red"},
                 "unknown key 'colour'", false},
        BadInput{"TooManyNetQueues", {"--kernel", "@hello", "--net", "tap=a,queues=99"},
                 "expected 1 to 16 queue pairs", false},
        BadInput{"VhostNotOnOrOff", {"--kernel", "@hello", "--net", "tap=a,vhost=maybe"},
                 "expected on or off", false},
        BadInput{"ReservedVsockCid", {"--kernel", "@hello", "--vsock", "cid=2,socket=/s"},
                 "expected a number from 3 to 4294967294", false},
        BadInput{"VsockSocketWithVhost",
                 {"--kernel", "@hello", "--vsock", "cid=5,backend=vhost,socket=/x"},
                 "'socket=' is for backend=unix", false},
        BadInput{"VsockSocketPathTooLong",
                 {"--kernel", "@hello", "--vsock", "cid=3,socket=/" + std::string(120, 'p')},
                 "is longer than 96 bytes", false},
        BadInput{"FsWithoutSocket", {"--kernel", "@hello", "--fs", "tag=x"},
                 "socket=PATH is required", false},
        BadInput{"FsWithoutRequestQueues", {"--kernel", "@hello", "--fs", "tag=a,socket=/s,queues=0"},
                 "expected 1 to 16", false},
        BadInput{"VhostUserDiskWithReadonly",
                 {"--kernel", "@hello", "--disk", "vhost_user=/s,readonly=on"},
                 "the vhost-user back-end's to set", false},
        BadInput{"ReconnectOnAnImageDisk", {"--kernel", "@hello", "--disk", "path=/x,reconnect=5"},
                 "reconnect= is for vhost_user= disks", false},
        BadInput{"RngRateNegative", {"--kernel", "@hello", "--rng", "rate=-5"},
                 "expected bytes per second", false},
        // Files of every type where a file is wanted.
        BadInput{"KernelIsADirectory", {"--kernel", "/tmp"}, "/tmp"},
        BadInput{"KernelIsDevNull", {"--kernel", "/dev/null"}, "/dev/null"},
        BadInput{"KernelIsEmpty", {"--kernel", WriteFile("empty-kernel", "")}, "empty-kernel"},
        BadInput{"KernelIsAFifo", {"--kernel", Fifo("kernel-fifo")}, "kernel-fifo"},
        BadInput{"KernelIsADanglingLink", {"--kernel", DanglingLink("kernel-link")},
                 "kernel-link"},
        BadInput{"InitrdIsADirectory", {"--kernel", "@hello", "--initrd", "/tmp"}, "/tmp"},
        BadInput{"DiskMissing", {"--kernel", "@hello", "--disk", "path=/nonexistent/disk.img"},
                 "/nonexistent/disk.img"},
        BadInput{"DiskIsADirectory", {"--kernel", "@hello", "--disk", "path=/tmp"}, "/tmp"},
        BadInput{"DiskIsAFifo", {"--kernel", "@hello", "--disk", "path=" + Fifo("disk-fifo")},
                 "disk-fifo"},
        // Sockets that are not there.
        BadInput{"VhostUserDiskWithoutItsBackEnd",
                 {"--kernel", "@hello", "--disk", "vhost_user=/nonexistent/blk.sock"},
                 "/nonexistent/blk.sock"},
        BadInput{"FsWithoutVirtiofsd",
                 {"--kernel", "@hello", "--fs", "tag=a,socket=/nonexistent/fs.sock"},
                 "/nonexistent/fs.sock"},
        BadInput{"VsockSocketInAMissingDirectory",
                 {"--kernel", "@hello", "--vsock", "cid=3,socket=/nonexistent/v.sock"},
                 "/nonexistent/v.sock"},
        BadInput{"ConsoleSocketInAMissingDirectory",
                 {"--kernel", "@hello", "--console", "socket=/nonexistent/c.sock"},
                 "/nonexistent/c.sock"},
        // A good image beside a bad input is left as it was.
        BadInput{"ImageUntouchedWhenMemoryIsTooSmall",
                 {"--kernel", "@hello", "--memory", "4K", "--disk", "path=" + PatternImage()},
                 "memory", true, PatternImage()},
        BadInput{"ImageUntouchedWhenTheKernelIsMissing",
                 {"--kernel", "/nonexistent/kernel", "--disk", "path=" + PatternImage()},
                 "/nonexistent/kernel", true, PatternImage()},
        BadInput{"ImageUntouchedWhenGivenTwice",
                 {"--kernel", "@hello", "--disk", "path=" + PatternImage(), "--disk",
                  "path=" + PatternImage()},
                 PatternImage().c_str(), true, PatternImage()}),
    [](const ::testing::TestParamInfo<BadInput>& info) { return info.param.name; });

}  // namespace
}  // namespace vmm::testing
