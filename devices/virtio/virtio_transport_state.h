// The part of a virtio transport both virtio-pci and virtio-mmio share: the
// device status machine, feature negotiation, the per-queue registers, the
// interrupt status, and the device's VirtioDeviceContext. Each transport maps
// its own register layout onto VirtioRegister and delivers interrupts its own
// way (VirtioInterruptDelivery); the rules live here, once.
//
// Rules (virtio 1.2 sections 2.1, 3.1, 4.1.4.3, 4.2.2):
// - Status bits are only ever added (writing 0 resets). ACKNOWLEDGE, DRIVER,
//   FEATURES_OK, DRIVER_OK latch in that order only; DEVICE_NEEDS_RESET is
//   the device's bit and ignored when the driver writes it.
// - FEATURES_OK does not latch (the driver reads it back and gives up) if the
//   driver acknowledged a feature that was not offered or not VERSION_1.
//   Driver feature writes after FEATURES_OK are ignored.
// - A queue may be enabled between FEATURES_OK and DRIVER_OK only; its size
//   must be a power of two <= the maximum and its rings valid guest memory
//   (Virtqueue::Create). An invalid queue stays disabled and the device
//   enters DEVICE_NEEDS_RESET. Queue registers of an enabled queue are frozen.
// - DRIVER_OK activates the device (VirtioDevice::Activate, with all queues);
//   status 0 resets it (VirtioDevice::Reset), clears every register and
//   unwires the queues (activation hook with false).
// - After DEVICE_NEEDS_RESET nothing reaches the device (notifies are
//   dropped) and no used-buffer interrupt reaches the driver until reset.
//
// Threads: registers are accessed from vCPU threads, HandleQueueNotify runs on
// the event-loop thread (or a vCPU thread for a notify register write), and
// the device calls its context from anywhere. Three locks, always taken in
// this order:
//   status_mu_  serialises status writes with each other and with the
//               activation hook (so hooks see activate/reset in order);
//   device_mu_  serialises VirtioDevice::Activate/Reset calls (ProcessQueue
//               is not under it: the device's own lock is the only one held
//               on the data path);
//   mu_         the registers; interrupt delivery runs under it.
// The device's context calls (NotifyUsed, ...) take only mu_, so a device may
// call them from Activate or ProcessQueue. The hook runs holding status_mu_
// only: it may call HandleQueueNotify and the accessors, not write registers.
#ifndef VMM_DEVICES_VIRTIO_VIRTIO_TRANSPORT_STATE_H_
#define VMM_DEVICES_VIRTIO_VIRTIO_TRANSPORT_STATE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "base/eventfd.h"
#include "base/state_file.h"
#include "base/guest_memory.h"
#include "devices/virtio/virtio_device.h"

