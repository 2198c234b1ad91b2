// An MsiVectorSink that records every Configure and Trigger call, for tests
// of devices with MSI-X (Msix, the virtio-pci transport).
#ifndef VMM_TESTS_FAKES_FAKE_MSI_SINK_H_
#define VMM_TESTS_FAKES_FAKE_MSI_SINK_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "devices/interrupt.h"

namespace vmm {

class FakeMsiSink : public MsiVectorSink {
 public:
  struct ConfigureCall {
    uint16_t index = 0;
    MsiMessage message;
    bool masked = true;
    bool operator==(const ConfigureCall&) const = default;
  };

  void Configure(uint16_t index, const MsiMessage& message, bool masked) override {
    absl::MutexLock lock(&mu_);
    configures_.push_back({index, message, masked});
    state_[index] = {index, message, masked};
  }
  void Trigger(uint16_t index) override {
    absl::MutexLock lock(&mu_);
    triggers_.push_back(index);
  }

  int DirectTriggerFd(uint16_t index) const override {
    absl::MutexLock lock(&mu_);
    auto it = direct_fds_.find(index);
    return it == direct_fds_.end() ? -1 : it->second;
  }
  // What DirectTriggerFd(index) returns from now on (-1 when never set).
  void SetDirectTriggerFd(uint16_t index, int fd) {
    absl::MutexLock lock(&mu_);
    direct_fds_[index] = fd;
  }

  // Every Configure call since construction or ClearHistory(), in order.
  std::vector<ConfigureCall> configures() const {
    absl::MutexLock lock(&mu_);
    return configures_;
  }
  // Every Trigger call since construction or ClearHistory(), in order.
  std::vector<uint16_t> triggers() const {
    absl::MutexLock lock(&mu_);
    return triggers_;
  }
  // How many times `index` was triggered since construction or ClearHistory().
  size_t trigger_count(uint16_t index) const {
    absl::MutexLock lock(&mu_);
    size_t n = 0;
    for (uint16_t t : triggers_) n += (t == index);
    return n;
  }
  // The last Configure for `index` (kept across ClearHistory()): what the
  // VMM's route for it would be now. nullopt if never configured.
  std::optional<ConfigureCall> route(uint16_t index) const {
    absl::MutexLock lock(&mu_);
    auto it = state_.find(index);
    if (it == state_.end()) return std::nullopt;
    return it->second;
  }
  void ClearHistory() {
    absl::MutexLock lock(&mu_);
    configures_.clear();
    triggers_.clear();
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<ConfigureCall> configures_ ABSL_GUARDED_BY(mu_);
  std::vector<uint16_t> triggers_ ABSL_GUARDED_BY(mu_);
  std::map<uint16_t, ConfigureCall> state_ ABSL_GUARDED_BY(mu_);
  std::map<uint16_t, int> direct_fds_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vmm

#endif  // VMM_TESTS_FAKES_FAKE_MSI_SINK_H_
