// Issue 14: the event callback (VmConfig::on_event) — state changes as a
// run goes (running, paused, running, ended with how), a guest panic, and a
// device that a hostile driver puts into DEVICE_NEEDS_RESET while the VM
// runs on.
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "devices/virtio/block/block_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/kvm/guest_console.h"
#include "tests/kvm/subprocess.h"
#include "vmm/vmm.h"

namespace vmm::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Recorder {
  absl::Mutex mu;
  std::vector<VmEvent> events;
  Console console;

  void Attach(VmConfig& config) {
    config.on_event = [this](const VmEvent& event) {
      absl::MutexLock lock(&mu);
      events.push_back(event);
    };
    config.serial = console.Config();
  }
  // "state-changed:running", "guest-panic:ended", ...
  std::vector<std::string> Summary() {
    absl::MutexLock lock(&mu);
    std::vector<std::string> out;
    for (const VmEvent& e : events) {
      out.push_back(std::string(VmEventKindName(e.kind)) + ":" + std::string(VmStateName(e.state)));
    }
    return out;
  }
};

VmConfig SmallConfig(const std::string& guest, const std::string& cmdline = "") {
  VmConfig config;
  config.kernel_path = GuestPath(guest);
  config.memory_bytes = 64 << 20;
  config.cmdline = cmdline;
  config.timeout = absl::Seconds(120);
  return config;
}

TEST(EventsTest, StateChangesFollowTheRun) {
  REQUIRE_KVM();
  Recorder recorder;
  VmConfig config = SmallConfig("count.elf");
  recorder.Attach(config);
  auto vm = Vm::Create(std::move(config));
  ASSERT_TRUE(vm.ok()) << vm.status();
  EXPECT_TRUE(recorder.Summary().empty()) << "nothing happens before Run";
  std::thread runner([&] { (*vm)->Run(); });
  ASSERT_TRUE(recorder.console.WaitFor("count 2"));
  ASSERT_TRUE((*vm)->Pause().ok());
  ASSERT_TRUE((*vm)->Resume().ok());
  EXPECT_FALSE((*vm)->Resume().ok());  // refused: no event
  (*vm)->RequestStop();
  runner.join();
  EXPECT_THAT(recorder.Summary(),
              ElementsAre("state-changed:running", "state-changed:paused",
                          "state-changed:running", "state-changed:ended"));
  absl::MutexLock lock(&recorder.mu);
  EXPECT_THAT(recorder.events.back().detail, HasSubstr("stopped"));
}

TEST(EventsTest, AGuestPanicIsReportedBeforeTheEnd) {
  REQUIRE_KVM();
  Recorder recorder;
  VmConfig config = SmallConfig("hello.elf", "exit=panic");
  recorder.Attach(config);
  auto vm = Vm::Create(std::move(config));
  ASSERT_TRUE(vm.ok()) << vm.status();
  EXPECT_EQ((*vm)->Run().reason, ExitStatus::Reason::kGuestPanic);
  EXPECT_THAT(recorder.Summary(), ElementsAre("state-changed:running", "guest-panic:ended",
                                              "state-changed:ended"));
  absl::MutexLock lock(&recorder.mu);
  EXPECT_THAT(recorder.events.back().detail, HasSubstr("guest-panic"));
}

// evil.elf's desc_loop attack on the victim disk: the device needs a reset,
// the event names it and says why, and the guest runs on to its end.
TEST(EventsTest, ADeviceThatNeedsAResetIsReportedAndTheVmRunsOn) {
  REQUIRE_KVM();
  const std::string dir = ::testing::TempDir();
  std::vector<DiskConfig> disks(2);
  for (int i = 0; i < 2; ++i) {
    disks[i].path = absl::StrCat(dir, "/events-disk", i, ".img");
    std::ofstream(disks[i].path, std::ios::binary | std::ios::trunc)
        << std::string(1 << 20, '\0');
    disks[i].serial = i == 0 ? "victim" : "good";
  }
  Recorder recorder;
  VmConfig config = SmallConfig("evil.elf", "attack=desc_loop victim=pci");
  config.devices.clear();
  for (const DiskConfig& disk : disks) config.devices.push_back(disk);
  recorder.Attach(config);
  auto vm = Vm::Create(std::move(config));
  ASSERT_TRUE(vm.ok()) << vm.status();
  const ExitStatus status = (*vm)->Run();
  EXPECT_EQ(status.reason, ExitStatus::Reason::kDebugExit) << status.message;
  const std::vector<std::string> summary = recorder.Summary();
  ASSERT_GE(summary.size(), 3u);
  EXPECT_EQ(summary[1], "device-needs-reset:running");
  EXPECT_EQ(summary.back(), "state-changed:ended");
  absl::MutexLock lock(&recorder.mu);
  const VmEvent& reset = recorder.events[1];
  EXPECT_THAT(reset.device, HasSubstr("virtio-blk at 0000:00:"));
  EXPECT_FALSE(reset.detail.empty());
  // The guest saw it too, and went on to its end (its data checks need the
  // malicious-driver test's disk patterns; blank disks fail them here).
  EXPECT_THAT(recorder.console.Get(),
              HasSubstr("descriptor loop: victim sets DEVICE_NEEDS_RESET: ok"));
  EXPECT_THAT(recorder.console.Get(), HasSubstr("evil: desc_loop: "));
}

}  // namespace
}  // namespace vmm::testing