namespace vmm {

// "No MSI-X vector": no interrupt for that queue / for config changes.
inline constexpr uint16_t kVirtioMsiNoVector = 0xffff;
// Interrupt status bits (PCI ISR, MMIO InterruptStatus).
inline constexpr uint8_t kVirtioInterruptUsedBuffer = 1;
inline constexpr uint8_t kVirtioInterruptConfigChange = 2;

// The registers both transports have (named after virtio_pci_common_cfg).
// Queue registers act on the queue selected by kQueueSelect.
enum class VirtioRegister {
  kDeviceFeatureSelect,
  kDeviceFeature,        // read-only: 32 bits of the offered features
  kDriverFeatureSelect,
  kDriverFeature,
  kConfigMsixVector,     // PCI only
  kNumQueues,            // read-only
  kDeviceStatus,
  kConfigGeneration,     // read-only
  kQueueSelect,
  kQueueSizeMax,         // read-only (MMIO QueueNumMax)
  kQueueSize,
  kQueueMsixVector,      // PCI only
  kQueueEnable,          // PCI queue_enable, MMIO QueueReady
  kQueueNotifyOff,       // read-only: the queue index
  kQueueDescLow,
  kQueueDescHigh,
  kQueueDriverLow,
  kQueueDriverHigh,
  kQueueDeviceLow,
  kQueueDeviceHigh,
};

// How a transport raises interrupts. Called with the transport's register
// lock held: must not call back into VirtioTransportState.
class VirtioInterruptDelivery {
 public:
  virtual ~VirtioInterruptDelivery() = default;
  // True while the driver has MSI-X enabled (never, for virtio-mmio).
  virtual bool MsixEnabled() = 0;
  // Sends MSI-X vector `vector` (validated: < the vector count).
  virtual void SendMsix(uint16_t vector) = 0;
  // Pin-based delivery: the interrupt status is now `status`; `raised` is
  // true when a new event just set a bit (false: the driver cleared bits).
  virtual void InterruptStatusChanged(uint8_t status, bool raised) = 0;
  // An eventfd that raises MSI-X vector `vector` when written, without the
  // VMM (MsiVectorSink::DirectTriggerFd); -1 if there is none.
  virtual int DirectMsixFd(uint16_t /*vector*/) { return -1; }
};

// What the transport counts, for the VMM's statistics and tests.
struct VirtioTransportCounters {
  // Queue notifies that reached the notify register in user space (no
  // ioeventfd wired, or a write the ioeventfd did not match): the slow path.
  uint64_t notify_exits = 0;
  // Notifies for a queue that is not live (not enabled, device not active,
  // or in DEVICE_NEEDS_RESET): dropped.
  uint64_t notifies_dropped = 0;
  uint64_t used_interrupts = 0;    // used-buffer interrupts sent (MSI-X or pin)
  uint64_t config_interrupts = 0;  // configuration-change interrupts sent
  uint64_t needs_reset = 0;        // times the device entered DEVICE_NEEDS_RESET
  uint64_t features_ok_refused = 0;
  uint64_t queue_enable_refused = 0;
  uint64_t bad_accesses = 0;       // wrong width/offset, writes to read-only registers
  uint64_t activations = 0;
  uint64_t resets = 0;
};

class VirtioTransportState final : private VirtioDeviceContext {
 public:
  // Called after the device was activated (true) and after a reset of an
  // activated device (false).
  using ActivationHook = std::function<void(bool active)>;

  // Bounds on what a device may declare (VMM invariants, not guest input).
  static constexpr size_t kMaxQueues = 256;

  // `memory` and `delivery` must outlive the state. `msix_vectors` is the
  // size of the transport's MSI-X table (0: no MSI-X). Creates one notify
  // EventFd per queue, and one call EventFd per queue the device runs in a
  // back-end (VirtioDevice::QueueInBackend).
  static absl::StatusOr<std::unique_ptr<VirtioTransportState>> Create(
      std::shared_ptr<VirtioDevice> device, const GuestMemory& memory,
      VirtioInterruptDelivery* delivery, uint16_t msix_vectors);
  // Resets the device if it was activated (so it drops its context).
  ~VirtioTransportState() override;

  VirtioDevice& device() const { return *device_; }
  uint16_t num_queues() const { return static_cast<uint16_t>(max_sizes_.size()); }
  // Queue q's notification EventFd (the VMM binds it with KVM_IOEVENTFD).
  absl::Span<const EventFd> queue_notify_eventfds() const { return notify_eventfds_; }
  // Queue q's call EventFd if the device runs q in a back-end, else null.
  // When the back-end signals it (no direct MSI-X irqfd was handed over) the
  // VMM's event loop calls HandleQueueCallEvent(q).
  const EventFd* queue_call_eventfd(uint16_t queue) const {
    return queue < call_eventfds_.size() && call_eventfds_[queue].has_value()
               ? &*call_eventfds_[queue]
               : nullptr;
  }

  // Register access; `value` is the register's value (the transport handles
  // width and byte order). Writes to read-only registers are counted and
  // ignored.
  uint32_t Read(VirtioRegister reg) ABSL_LOCKS_EXCLUDED(status_mu_, device_mu_, mu_);
  void Write(VirtioRegister reg, uint32_t value) ABSL_LOCKS_EXCLUDED(status_mu_, device_mu_, mu_);

  // Device configuration space, passed through to the device.
  void ReadDeviceConfig(uint64_t offset, absl::Span<uint8_t> data);
  void WriteDeviceConfig(uint64_t offset, absl::Span<const uint8_t> data);

