// The embeddable API (vmm/vmm.h): a program runs guests in-process, gets the
// console through a callback and the exit status as a value.
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/kvm/subprocess.h"
#include "vmm/vmm.h"

namespace vmm::testing {
namespace {

using ::testing::HasSubstr;

// Collects console output from a vCPU thread.
struct Console {
  absl::Mutex mu;
  std::string text;
  SerialConfig Config() {
    SerialConfig serial;
    serial.mode = SerialConfig::Mode::kCallback;
    serial.sink = [this](std::string_view bytes) {
      absl::MutexLock lock(&mu);
      text.append(bytes);
    };
    return serial;
  }
  std::string Get() {
    absl::MutexLock lock(&mu);
    return text;
  }
};

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

}  // namespace
}  // namespace vmm::testing
