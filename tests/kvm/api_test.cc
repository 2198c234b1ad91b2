// The embeddable API (vmm/vmm.h): a program runs guests in-process, gets the
// console through a callback and the exit status as a value.
#include <algorithm>
#include <atomic>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/kvm/guest_console.h"
#include "tests/kvm/subprocess.h"
#include "vmm/vmm.h"

namespace vmm::testing {
namespace {

using ::testing::HasSubstr;

VmConfig HelloConfig(Console& console, const std::string& cmdline) {
  VmConfig config;
  config.kernel_path = GuestPath("hello.elf");
  config.memory_bytes = 64 << 20;
  config.cmdline = cmdline;
  config.serial = console.Config();
  config.timeout = absl::Seconds(120);
  return config;
}

TEST(ApiTest, RunReturnsTheGuestsExitStatusAsAValue) {
  REQUIRE_KVM();
  Console console;
  auto vm = Vm::Create(HelloConfig(console, "exit=42"));
  ASSERT_TRUE(vm.ok()) << vm.status();
  ExitStatus status = (*vm)->Run();
  EXPECT_EQ(status.reason, ExitStatus::Reason::kDebugExit) << status.message;
  EXPECT_EQ(status.debug_code, 42u);
  EXPECT_EQ(status.ProcessExitCode(), 85);
  EXPECT_THAT(console.Get(), HasSubstr("Hello from the vmm test guest"));
}

TEST(ApiTest, TwoVmsRunAtOnceInOneProcess) {
  REQUIRE_KVM();
  Console a, b;
  auto vm_a = Vm::Create(HelloConfig(a, "exit=1"));
  auto vm_b = Vm::Create(HelloConfig(b, "exit=2"));
  ASSERT_TRUE(vm_a.ok()) << vm_a.status();
  ASSERT_TRUE(vm_b.ok()) << vm_b.status();
  ExitStatus status_b;
  std::thread other([&] { status_b = (*vm_b)->Run(); });
  ExitStatus status_a = (*vm_a)->Run();
  other.join();
  EXPECT_EQ(status_a.debug_code, 1u) << status_a.message;
  EXPECT_EQ(status_b.debug_code, 2u) << status_b.message;
  EXPECT_THAT(a.Get(), HasSubstr("Hello from the vmm test guest"));
  EXPECT_THAT(b.Get(), HasSubstr("Hello from the vmm test guest"));
}

TEST(ApiTest, RequestStopFromAnotherThreadEndsAHaltedGuest) {
  REQUIRE_KVM();
  Console console;
  VmConfig config = HelloConfig(console, "");
  config.kernel_path = GuestPath("halt.elf");
  auto vm = Vm::Create(std::move(config));
  ASSERT_TRUE(vm.ok()) << vm.status();
  std::thread stopper([&] {
    // Stop once the guest has said it is halting.
    for (int i = 0; i < 600 && console.Get().find("halting") == std::string::npos; ++i) {
      absl::SleepFor(absl::Milliseconds(100));
    }
    (*vm)->RequestStop();
  });
  ExitStatus status = (*vm)->Run();
  stopper.join();
  EXPECT_EQ(status.reason, ExitStatus::Reason::kStopped) << status.message;
  EXPECT_THAT(console.Get(), HasSubstr("halting"));
}

TEST(ApiTest, RequestStopBeforeRunReturnsAtOnce) {
  REQUIRE_KVM();
  Console console;
  auto vm = Vm::Create(HelloConfig(console, ""));
  ASSERT_TRUE(vm.ok()) << vm.status();
  (*vm)->RequestStop();
  EXPECT_EQ((*vm)->Run().reason, ExitStatus::Reason::kStopped);
}

TEST(ApiTest, MissingKernelIsAnErrorNotACrash) {
  REQUIRE_KVM();  // found while building the machine, after /dev/kvm
  VmConfig config;
  config.kernel_path = "/nonexistent/kernel";
  auto vm = Vm::Create(std::move(config));
  ASSERT_FALSE(vm.ok());
  EXPECT_THAT(std::string(vm.status().message()), HasSubstr("/nonexistent/kernel"));
}

// Issue 14: console input from the host program. echo.elf answers each
// line typed on COM1 and leaves on "quit" (debug-exit 3).
TEST(ApiTest, ConsoleInputFromTheHostProgramReachesTheGuest) {
  REQUIRE_KVM();
  Console console;
  VmConfig config = HelloConfig(console, "");
  config.kernel_path = GuestPath("echo.elf");
  auto vm = Vm::Create(std::move(config));
  ASSERT_TRUE(vm.ok()) << vm.status();
  ExitStatus status;
  std::thread runner([&] { status = (*vm)->Run(); });
  console.WaitFor("ready");
  auto send = [&](std::string_view bytes) {
    absl::StatusOr<size_t> taken = (*vm)->SendConsoleInput(bytes);
    ASSERT_TRUE(taken.ok()) << taken.status();
    EXPECT_EQ(*taken, bytes.size());
  };
  send("hello from the host\n");
  console.WaitFor("got: hello");
  EXPECT_THAT(console.Get(), HasSubstr("got: hello from the host\n"));
  send("quit\r");
  runner.join();
  EXPECT_EQ(status.reason, ExitStatus::Reason::kDebugExit) << status.message;
  EXPECT_EQ(status.debug_code, 3u);
}

TEST(ApiTest, ConsoleInputNeedsTheCallbackConsole) {
  REQUIRE_KVM();
  VmConfig config;
  config.kernel_path = GuestPath("halt.elf");
  config.memory_bytes = 64 << 20;
  config.serial.mode = SerialConfig::Mode::kOff;
  auto vm = Vm::Create(std::move(config));
  ASSERT_TRUE(vm.ok()) << vm.status();
  EXPECT_EQ((*vm)->SendConsoleInput("x").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// Issue 14: Pause parks the guest (count.elf stops counting), Resume lets
// it go on; the paused time is in the stats, the timeout stands still
// while paused, and a stop ends a paused guest.
size_t Lines(const std::string& text) { return std::count(text.begin(), text.end(), '\n'); }

void WaitForLines(Console& console, size_t n) {
  WaitUntil([&] { return Lines(console.Get()) >= n; });
}

TEST(ApiTest, PauseStopsTheGuestAndResumeLetsItGoOn) {
  REQUIRE_KVM();
  Console console;
  VmConfig config = HelloConfig(console, "");
  config.kernel_path = GuestPath("count.elf");
  auto vm = Vm::Create(std::move(config));
  ASSERT_TRUE(vm.ok()) << vm.status();
  EXPECT_EQ((*vm)->Pause().code(), absl::StatusCode::kFailedPrecondition) << "before Run";
  ExitStatus status;
  std::thread runner([&] { status = (*vm)->Run(); });

  WaitForLines(console, 3);
  ASSERT_GE(Lines(console.Get()), 3u) << "the guest never counted";
  ASSERT_TRUE((*vm)->Pause().ok());
  EXPECT_TRUE((*vm)->paused());
  EXPECT_EQ((*vm)->Pause().code(), absl::StatusCode::kFailedPrecondition) << "paused twice";
  const size_t at_pause = Lines(console.Get());
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(Lines(console.Get()), at_pause) << "the guest counted while paused";
  EXPECT_GE((*vm)->stats().paused, absl::Milliseconds(500));

  ASSERT_TRUE((*vm)->Resume().ok());
  EXPECT_FALSE((*vm)->paused());
  EXPECT_EQ((*vm)->Resume().code(), absl::StatusCode::kFailedPrecondition);
  WaitForLines(console, at_pause + 3);
  EXPECT_GE(Lines(console.Get()), at_pause + 3) << "the guest did not count on after Resume";
  // Paused again, a stop still ends the run.
  ASSERT_TRUE((*vm)->Pause().ok());
  (*vm)->RequestStop();
  runner.join();
  EXPECT_EQ(status.reason, ExitStatus::Reason::kStopped) << status.message;
  EXPECT_FALSE((*vm)->paused());
  // Consecutive counts: nothing lost or repeated over the pauses.
  const std::string text = console.Get();
  size_t expected = 1;
  for (size_t at = text.find("count "); at != std::string::npos; at = text.find("count ", at + 1)) {
    const size_t end = text.find('\n', at);
    if (end == std::string::npos) break;  // the last line, cut by the stop
    EXPECT_EQ(text.substr(at + 6, end - at - 6), std::to_string(expected)) << "at " << at;
    ++expected;
  }
}

// A paused guest cannot answer its power button: the shutdown grace
// starts when it runs again.
TEST(ApiTest, TheShutdownGraceWaitsForResume) {
  REQUIRE_KVM();
  Console console;
  VmConfig config = HelloConfig(console, "");
  config.kernel_path = GuestPath("count.elf");
  config.shutdown_grace = absl::Seconds(1);
  auto vm = Vm::Create(std::move(config));
  ASSERT_TRUE(vm.ok()) << vm.status();
  ExitStatus status;
  std::atomic<bool> ended{false};
  std::thread runner([&] {
    status = (*vm)->Run();
    ended = true;
  });
  WaitForLines(console, 2);
  ASSERT_TRUE((*vm)->Pause().ok());
  (*vm)->RequestShutdown();
  absl::SleepFor(absl::Milliseconds(1800));
  EXPECT_FALSE(ended) << "the grace ran out while the guest was paused";
  const absl::Time resumed = absl::Now();
  ASSERT_TRUE((*vm)->Resume().ok());
  runner.join();
  EXPECT_EQ(status.reason, ExitStatus::Reason::kTimeout) << status.message;
  EXPECT_GE(absl::Now() - resumed, absl::Milliseconds(900)) << "the grace did not restart";
}

TEST(ApiTest, TheTimeoutStandsStillWhilePaused) {
  REQUIRE_KVM();
  Console console;
  VmConfig config = HelloConfig(console, "");
  config.kernel_path = GuestPath("count.elf");
  config.timeout = absl::Seconds(2);
  auto vm = Vm::Create(std::move(config));
  ASSERT_TRUE(vm.ok()) << vm.status();
  ExitStatus status;
  const absl::Time start = absl::Now();
  std::thread runner([&] { status = (*vm)->Run(); });
  WaitForLines(console, 1);
  ASSERT_TRUE((*vm)->Pause().ok());
  absl::SleepFor(absl::Seconds(3));  // longer than the whole timeout
  EXPECT_TRUE((*vm)->paused()) << "the timeout ended a paused guest";
  ASSERT_TRUE((*vm)->Resume().ok());
  runner.join();
  EXPECT_EQ(status.reason, ExitStatus::Reason::kTimeout) << status.message;
  EXPECT_GE(absl::Now() - start, absl::Seconds(5)) << "2 s of running and 3 paused";
}

}  // namespace
}  // namespace vmm::testing