  uint8_t interrupt_status() const ABSL_LOCKS_EXCLUDED(mu_);
  // MMIO InterruptACK: clears `bits`.
  void AckInterrupt(uint8_t bits) ABSL_LOCKS_EXCLUDED(mu_);
  // PCI ISR read: returns the status and clears it.
  uint8_t ReadAndClearInterruptStatus() ABSL_LOCKS_EXCLUDED(mu_);

  // The driver notified queue `queue` (its ioeventfd fired): runs
  // device->ProcessQueue(queue) when the device is active, the queue enabled
  // and the device not in DEVICE_NEEDS_RESET; drops the notify otherwise.
  void HandleQueueNotify(uint16_t queue) ABSL_LOCKS_EXCLUDED(device_mu_, mu_);
  // Drains queue `queue`'s notify EventFd, then HandleQueueNotify: what the
  // VMM's event-loop callback for that EventFd calls.
  void HandleQueueNotifyEvent(uint16_t queue) ABSL_LOCKS_EXCLUDED(device_mu_, mu_);
  // Drains queue `queue`'s call EventFd and raises its used-buffer interrupt
  // as the device's NotifyUsed would: a back-end's signal through the VMM.
  void HandleQueueCallEvent(uint16_t queue) ABSL_LOCKS_EXCLUDED(mu_);
  // A notify that reached the register in user space: counted, then
  // HandleQueueNotify — or, after DeferNotifiesToEventFds and always for a
  // queue in a back-end, a write to the queue's notify EventFd (the
  // back-end's kick). `queue` is guest-controlled.
  void NotifyRegisterWritten(uint32_t queue) ABSL_LOCKS_EXCLUDED(device_mu_, mu_);
  // Makes a notify that reaches the register (a vCPU exit: no ioeventfd
  // wired yet, or the guest used another width) signal the queue's notify
  // EventFd instead of running the device on the vCPU thread, so device work
  // and its backend I/O stay on the event loop that watches those EventFds
  // (and inside that thread's seccomp allow-list). The VMM turns it on.
  void DeferNotifiesToEventFds() { defer_notifies_.store(true, std::memory_order_relaxed); }

  void SetActivationHook(ActivationHook hook) ABSL_LOCKS_EXCLUDED(status_mu_);
  // Written (+1) each time the device enters DEVICE_NEEDS_RESET, so that
  // whoever watches it (the device manager, for the VM's events) learns of
  // it on its own thread; it must outlive this object. Null: none.
  void SetNeedsResetSignal(const EventFd* signal) ABSL_LOCKS_EXCLUDED(mu_);

  // --- Snapshots (issue 15) ---
  // The registers, and for an activated device its queues' positions and
  // state (VirtioDevice::Snapshot, whose refusal is returned). Called with
  // the VM paused.
  absl::StatusOr<std::string> SaveState()
      ABSL_LOCKS_EXCLUDED(status_mu_, device_mu_, mu_);
  // Restores what SaveState wrote into a transport that has not been used
  // (a new VM's, before its vCPUs run): the registers, then — for a device
  // that was active — its activation at the saved queue positions, its
  // state, the activation hook, and one kick per enabled queue. `state` is
  // untrusted: anything inconsistent (another queue count, a queue size or
  // vector out of range, rings outside RAM, features never offered) is
  // DataLoss naming it, and the transport is left reset.
  absl::Status RestoreState(absl::string_view state)
      ABSL_LOCKS_EXCLUDED(status_mu_, device_mu_, mu_);

  // Counts a malformed register access (wrong width, offset...).
  void CountBadAccess() ABSL_LOCKS_EXCLUDED(mu_);
  VirtioTransportCounters counters() const ABSL_LOCKS_EXCLUDED(mu_);
  uint8_t status() const ABSL_LOCKS_EXCLUDED(mu_);
  // Why the device last entered DEVICE_NEEDS_RESET ("" if never).
  std::string needs_reset_reason() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct QueueRegisters {
    uint16_t size = 0;
    uint16_t msix_vector = kVirtioMsiNoVector;
    bool enabled = false;
    uint64_t desc = 0, driver = 0, device = 0;
  };

