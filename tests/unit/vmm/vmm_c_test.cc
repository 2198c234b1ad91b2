// The C API (vmm/vmm_c.h) without a VM: options in the command's syntax,
// error codes and one-line messages, null handling. Booting through it is
// tests/kvm/c_api_test.cc.
#include "vmm/vmm_c.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace {

using ::testing::HasSubstr;

// Takes a message the API allocated.
std::string Take(char* error) {
  std::string s = error ? error : "";
  vmm_string_free(error);
  return s;
}

TEST(CApiTest, VersionIsTheProjects) { EXPECT_STREQ(vmm_version(), VMM_VERSION); }

TEST(CApiTest, OptionsInTheCommandsSyntaxAreAccepted) {
  vmm_config* config = vmm_config_new();
  ASSERT_NE(config, nullptr);
  const char* args[] = {"--kernel", "k.elf", "--memory", "256M", "--cpus", "2",
                        "--disk", "path=a.img,readonly=on", "--timeout", "30"};
  char* error = nullptr;
  EXPECT_EQ(vmm_config_set_args(config, args, 10, &error), VMM_OK) << Take(error);
  EXPECT_EQ(error, nullptr);
  vmm_config_free(config);
}

TEST(CApiTest, ABadOptionIsInvalidArgumentWithOneLineNamingIt) {
  vmm_config* config = vmm_config_new();
  const char* args[] = {"--kernel", "k.elf", "--memory", "lots"};
  char* error = nullptr;
  EXPECT_EQ(vmm_config_set_args(config, args, 4, &error), VMM_INVALID_ARGUMENT);
  const std::string message = Take(error);
  EXPECT_THAT(message, HasSubstr("lots"));
  EXPECT_EQ(message.find('\n'), std::string::npos);
  EXPECT_EQ(message.find("vmm:"), std::string::npos) << "no command prefix in a library";
  vmm_config_free(config);
}

TEST(CApiTest, TheCommandsOwnOptionsAreRefused) {
  vmm_config* config = vmm_config_new();
  for (const char* flag : {"--help", "--version", "--stats"}) {
    const char* args[] = {"--kernel", "k.elf", flag};
    char* error = nullptr;
    EXPECT_EQ(vmm_config_set_args(config, args, 3, &error), VMM_INVALID_ARGUMENT) << flag;
    EXPECT_THAT(Take(error), HasSubstr("command's")) << flag;
  }
  vmm_config_free(config);
}

TEST(CApiTest, NullsAreErrorsNotCrashes) {
  char* error = nullptr;
  EXPECT_EQ(vmm_config_set_args(nullptr, nullptr, 0, &error), VMM_INVALID_ARGUMENT);
  Take(error);
  vmm_config* config = vmm_config_new();
  EXPECT_EQ(vmm_config_set_args(config, nullptr, 2, nullptr), VMM_INVALID_ARGUMENT);
  const char* args[] = {"--kernel", nullptr};
  EXPECT_EQ(vmm_config_set_args(config, args, 2, nullptr), VMM_INVALID_ARGUMENT);
  vmm_vm* vm = nullptr;
  EXPECT_EQ(vmm_vm_create(nullptr, &vm, nullptr), VMM_INVALID_ARGUMENT);
  EXPECT_EQ(vmm_vm_create(config, nullptr, nullptr), VMM_INVALID_ARGUMENT);
  EXPECT_EQ(vm, nullptr);
  EXPECT_EQ(vmm_vm_run(nullptr), 1);
  EXPECT_EQ(vmm_vm_exit_reason(nullptr), VMM_EXIT_NONE);
  EXPECT_STREQ(vmm_vm_exit_message(nullptr), "");
  vmm_vm_request_stop(nullptr);
  vmm_vm_request_shutdown(nullptr);
  EXPECT_EQ(vmm_vm_pause(nullptr, nullptr), VMM_INVALID_ARGUMENT);
  EXPECT_EQ(vmm_vm_snapshot(nullptr, "/tmp/x", nullptr), VMM_INVALID_ARGUMENT);
  EXPECT_EQ(vmm_vm_resume(nullptr, nullptr), VMM_INVALID_ARGUMENT);
  size_t taken = 99;
  EXPECT_EQ(vmm_vm_send_console_input(nullptr, "x", 1, &taken, nullptr), VMM_INVALID_ARGUMENT);
  EXPECT_EQ(taken, 0u);
  EXPECT_EQ(vmm_vm_state(nullptr), VMM_STATE_ENDED);
  vmm_config_set_event_callback(nullptr, nullptr, nullptr);
  vmm_vm_free(nullptr);
  vmm_config_free(nullptr);
  vmm_string_free(nullptr);
  vmm_config_free(config);
}

// The error a create gives is the library's own, as a code a binding can
// map: no kernel (InvalidArgument) everywhere; no /dev/kvm (Unavailable) on
// a host without it, or a missing kernel file (NotFound) on one with it.
TEST(CApiTest, CreateFailuresComeAsCodesAndOneLine) {
  vmm_config* config = vmm_config_new();
  vmm_vm* vm = nullptr;
  char* error = nullptr;
  EXPECT_EQ(vmm_vm_create(config, &vm, &error), VMM_INVALID_ARGUMENT);
  EXPECT_THAT(Take(error), HasSubstr("no kernel"));
  EXPECT_EQ(vm, nullptr);

  const char* args[] = {"--kernel", "/nonexistent/kernel.elf"};
  ASSERT_EQ(vmm_config_set_args(config, args, 2, nullptr), VMM_OK);
  const int kvm = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm >= 0) ::close(kvm);
  const vmm_result result = vmm_vm_create(config, &vm, &error);
  const std::string message = Take(error);
  if (kvm < 0) {
    EXPECT_EQ(result, VMM_UNAVAILABLE) << message;
    EXPECT_THAT(message, HasSubstr("/dev/kvm"));
  } else {
    EXPECT_EQ(result, VMM_NOT_FOUND) << message;
    EXPECT_THAT(message, HasSubstr("/nonexistent/kernel.elf"));
  }
  EXPECT_EQ(vm, nullptr);
  vmm_config_free(config);
}

}  // namespace
