// A VirtioDevice for transport tests: configurable type, features, queues
// and config bytes; records Activate / ProcessQueue / Reset / config writes;
// lets the test raise NotifyUsed, NotifyConfigChanged and DeviceNeedsReset
// through the context it was activated with. With `complete_chains`, each
// ProcessQueue returns every available chain as used (0 bytes written) and
// notifies like a real device, so a test can drive the full data path with
// FakeVirtqueueDriver. Thread-safe.
#ifndef VMM_TESTS_FAKES_FAKE_VIRTIO_DEVICE_H_
#define VMM_TESTS_FAKES_FAKE_VIRTIO_DEVICE_H_

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "devices/virtio/virtio_device.h"

namespace vmm::testing {

struct FakeVirtioDeviceOptions {
  uint32_t type = 4;  // VIRTIO_ID_RNG
  uint64_t features = kVirtioFVersion1 | kVirtioFEventIdx | kVirtioFIndirectDesc;
  std::vector<uint16_t> queue_max_sizes = {16, 16};
  std::vector<uint8_t> config;            // readable and writable config bytes
  absl::Status activate_result;           // what Activate returns
  bool complete_chains = false;           // ProcessQueue completes available chains
  std::vector<uint16_t> backend_queues;   // queues run in a back-end (QueueInBackend)
  // Snapshot() saves the queues' positions and this state (nullopt: the
  // default refusal); RestoreSnapshot records what it was given.
  std::optional<std::string> snapshot_state;
};

class FakeVirtioDevice : public VirtioDevice {
 public:
  using Options = FakeVirtioDeviceOptions;

  // What the last Activate received.
  struct ActivationRecord {
    const GuestMemory* memory = nullptr;
    uint64_t features = 0;
    std::vector<VirtqueueConfig> queue_configs;
    std::vector<bool> queue_enabled;
    std::vector<int> kick_fds;
    std::vector<int> call_fds;
  };

  explicit FakeVirtioDevice(Options options = {}) : options_(std::move(options)) {
    config_ = options_.config;
  }

  uint32_t device_type() const override { return options_.type; }
  uint64_t device_features() const override { return options_.features; }
  std::vector<uint16_t> queue_max_sizes() const override { return options_.queue_max_sizes; }
  bool QueueInBackend(uint16_t queue) const override {
    return std::find(options_.backend_queues.begin(), options_.backend_queues.end(), queue) !=
           options_.backend_queues.end();
  }

  void ReadConfig(uint64_t offset, absl::Span<uint8_t> data) override {
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < data.size(); ++i) {
      data[i] = offset < config_.size() && i < config_.size() - offset ? config_[offset + i] : 0;
    }
  }
  void WriteConfig(uint64_t offset, absl::Span<const uint8_t> data) override {
    absl::MutexLock lock(&mu_);
    config_writes_.push_back({offset, std::vector<uint8_t>(data.begin(), data.end())});
    for (size_t i = 0; i < data.size(); ++i) {
      if (offset < config_.size() && i < config_.size() - offset) config_[offset + i] = data[i];
    }
  }

  absl::Status Activate(VirtioActivation activation) override {
    absl::MutexLock lock(&mu_);
    ++activations_;
    ActivationRecord record{activation.memory, activation.features, {}, activation.queue_enabled,
                            activation.kick_fds, activation.call_fds};
    for (const Virtqueue& q : activation.queues) record.queue_configs.push_back(q.config());
    last_activation_ = std::move(record);
    if (!options_.activate_result.ok()) return options_.activate_result;
    memory_ = activation.memory;
    context_ = activation.context;
    queues_ = std::move(activation.queues);
    queue_enabled_ = std::move(activation.queue_enabled);
    return absl::OkStatus();
  }