  VirtioTransportState(std::shared_ptr<VirtioDevice> device, const GuestMemory& memory,
                       VirtioInterruptDelivery* delivery, uint16_t msix_vectors,
                       std::vector<uint16_t> max_sizes, std::vector<EventFd> notify_eventfds,
                       std::vector<std::optional<EventFd>> call_eventfds);

  // VirtioDeviceContext.
  void NotifyUsed(uint16_t queue) override ABSL_LOCKS_EXCLUDED(mu_);
  void NotifyConfigChanged() override ABSL_LOCKS_EXCLUDED(mu_);
  void DeviceNeedsReset(absl::string_view why) override ABSL_LOCKS_EXCLUDED(mu_);
  void ProcessAgain(uint16_t queue) override;

  void WriteStatus(uint8_t value) ABSL_LOCKS_EXCLUDED(status_mu_, device_mu_, mu_);
  void Reset() ABSL_EXCLUSIVE_LOCKS_REQUIRED(status_mu_) ABSL_LOCKS_EXCLUDED(device_mu_, mu_);
  bool FeaturesAcceptable() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  VirtqueueConfig QueueConfig(const QueueRegisters& q) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EnableQueue(uint32_t index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The activation for DRIVER_OK, or an error (the device then needs reset).
  absl::StatusOr<VirtioActivation> BuildActivation() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The selected queue, or null if queue_select is out of range.
  QueueRegisters* SelectedQueue() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteQueueRegister(VirtioRegister reg, uint32_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint16_t ValidVector(uint32_t value) const;
  void SetNeedsResetLocked(absl::string_view why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // DRIVER_OK set and DEVICE_NEEDS_RESET clear: interrupts may be sent.
  bool DeliveringLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SendConfigInterruptLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ClearRegistersLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // RestoreState's first half: the registers; true if the device is to be
  // activated.
  absl::StatusOr<bool> RestoreRegistersLocked(StateReader& in) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The registers, then for a device to activate its activation at the
  // saved positions and its state; any failure is the caller's to clear.
  absl::Status RestoreLocked(StateReader& in, absl::StatusOr<VirtioActivation>* activation,
                             std::string* device_state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<VirtioDevice> device_;
  const GuestMemory& memory_;
  VirtioInterruptDelivery* const delivery_;
  const uint16_t msix_vectors_;
  const uint64_t offered_features_;
  const std::vector<uint16_t> max_sizes_;
  const std::vector<EventFd> notify_eventfds_;
  const std::vector<std::optional<EventFd>> call_eventfds_;  // queues in a back-end
  std::atomic<bool> defer_notifies_{false};

  absl::Mutex status_mu_ ABSL_ACQUIRED_BEFORE(device_mu_);
  ActivationHook hook_ ABSL_GUARDED_BY(status_mu_);

  absl::Mutex device_mu_ ABSL_ACQUIRED_BEFORE(mu_);

  mutable absl::Mutex mu_;
  // The device holds our context and queues: set after a successful
  // Activate, cleared at the start of Reset (both under device_mu_ too).
  bool activated_ ABSL_GUARDED_BY(mu_) = false;
  uint8_t status_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t device_feature_select_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t driver_feature_select_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t driver_features_ ABSL_GUARDED_BY(mu_) = 0;
  // The driver set a bit in a feature window past 63 (nothing is offered there).
  bool driver_features_beyond_64_ ABSL_GUARDED_BY(mu_) = false;
  uint16_t config_msix_vector_ ABSL_GUARDED_BY(mu_) = kVirtioMsiNoVector;
  uint32_t config_generation_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t queue_select_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<QueueRegisters> queues_ ABSL_GUARDED_BY(mu_);
  uint8_t interrupt_status_ ABSL_GUARDED_BY(mu_) = 0;
  std::string needs_reset_reason_ ABSL_GUARDED_BY(mu_);
  VirtioTransportCounters counters_ ABSL_GUARDED_BY(mu_);
  const EventFd* needs_reset_signal_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_VIRTIO_TRANSPORT_STATE_H_
