// A Vm without KVM for tests of what drives one (the API socket's routes):
// it records what it was asked and keeps the state a real one would
// (Pause only while running, Resume only while paused, a stop ends it).
#ifndef VMM_TESTS_FAKES_FAKE_VM_H_
#define VMM_TESTS_FAKES_FAKE_VM_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "vmm/vmm.h"

namespace vmm::testing {

class FakeVm : public Vm {
 public:
  explicit FakeVm(VmConfig config = {}, VmState state = VmState::kRunning)
      : config_(std::move(config)), state_(state) {}

  ExitStatus Run() override { return {}; }
  void ConfineRunThread() override {}
  void RequestStop() override {
    absl::MutexLock lock(&mu_);
    ++stops_;
    state_ = VmState::kEnded;
  }
  void RequestShutdown() override {
    absl::MutexLock lock(&mu_);
    ++shutdowns_;
  }
  absl::Status Pause() override {
    absl::MutexLock lock(&mu_);
    if (state_ != VmState::kRunning) return absl::FailedPreconditionError("the VM is not running");
    state_ = VmState::kPaused;
    return absl::OkStatus();
  }
  absl::Status Resume() override {
    absl::MutexLock lock(&mu_);
    if (state_ != VmState::kPaused) return absl::FailedPreconditionError("the VM is not paused");
    state_ = VmState::kRunning;
    return absl::OkStatus();
  }
  absl::StatusOr<size_t> SendConsoleInput(std::string_view bytes) override {
    return bytes.size();
  }
  bool paused() const override { return state() == VmState::kPaused; }
  // Records the directory; refuses unless paused, as a real one does.
  absl::Status SaveSnapshot(const std::string& dir) override {
    absl::MutexLock lock(&mu_);
    if (state_ != VmState::kPaused) return absl::FailedPreconditionError("not paused");
    snapshots_.push_back(dir);
    return absl::OkStatus();
  }
  std::vector<std::string> snapshots() const {
    absl::MutexLock lock(&mu_);
    return snapshots_;
  }
  VmStats stats() const override {
    absl::MutexLock lock(&mu_);
    return stats_;
  }
  VmState state() const override {
    absl::MutexLock lock(&mu_);
    return state_;
  }
  const VmConfig& config() const override { return config_; }
  std::vector<DeviceInfo> devices() const override {
    absl::MutexLock lock(&mu_);
    return devices_;
  }

  void set_stats(VmStats stats) {
    absl::MutexLock lock(&mu_);
    stats_ = stats;
  }
  void set_devices(std::vector<DeviceInfo> devices) {
    absl::MutexLock lock(&mu_);
    devices_ = std::move(devices);
  }
  int stops() const {
    absl::MutexLock lock(&mu_);
    return stops_;
  }
  int shutdowns() const {
    absl::MutexLock lock(&mu_);
    return shutdowns_;
  }

 private:
  const VmConfig config_;
  mutable absl::Mutex mu_;
  VmState state_ ABSL_GUARDED_BY(mu_);
  VmStats stats_ ABSL_GUARDED_BY(mu_);
  std::vector<DeviceInfo> devices_ ABSL_GUARDED_BY(mu_);
  int stops_ ABSL_GUARDED_BY(mu_) = 0;
  int shutdowns_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> snapshots_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vmm::testing

#endif  // VMM_TESTS_FAKES_FAKE_VM_H_
