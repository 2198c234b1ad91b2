// The C API (vmm/vmm_c.h) booting a guest, and the examples built against
// the installed library (tests/install/install-test) run on KVM.
#include "vmm/vmm_c.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/kvm/guest_console.h"
#include "tests/kvm/subprocess.h"

namespace vmm::testing {
namespace {

using ::testing::HasSubstr;

struct CollectedBytes {  // what the C output callback was given
  absl::Mutex mu;
  std::string bytes ABSL_GUARDED_BY(mu);
};

void Collect(void* user_data, const char* bytes, size_t length) {
  auto* console = static_cast<CollectedBytes*>(user_data);
  absl::MutexLock lock(&console->mu);
  console->bytes.append(bytes, length);
}

// hello.elf with exit=3: its console through the callback, the exit code
// the command would give ((3 << 1) | 1), the reason; a VM runs once.
TEST(CApiKvmTest, BootsAGuestWithItsConsoleAndExitStatus) {
  REQUIRE_KVM();
  const std::string hello = GuestPath("hello.elf");
  const char* args[] = {"--kernel", hello.c_str(), "--memory", "64M", "--cmdline", "exit=3",
                        "--timeout", "120"};
  vmm_config* config = vmm_config_new();
  char* error = nullptr;
  ASSERT_EQ(vmm_config_set_args(config, args, 8, &error), VMM_OK) << error;
  CollectedBytes console;
  vmm_config_set_serial_output(config, Collect, &console);
  vmm_vm* vm = nullptr;
  ASSERT_EQ(vmm_vm_create(config, &vm, &error), VMM_OK) << error;
  vmm_config_free(config);  // the VM keeps what it needs
  EXPECT_EQ(vmm_vm_exit_reason(vm), VMM_EXIT_NONE);

  EXPECT_EQ(vmm_vm_run(vm), 7);
  EXPECT_EQ(vmm_vm_exit_reason(vm), VMM_EXIT_DEBUG_EXIT);
  {
    absl::MutexLock lock(&console.mu);
    EXPECT_THAT(console.bytes, HasSubstr("Hello from the vmm test guest"));
  }
  EXPECT_EQ(vmm_vm_run(vm), 1) << "a VM runs once";
  EXPECT_EQ(vmm_vm_exit_reason(vm), VMM_EXIT_ERROR);
  EXPECT_THAT(vmm_vm_exit_message(vm), HasSubstr("already run"));
  vmm_vm_free(vm);
}

// Console input through the C API: echo.elf answers a line, then "quit"
// ends it (debug-exit 3: exit code 7).
TEST(CApiKvmTest, ConsoleInputReachesTheGuest) {
  REQUIRE_KVM();
  const std::string echo = GuestPath("echo.elf");
  const char* args[] = {"--kernel", echo.c_str(), "--memory", "64M", "--timeout", "120"};
  vmm_config* config = vmm_config_new();
  char* error = nullptr;
  ASSERT_EQ(vmm_config_set_args(config, args, 6, &error), VMM_OK) << error;
  CollectedBytes console;
  vmm_config_set_serial_output(config, Collect, &console);
  vmm_vm* vm = nullptr;
  ASSERT_EQ(vmm_vm_create(config, &vm, &error), VMM_OK) << error;
  vmm_config_free(config);
  int code = -1;
  std::thread runner([&] { code = vmm_vm_run(vm); });
  auto seen = [&](const char* text) {
    return WaitUntil([&] {
      absl::MutexLock lock(&console.mu);
      return console.bytes.find(text) != std::string::npos;
    });
  };
  EXPECT_TRUE(seen("ready"));
  size_t taken = 0;
  ASSERT_EQ(vmm_vm_send_console_input(vm, "abc\n", 4, &taken, &error), VMM_OK) << error;
  EXPECT_EQ(taken, 4u);
  EXPECT_TRUE(seen("got: abc"));
  ASSERT_EQ(vmm_vm_send_console_input(vm, "quit\n", 5, &taken, &error), VMM_OK) << error;
  runner.join();
  EXPECT_EQ(code, 7);
  vmm_vm_free(vm);
}

// Snapshot and restore through the C API: echo.elf, paused and snapshotted
// after answering a line, is restored from `--restore` in a new VM and
// answers the next line without starting again.
TEST(CApiKvmTest, ASnapshotTakenThroughTheCApiRestoresInANewVm) {
  REQUIRE_KVM();
  const std::string echo = GuestPath("echo.elf");
  const std::string dir = ::testing::TempDir() + "/c-api-snapshot";
  auto start = [](std::vector<std::string> options, CollectedBytes* console) {
    std::vector<const char*> args;
    for (const std::string& o : options) args.push_back(o.c_str());
    vmm_config* config = vmm_config_new();
    vmm_vm* vm = nullptr;
    char* error = nullptr;
    EXPECT_EQ(vmm_config_set_args(config, args.data(), args.size(), &error), VMM_OK) << error;
    vmm_config_set_serial_output(config, Collect, console);
    EXPECT_EQ(vmm_vm_create(config, &vm, &error), VMM_OK) << error;
    vmm_string_free(error);
    vmm_config_free(config);
    return vm;
  };
  auto seen = [](CollectedBytes& console, const char* text) {
    return WaitUntil([&] {
      absl::MutexLock lock(&console.mu);
      return console.bytes.find(text) != std::string::npos;
    });
  };
  size_t taken = 0;
  char* error = nullptr;
  {
    CollectedBytes console;
    vmm_vm* vm = start({"--kernel", echo, "--memory", "64M", "--timeout", "120"}, &console);
    ASSERT_NE(vm, nullptr);
    std::thread runner([&] { vmm_vm_run(vm); });
    EXPECT_TRUE(seen(console, "ready"));
    EXPECT_EQ(vmm_vm_snapshot(vm, dir.c_str(), &error), VMM_FAILED_PRECONDITION)
        << "a running VM";
    vmm_string_free(error);
    error = nullptr;
    ASSERT_EQ(vmm_vm_send_console_input(vm, "abc\n", 4, &taken, nullptr), VMM_OK);
    EXPECT_TRUE(seen(console, "got: abc"));
    ASSERT_EQ(vmm_vm_pause(vm, nullptr), VMM_OK);
    EXPECT_EQ(vmm_vm_snapshot(vm, dir.c_str(), &error), VMM_OK) << error;
    vmm_vm_request_stop(vm);
    runner.join();
    vmm_vm_free(vm);
  }
  CollectedBytes console;
  vmm_vm* vm = start({"--restore", dir, "--memory", "64M", "--timeout", "120"}, &console);
  ASSERT_NE(vm, nullptr);
  int code = -1;
  std::thread runner([&] { code = vmm_vm_run(vm); });
  ASSERT_EQ(vmm_vm_send_console_input(vm, "def\n", 4, &taken, nullptr), VMM_OK);
  EXPECT_TRUE(seen(console, "got: def"));
  ASSERT_EQ(vmm_vm_send_console_input(vm, "quit\n", 5, &taken, nullptr), VMM_OK);
  runner.join();
  EXPECT_EQ(code, 7);
  absl::MutexLock lock(&console.mu);
  EXPECT_THAT(console.bytes, ::testing::Not(HasSubstr("ready"))) << "it started again";
  vmm_vm_free(vm);
}

// The event callback through the C API: hello.elf panics (pvpanic).
struct Events {
  absl::Mutex mu;
  std::vector<std::string> seen;
};
void Record(void* data, vmm_event_kind kind, vmm_state state, const char* device,
            const char* detail) {
  auto* events = static_cast<Events*>(data);
  absl::MutexLock lock(&events->mu);
  events->seen.push_back(absl::StrCat(kind, "/", state, "/", device, "/", detail));
}

TEST(CApiKvmTest, EventsComeToTheCallback) {
  REQUIRE_KVM();
  const std::string hello = GuestPath("hello.elf");
  const char* args[] = {"--kernel", hello.c_str(), "--memory", "64M", "--cmdline", "exit=panic",
                        "--timeout", "120", "--serial", "off"};
  vmm_config* config = vmm_config_new();
  ASSERT_EQ(vmm_config_set_args(config, args, 10, nullptr), VMM_OK);
  Events events;
  vmm_config_set_event_callback(config, Record, &events);
  vmm_vm* vm = nullptr;
  ASSERT_EQ(vmm_vm_create(config, &vm, nullptr), VMM_OK);
  vmm_config_free(config);
  EXPECT_EQ(vmm_vm_state(vm), VMM_STATE_CREATED);
  EXPECT_EQ(vmm_vm_run(vm), 4);
  EXPECT_EQ(vmm_vm_state(vm), VMM_STATE_ENDED);
  absl::MutexLock lock(&events.mu);
  ASSERT_EQ(events.seen.size(), 3u);
  EXPECT_EQ(events.seen[0], "1/1//");
  EXPECT_THAT(events.seen[1], ::testing::StartsWith("2/3//"));
  EXPECT_THAT(events.seen[2], ::testing::StartsWith("1/3//guest-panic"));
  vmm_vm_free(vm);
}

// A VM of halt.elf (64M, no serial) with `extra` options; null on failure.
vmm_vm* CreateHaltVm(std::vector<std::string> extra = {}) {
  std::vector<std::string> options = {"--kernel", GuestPath("halt.elf"), "--memory", "64M",
                                      "--serial", "off"};
  options.insert(options.end(), extra.begin(), extra.end());
  std::vector<const char*> args;
  for (const std::string& o : options) args.push_back(o.c_str());
  vmm_config* config = vmm_config_new();
  vmm_vm* vm = nullptr;
  if (vmm_config_set_args(config, args.data(), args.size(), nullptr) != VMM_OK ||
      vmm_vm_create(config, &vm, nullptr) != VMM_OK) {
    vm = nullptr;
  }
  vmm_config_free(config);
  return vm;
}

// A guest without an ACPI power button (--acpi off) is stopped at once.
TEST(CApiKvmTest, AShutdownRequestWithoutAButtonStopsTheGuest) {
  REQUIRE_KVM();
  vmm_vm* vm = CreateHaltVm({"--acpi", "off"});
  ASSERT_NE(vm, nullptr);
  vmm_vm_request_shutdown(vm);
  EXPECT_EQ(vmm_vm_run(vm), 130);
  EXPECT_EQ(vmm_vm_exit_reason(vm), VMM_EXIT_STOPPED);
  vmm_vm_free(vm);
}

TEST(CApiKvmTest, AStopBeforeRunEndsTheRunWith130) {
  REQUIRE_KVM();
  vmm_vm* vm = CreateHaltVm();
  ASSERT_NE(vm, nullptr);
  char* error = nullptr;
  EXPECT_EQ(vmm_vm_pause(vm, &error), VMM_FAILED_PRECONDITION) << "not running yet";
  EXPECT_THAT(error, HasSubstr("not running"));
  vmm_string_free(error);
  vmm_vm_request_stop(vm);
  EXPECT_EQ(vmm_vm_run(vm), 130);
  EXPECT_EQ(vmm_vm_exit_reason(vm), VMM_EXIT_STOPPED);
  vmm_vm_free(vm);
}

// The install test's binaries (C++, C, C linked with libvmm.a), built with
// pkg-config against `meson install`'s tree, boot hello.elf here: on the
// host's KVM, and in the nested lane's L1 on kvm-amd.
TEST(InstalledLibraryTest, ExamplesBuiltAgainstTheInstallBootAGuest) {
  REQUIRE_KVM();
  const char* dir = std::getenv("VMM_INSTALL_TEST_DIR");
  std::string libdir;
  if (dir != nullptr) {
    // When the unit suite runs beside this one, the install test may still
    // be building (its tree exists, its closing "libdir" not yet).
    for (int i = 0; i < 120 && ::access((std::string(dir) + "/root").c_str(), F_OK) == 0 &&
                    ::access((std::string(dir) + "/libdir").c_str(), F_OK) != 0;
         ++i) {
      ::usleep(500000);
    }
    std::getline(std::ifstream(std::string(dir) + "/libdir"), libdir);
  }
  if (libdir.empty()) {
    std::fprintf(stderr, "\n*** SKIPPED: no install test output (VMM_INSTALL_TEST_DIR=%s); "
                         "the unit suite's `install` test makes it ***\n\n", dir ? dir : "");
    GTEST_SKIP() << "SKIPPED: the install test has not run";
  }
  for (const char* example : {"run_guest", "run_guest_c", "run_guest_c_static"}) {
    std::vector<std::string> argv = {"/usr/bin/env", "LD_LIBRARY_PATH=" + libdir,
                                     std::string(dir) + "/bin/" + example, GuestPath("hello.elf")};
    // run_guest takes a command line, the C examples vmm's options.
    if (std::string(example) != "run_guest") argv.push_back("--cmdline");
    argv.push_back("exit=3");
    ProcessResult r = RunProcess(argv, absl::Seconds(120));
    EXPECT_EQ(r.exit_code, 7) << example << ": " << r.err;
    EXPECT_THAT(r.out, HasSubstr("Hello from the vmm test guest")) << example;
  }
}

}  // namespace
}  // namespace vmm::testing