  void ProcessQueue(uint16_t queue) override {
    absl::MutexLock lock(&mu_);
    processed_.push_back(queue);
    if (context_ == nullptr) ++processed_while_inactive_;
    if (!options_.complete_chains || context_ == nullptr || queue >= queues_.size()) return;
    Virtqueue& vq = queues_[queue];
    bool used = false;
    while (true) {
      auto chain = vq.PopChain(*memory_);
      if (!chain.ok()) {
        context_->DeviceNeedsReset(chain.status().message());
        return;
      }
      if (!chain->has_value()) break;
      if (!vq.AddUsed(std::move(**chain), 0, *memory_).ok()) return;
      used = true;
    }
    if (!used) return;
    auto notify = vq.ShouldNotify(*memory_);
    if (notify.ok() && *notify) context_->NotifyUsed(queue);
  }

  absl::StatusOr<VirtioDeviceSnapshot> Snapshot() const override {
    if (!options_.snapshot_state) return VirtioDevice::Snapshot();
    absl::MutexLock lock(&mu_);
    VirtioDeviceSnapshot snapshot{{}, *options_.snapshot_state};
    for (const Virtqueue& q : queues_) snapshot.queues.push_back(q.position());
    return snapshot;
  }
  absl::Status RestoreSnapshot(absl::string_view state) override {
    absl::MutexLock lock(&mu_);
    restored_state_ = std::string(state);
    return absl::OkStatus();
  }
  std::optional<std::string> restored_state() const {
    absl::MutexLock lock(&mu_);
    return restored_state_;
  }

  void Reset() override {
    absl::MutexLock lock(&mu_);
    ++resets_;
    context_ = nullptr;
    memory_ = nullptr;
    queues_.clear();
    queue_enabled_.clear();
  }

  // --- Acting as the device ---

  // False if the device is not active.
  bool RaiseUsed(uint16_t queue) {
    absl::MutexLock lock(&mu_);
    if (context_ == nullptr) return false;
    context_->NotifyUsed(queue);
    return true;
  }
  // Changes config byte `offset` (growing the config if needed) and, if
  // active, tells the transport.
  void ChangeConfig(uint64_t offset, uint8_t value) {
    absl::MutexLock lock(&mu_);
    if (config_.size() <= offset) config_.resize(offset + 1);
    config_[offset] = value;
    if (context_ != nullptr) context_->NotifyConfigChanged();
  }
  bool RaiseNeedsReset(absl::string_view why) {
    absl::MutexLock lock(&mu_);
    if (context_ == nullptr) return false;
    context_->DeviceNeedsReset(why);
    return true;
  }

  // --- Inspection ---

  int activations() const {
    absl::MutexLock lock(&mu_);
    return activations_;
  }
  int resets() const {
    absl::MutexLock lock(&mu_);
    return resets_;
  }
  bool active() const {
    absl::MutexLock lock(&mu_);
    return context_ != nullptr;
  }
  VirtioDeviceContext* context() const {
    absl::MutexLock lock(&mu_);
    return context_;
  }
  std::optional<ActivationRecord> last_activation() const {
    absl::MutexLock lock(&mu_);
    return last_activation_;
  }
  // Every ProcessQueue call, in order.
  std::vector<uint16_t> processed() const {
    absl::MutexLock lock(&mu_);
    return processed_;
  }
  // ProcessQueue calls that arrived while the device was not active (a
  // notify racing a reset; the device ignores them).
  int processed_while_inactive() const {
    absl::MutexLock lock(&mu_);
    return processed_while_inactive_;
  }
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> config_writes() const {
    absl::MutexLock lock(&mu_);
    return config_writes_;
  }

 private:
  const Options options_;
  mutable absl::Mutex mu_;
  std::vector<uint8_t> config_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> config_writes_ ABSL_GUARDED_BY(mu_);
  int activations_ ABSL_GUARDED_BY(mu_) = 0;
  int resets_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<ActivationRecord> last_activation_ ABSL_GUARDED_BY(mu_);
  const GuestMemory* memory_ ABSL_GUARDED_BY(mu_) = nullptr;
  VirtioDeviceContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::vector<Virtqueue> queues_ ABSL_GUARDED_BY(mu_);
  std::vector<bool> queue_enabled_ ABSL_GUARDED_BY(mu_);
  std::vector<uint16_t> processed_ ABSL_GUARDED_BY(mu_);
  int processed_while_inactive_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<std::string> restored_state_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vmm::testing

#endif  // VMM_TESTS_FAKES_FAKE_VIRTIO_DEVICE_H_
