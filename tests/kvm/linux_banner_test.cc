// Debian's own bzImage boots through the 64-bit boot protocol far enough to
// print its banner. (The rest of a stock kernel's boot takes minutes under
// this platform's emulator: that is the Linux boot suite's job.)
#include <sys/stat.h>

#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/kvm/subprocess.h"
#include "vmm/vmm.h"

namespace vmm::testing {
namespace {

TEST(LinuxBannerTest, DebianBzImagePrintsLinuxVersionOnTheSerialPort) {
  REQUIRE_KVM();
  const char* kernel = getenv("VMM_LINUX_KERNEL");
  struct stat st;
  if (kernel == nullptr || stat(kernel, &st) != 0) {
    GTEST_SKIP() << "SKIPPED: no Debian kernel at build/linux/vmlinuz "
                    "(run tests/linux/fetch-kernel)";
  }
  absl::Mutex mu;
  std::string console;
  std::unique_ptr<Vm>* running = nullptr;
  VmConfig config;
  config.kernel_path = kernel;
  config.memory_bytes = 512 << 20;
  config.cmdline = "earlyprintk=serial,ttyS0,115200 console=ttyS0 noxsave nosmap";
  config.timeout = absl::Seconds(180);
  config.serial.mode = SerialConfig::Mode::kCallback;
  bool seen = false;
  config.serial.sink = [&](std::string_view bytes) {
    absl::MutexLock lock(&mu);
    console.append(bytes);
    if (!seen && console.find("Linux version") != std::string::npos) {
      seen = true;
      (*running)->RequestStop();
    }
  };
  auto vm = Vm::Create(std::move(config));
  ASSERT_TRUE(vm.ok()) << vm.status();
  running = &*vm;
  ExitStatus status = (*vm)->Run();
  absl::MutexLock lock(&mu);
  EXPECT_EQ(status.reason, ExitStatus::Reason::kStopped) << status.message << "\n" << console;
  EXPECT_THAT(console, ::testing::HasSubstr("Linux version"));
}

}  // namespace
}  // namespace vmm::testing
