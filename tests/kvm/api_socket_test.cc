// Issue 14: the API socket end to end — the `vmm` binary with --api-socket
// (its seccomp filters enforced) driven by `vmmctl`, as a user would: a
// counting guest stops counting when paused through the socket and goes on
// when resumed; info and counters describe the running VM; shutdown presses
// the power button (the test guest ignores it: the grace then stops it,
// exit 124); stop ends it (exit 130) and the socket is gone afterwards.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/kvm/guest_console.h"
#include "tests/kvm/subprocess.h"

namespace vmm::testing {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

// vmmctl is built next to vmm.
std::string VmmctlBinary() {
  const std::string vmm = VmmBinary();
  return vmm.substr(0, vmm.rfind('/') + 1) + "vmmctl";
}

ProcessResult Ctl(const std::string& socket, const std::string& command,
                  const std::string& argument = "") {
  std::vector<std::string> argv = {VmmctlBinary(), socket, command};
  if (!argument.empty()) argv.push_back(argument);
  return RunProcess(argv, absl::Seconds(60));
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

size_t Lines(const std::string& path) {
  const std::string text = ReadFile(path);
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

struct CountingVmm {
  std::string socket = ::testing::TempDir() + "/api.sock";
  std::string serial = ::testing::TempDir() + "/count.log";
  std::unique_ptr<BackgroundProcess> vmm;

  explicit CountingVmm(std::vector<std::string> extra = {}) {
    ::unlink(serial.c_str());
    std::vector<std::string> argv = {VmmBinary(), "--kernel", GuestPath("count.elf"),
                                     "--serial", "file=" + serial, "--api-socket", socket,
                                     "--timeout", "300"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    vmm = std::make_unique<BackgroundProcess>(argv);
  }
  bool Counting(size_t lines) {
    return WaitUntil([&] { return Lines(serial) >= lines; });
  }
};

TEST(ApiSocketTest, PauseResumeInfoCountersAndStopThroughVmmctl) {
  REQUIRE_KVM();
  CountingVmm run;
  ASSERT_GT(run.vmm->pid(), 0);
  ASSERT_TRUE(run.Counting(3)) << "the guest never counted";

  ProcessResult info = Ctl(run.socket, "info");
  ASSERT_EQ(info.exit_code, 0) << info.err;
  Json json = Json::parse(info.out, nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << info.out;
  EXPECT_EQ(json["state"], "running");
  EXPECT_EQ(json["vcpus"], 1);
  EXPECT_THAT(json["config"]["kernel"].get<std::string>(), HasSubstr("count.elf"));
  ASSERT_FALSE(json["devices"].empty()) << "the default virtio-rng is missing";
  EXPECT_EQ(json["devices"][0]["kind"], "virtio-rng");

  ProcessResult paused = Ctl(run.socket, "pause");
  ASSERT_EQ(paused.exit_code, 0) << paused.err;
  EXPECT_EQ(paused.out, "");
  const size_t at_pause = Lines(run.serial);
  absl::SleepFor(absl::Milliseconds(700));
  EXPECT_EQ(Lines(run.serial), at_pause) << "the guest counted while paused";
  json = Json::parse(Ctl(run.socket, "info").out, nullptr, false);
  EXPECT_EQ(json["state"], "paused");
  ProcessResult again = Ctl(run.socket, "pause");
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.err, HasSubstr("already paused"));
  EXPECT_THAT(again.err, HasSubstr("409"));

  ProcessResult counters = Ctl(run.socket, "counters");
  ASSERT_EQ(counters.exit_code, 0) << counters.err;
  json = Json::parse(counters.out, nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << counters.out;
  EXPECT_GT(json["vm"]["pio_exits"].get<uint64_t>(), at_pause) << "each count line is PIO";
  EXPECT_GE(json["vm"]["paused_seconds"].get<double>(), 0.7);
  ASSERT_FALSE(json["devices"].empty());
  EXPECT_TRUE(json["devices"][0]["counters"].contains("requests")) << counters.out;

  ASSERT_EQ(Ctl(run.socket, "resume").exit_code, 0);
  EXPECT_TRUE(run.Counting(at_pause + 3)) << "the guest did not count on after resume";

  ProcessResult stop = Ctl(run.socket, "stop");
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
  const int status = run.vmm->Wait();
  ASSERT_TRUE(WIFEXITED(status)) << "vmm died by a signal (SIGSYS?): " << status << run.vmm->err();
  EXPECT_EQ(WEXITSTATUS(status), 130) << run.vmm->err();
  EXPECT_NE(::access(run.socket.c_str(), F_OK), 0) << "the API socket outlived vmm";
  EXPECT_EQ(Ctl(run.socket, "info").exit_code, 3) << "no VMM: vmmctl says it cannot reach it";
}

TEST(ApiSocketTest, ShutdownPressesThePowerButtonThenTheGraceStops) {
  REQUIRE_KVM();
  CountingVmm run({"--shutdown-grace", "1"});
  ASSERT_TRUE(run.Counting(2));
  ProcessResult shutdown = Ctl(run.socket, "shutdown");
  EXPECT_EQ(shutdown.exit_code, 0) << shutdown.err;
  const int status = run.vmm->Wait();
  ASSERT_TRUE(WIFEXITED(status)) << status << run.vmm->err();
  EXPECT_EQ(WEXITSTATUS(status), 124) << run.vmm->err();
  EXPECT_THAT(run.vmm->err(), HasSubstr("did not power off within its 1s shutdown grace"));
}

TEST(ApiSocketTest, BadRequestsGetOneLineErrorsAndTheVmRunsOn) {
  REQUIRE_KVM();
  CountingVmm run;
  ASSERT_TRUE(run.Counting(2));
  ProcessResult unknown = Ctl(run.socket, "reboot");
  EXPECT_EQ(unknown.exit_code, 2) << "vmmctl refuses commands it does not know";
  ProcessResult resume = Ctl(run.socket, "resume");
  EXPECT_EQ(resume.exit_code, 1);
  EXPECT_THAT(resume.err, HasSubstr("not paused"));
  EXPECT_EQ(std::count(resume.err.begin(), resume.err.end(), '\n'), 1) << resume.err;
  const size_t lines = Lines(run.serial);
  EXPECT_TRUE(run.Counting(lines + 2)) << "the guest stopped after a refused request";
  ::kill(run.vmm->pid(), SIGINT);
  EXPECT_EQ(WEXITSTATUS(run.vmm->Wait()), 130);
}

// Issue 15 through the binary: vmmctl snapshots the paused guest (on the
// API thread, its filter enforced), and `vmm --restore` counts on from
// there.
TEST(ApiSocketTest, SnapshotThroughTheSocketAndRestoreWithTheBinary) {
  REQUIRE_KVM();
  const std::string dir = ::testing::TempDir() + "/api-snapshot";
  size_t last = 0;
  {
    CountingVmm run({"--memory", "64M"});
    ASSERT_TRUE(run.Counting(5));
    ProcessResult refused = Ctl(run.socket, "snapshot", dir);
    EXPECT_EQ(refused.exit_code, 1) << "a running VM is refused";
    EXPECT_THAT(refused.err, HasSubstr("paused"));
    ASSERT_EQ(Ctl(run.socket, "pause").exit_code, 0);
    ProcessResult saved = Ctl(run.socket, "snapshot", dir);
    ASSERT_EQ(saved.exit_code, 0) << saved.err;
    last = Lines(run.serial);
    ProcessResult stop = Ctl(run.socket, "stop");
    const int status = run.vmm->Wait();
    ASSERT_EQ(stop.exit_code, 0) << stop.err << "; vmm: " << status << " " << run.vmm->err();
    ASSERT_TRUE(WIFEXITED(status)) << "vmm died (SIGSYS?): " << status << run.vmm->err();
  }
  const std::string serial = ::testing::TempDir() + "/restored.log";
  ::unlink(serial.c_str());
  BackgroundProcess restored({VmmBinary(), "--kernel", GuestPath("count.elf"), "--memory", "64M",
                              "--serial", "file=" + serial, "--restore", dir, "--timeout", "300"});
  ASSERT_TRUE(WaitUntil([&] { return Lines(serial) >= 3; })) << ReadFile(serial);
  ::kill(restored.pid(), SIGINT);
  EXPECT_EQ(WEXITSTATUS(restored.Wait()), 130) << restored.err();
  const std::string text = ReadFile(serial);
  EXPECT_THAT(text, ::testing::Not(HasSubstr("count 1\n"))) << "it booted afresh";
  EXPECT_THAT(text, HasSubstr(absl::StrCat("count ", last + 2, "\n")))
      << "it did not count on from " << last << ":\n" << text;
}

TEST(ApiSocketTest, ALiveApiSocketIsNotTakenOver) {
  REQUIRE_KVM();
  CountingVmm first;
  ASSERT_TRUE(first.Counting(1));
  ProcessResult second =
      RunProcess({VmmBinary(), "--kernel", GuestPath("hello.elf"), "--api-socket", first.socket},
                 absl::Seconds(60));
  EXPECT_EQ(second.exit_code, 2) << "bad input, as for any socket in use: " << second.err;
  EXPECT_THAT(second.err, HasSubstr("in use by another process"));
  EXPECT_EQ(std::count(second.err.begin(), second.err.end(), '\n'), 1) << second.err;
  EXPECT_EQ(Ctl(first.socket, "info").exit_code, 0) << "the first VM lost its API socket";
  ::kill(first.vmm->pid(), SIGINT);
  EXPECT_EQ(WEXITSTATUS(first.vmm->Wait()), 130);
}

}  // namespace
}  // namespace vmm::testing
