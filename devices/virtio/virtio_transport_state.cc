#include "devices/virtio/virtio_transport_state.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace vmm {
namespace {

bool IsPowerOfTwo(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

uint64_t SetHalf(uint64_t value, bool high, uint32_t half) {
  return high ? (value & 0xffff'ffffull) | (uint64_t{half} << 32)
              : (value & ~0xffff'ffffull) | half;
}

uint32_t Half(uint64_t value, bool high) {
  return static_cast<uint32_t>(high ? value >> 32 : value);
}

// The MSI-X table size limit of PCI.
constexpr uint32_t kMaxMsixVectors = 2048;

}  // namespace

absl::StatusOr<std::unique_ptr<VirtioTransportState>> VirtioTransportState::Create(
    std::shared_ptr<VirtioDevice> device, const GuestMemory& memory,
    VirtioInterruptDelivery* delivery, uint16_t msix_vectors) {
  if (device == nullptr || delivery == nullptr) {
    return absl::InvalidArgumentError("virtio transport: no device or interrupt delivery");
  }
  if (msix_vectors > kMaxMsixVectors) {
    return absl::InvalidArgumentError(
        absl::StrCat("virtio transport: ", msix_vectors, " MSI-X vectors (max 2048)"));
  }
  const std::string name = absl::StrCat("virtio device type ", device->device_type());
  std::vector<uint16_t> max_sizes = device->queue_max_sizes();
  if (max_sizes.empty() || max_sizes.size() > kMaxQueues) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": ", max_sizes.size(),
                                                   " queues (1..", kMaxQueues, " supported)"));
  }
  for (size_t i = 0; i < max_sizes.size(); ++i) {
    if (!IsPowerOfTwo(max_sizes[i]) || max_sizes[i] > kVirtqMaxSize) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ": queue ", i, " maximum size ", max_sizes[i], " is not a power of two <= 32768"));
    }
  }
  if ((device->device_features() & kVirtioFVersion1) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": does not offer VIRTIO_F_VERSION_1"));
  }
  std::vector<EventFd> eventfds;
  eventfds.reserve(max_sizes.size());
  for (size_t i = 0; i < max_sizes.size(); ++i) {
    absl::StatusOr<EventFd> fd = EventFd::Create();
    if (!fd.ok()) return Annotate(fd.status(), absl::StrCat(name, ": notify eventfd for queue ", i));
    eventfds.push_back(*std::move(fd));
  }
  std::vector<std::optional<EventFd>> calls(max_sizes.size());
  for (size_t i = 0; i < max_sizes.size(); ++i) {
    if (!device->QueueInBackend(static_cast<uint16_t>(i))) continue;
    absl::StatusOr<EventFd> fd = EventFd::Create();
    if (!fd.ok()) return Annotate(fd.status(), absl::StrCat(name, ": call eventfd for queue ", i));
    calls[i] = *std::move(fd);
  }
  return std::unique_ptr<VirtioTransportState>(
      new VirtioTransportState(std::move(device), memory, delivery, msix_vectors,
                               std::move(max_sizes), std::move(eventfds), std::move(calls)));
}

VirtioTransportState::VirtioTransportState(std::shared_ptr<VirtioDevice> device,
                                           const GuestMemory& memory,
                                           VirtioInterruptDelivery* delivery,
                                           uint16_t msix_vectors, std::vector<uint16_t> max_sizes,
                                           std::vector<EventFd> notify_eventfds,
                                           std::vector<std::optional<EventFd>> call_eventfds)
    : device_(std::move(device)),
      memory_(memory),
      delivery_(delivery),
      msix_vectors_(msix_vectors),
      offered_features_(device_->device_features()),
      max_sizes_(std::move(max_sizes)),
      notify_eventfds_(std::move(notify_eventfds)),
      call_eventfds_(std::move(call_eventfds)) {
  absl::MutexLock lock(&mu_);
  ClearRegistersLocked();
}

VirtioTransportState::~VirtioTransportState() {
  absl::MutexLock lock(&device_mu_);
  bool activated;
  {
    absl::MutexLock registers(&mu_);
    activated = activated_;
  }
  if (activated) device_->Reset();
}

uint32_t VirtioTransportState::Read(VirtioRegister reg) {
  absl::MutexLock lock(&mu_);
  switch (reg) {
    case VirtioRegister::kDeviceFeatureSelect:
      return device_feature_select_;
    case VirtioRegister::kDeviceFeature:
      return device_feature_select_ < 2 ? Half(offered_features_, device_feature_select_ == 1) : 0;
    case VirtioRegister::kDriverFeatureSelect:
      return driver_feature_select_;
    case VirtioRegister::kDriverFeature:
      return driver_feature_select_ < 2 ? Half(driver_features_, driver_feature_select_ == 1) : 0;
    case VirtioRegister::kConfigMsixVector:
      return config_msix_vector_;
    case VirtioRegister::kNumQueues:
      return num_queues();
    case VirtioRegister::kDeviceStatus:
      return status_;
    case VirtioRegister::kConfigGeneration:
      return config_generation_;
    case VirtioRegister::kQueueSelect:
      return queue_select_;
    default:
      break;
  }
  const QueueRegisters* q = SelectedQueue();
  // A queue that does not exist reads as size 0 ("not available").
  if (q == nullptr) return reg == VirtioRegister::kQueueMsixVector ? kVirtioMsiNoVector : 0;
  switch (reg) {
    case VirtioRegister::kQueueSizeMax:
      return max_sizes_[queue_select_];
    case VirtioRegister::kQueueSize:
      return q->size;
    case VirtioRegister::kQueueMsixVector:
      return q->msix_vector;
    case VirtioRegister::kQueueEnable:
      return q->enabled ? 1 : 0;
    case VirtioRegister::kQueueNotifyOff:
      return queue_select_;
    case VirtioRegister::kQueueDescLow:
    case VirtioRegister::kQueueDescHigh:
      return Half(q->desc, reg == VirtioRegister::kQueueDescHigh);
    case VirtioRegister::kQueueDriverLow:
    case VirtioRegister::kQueueDriverHigh:
      return Half(q->driver, reg == VirtioRegister::kQueueDriverHigh);
    case VirtioRegister::kQueueDeviceLow:
    case VirtioRegister::kQueueDeviceHigh:
      return Half(q->device, reg == VirtioRegister::kQueueDeviceHigh);
    default:
      return 0;
  }
}

void VirtioTransportState::Write(VirtioRegister reg, uint32_t value) {
  if (reg == VirtioRegister::kDeviceStatus) {
    WriteStatus(static_cast<uint8_t>(value));
    return;
  }
  absl::MutexLock lock(&mu_);
  switch (reg) {
    case VirtioRegister::kDeviceFeatureSelect:
      device_feature_select_ = value;
      return;
    case VirtioRegister::kDriverFeatureSelect:
      driver_feature_select_ = value;
      return;
    case VirtioRegister::kDriverFeature:
      // Negotiation is over once FEATURES_OK latched.
      if (status_ & kVirtioStatusFeaturesOk) return;
      if (driver_feature_select_ < 2) {
        driver_features_ = SetHalf(driver_features_, driver_feature_select_ == 1, value);
      } else if (value != 0) {
        driver_features_beyond_64_ = true;
      }
      return;
    case VirtioRegister::kConfigMsixVector:
      config_msix_vector_ = ValidVector(value);
      return;
    case VirtioRegister::kQueueSelect:
      queue_select_ = value;
      return;
    case VirtioRegister::kDeviceFeature:
    case VirtioRegister::kNumQueues:
    case VirtioRegister::kConfigGeneration:
    case VirtioRegister::kQueueSizeMax:
    case VirtioRegister::kQueueNotifyOff:
      ++counters_.bad_accesses;
      return;
    default:
      WriteQueueRegister(reg, value);
  }
}

void VirtioTransportState::WriteQueueRegister(VirtioRegister reg, uint32_t value) {
  QueueRegisters* q = SelectedQueue();
  if (q == nullptr) {
    ++counters_.bad_accesses;
    return;
  }
  switch (reg) {
    case VirtioRegister::kQueueMsixVector:
      q->msix_vector = ValidVector(value);
      return;
    case VirtioRegister::kQueueEnable:
      // Writing 0 stops the queue (MMIO QueueReady semantics): its notifies
      // are dropped from now on.
      if (value == 0) {
        q->enabled = false;
      } else {
        EnableQueue(queue_select_);
      }
      return;
    default:
      break;
  }
  // The driver must not reprogram a live queue: its registers are frozen.
  if (q->enabled) {
    ++counters_.bad_accesses;
    return;
  }
  switch (reg) {
    case VirtioRegister::kQueueSize:
      // An MMIO QueueNum past 16 bits can never be valid; keep it invalid.
      q->size = value > 0xffff ? 0 : static_cast<uint16_t>(value);
      return;
    case VirtioRegister::kQueueDescLow:
    case VirtioRegister::kQueueDescHigh:
      q->desc = SetHalf(q->desc, reg == VirtioRegister::kQueueDescHigh, value);
      return;
    case VirtioRegister::kQueueDriverLow:
    case VirtioRegister::kQueueDriverHigh:
      q->driver = SetHalf(q->driver, reg == VirtioRegister::kQueueDriverHigh, value);
      return;
    case VirtioRegister::kQueueDeviceLow:
    case VirtioRegister::kQueueDeviceHigh:
      q->device = SetHalf(q->device, reg == VirtioRegister::kQueueDeviceHigh, value);
      return;
    default:
      return;
  }
}

void VirtioTransportState::EnableQueue(uint32_t index) {
  QueueRegisters& q = queues_[index];
  if (q.enabled) return;
  // Queues are set up after feature negotiation (the ring format depends on
  // it) and before DRIVER_OK (the device gets its queues at activation).
  if ((status_ & kVirtioStatusFeaturesOk) == 0 || (status_ & kVirtioStatusDriverOk) != 0) {
    ++counters_.queue_enable_refused;
    return;
  }
  if (!IsPowerOfTwo(q.size) || q.size > max_sizes_[index]) {
    ++counters_.queue_enable_refused;
    SetNeedsResetLocked(absl::StrCat("queue ", index, ": size ", q.size,
                                     " is not a power of two <= ", max_sizes_[index]));
    return;
  }
  absl::StatusOr<Virtqueue> vq = Virtqueue::Create(QueueConfig(q), memory_);
  if (!vq.ok()) {
    ++counters_.queue_enable_refused;
    SetNeedsResetLocked(absl::StrCat("queue ", index, ": ", vq.status().message()));
    return;
  }
  q.enabled = true;
}

VirtqueueConfig VirtioTransportState::QueueConfig(const QueueRegisters& q) const {
  return VirtqueueConfig{.size = q.size,
                         .desc = GuestAddress(q.desc),
                         .avail = GuestAddress(q.driver),
                         .used = GuestAddress(q.device),
                         .event_idx = (driver_features_ & kVirtioFEventIdx) != 0,
                         .indirect = (driver_features_ & kVirtioFIndirectDesc) != 0};
}

bool VirtioTransportState::FeaturesAcceptable() const {
  return (driver_features_ & ~offered_features_) == 0 && !driver_features_beyond_64_ &&
         (driver_features_ & kVirtioFVersion1) != 0;
}

void VirtioTransportState::WriteStatus(uint8_t value) {
  absl::MutexLock status_lock(&status_mu_);
  if (value == 0) {
    Reset();
    return;
  }
  bool activated_now = false;
  {
    absl::MutexLock device_lock(&device_mu_);
    absl::StatusOr<VirtioActivation> activation = absl::UnknownError("not activating");
    bool activate = false;
    {
      absl::MutexLock lock(&mu_);
      // Only additions count; DEVICE_NEEDS_RESET belongs to the device.
      const uint8_t add = value & ~status_ & ~kVirtioStatusNeedsReset;
      if (add & kVirtioStatusAcknowledge) status_ |= kVirtioStatusAcknowledge;
      if ((add & kVirtioStatusDriver) && (status_ & kVirtioStatusAcknowledge)) {
        status_ |= kVirtioStatusDriver;
      }
      if ((add & kVirtioStatusFeaturesOk) && (status_ & kVirtioStatusDriver)) {
        if (FeaturesAcceptable()) {
          status_ |= kVirtioStatusFeaturesOk;
        } else {
          ++counters_.features_ok_refused;
        }
      }
      if ((add & kVirtioStatusDriverOk) && (status_ & kVirtioStatusFeaturesOk)) {
        status_ |= kVirtioStatusDriverOk;
        if ((status_ & kVirtioStatusNeedsReset) == 0) {
          activation = BuildActivation();
          if (activation.ok()) {
            activate = true;
          } else {
            SetNeedsResetLocked(activation.status().message());
          }
        }
      }
      if (add & kVirtioStatusFailed) status_ |= kVirtioStatusFailed;
    }
    if (activate) {
      // Without mu_: the device may call its context from Activate.
      absl::Status s = device_->Activate(*std::move(activation));
      absl::MutexLock lock(&mu_);
      if (s.ok()) {
        activated_ = true;
        activated_now = true;
        ++counters_.activations;
      } else {
        SetNeedsResetLocked(absl::StrCat("activation failed: ", s.message()));
      }
    }
  }
  if (activated_now && hook_) hook_(true);
}

void VirtioTransportState::Reset() {
  bool was_activated;
  {
    absl::MutexLock device_lock(&device_mu_);
    {
      // Notifies stop here first: from now on HandleQueueNotify drops them.
      absl::MutexLock lock(&mu_);
      was_activated = activated_;
      activated_ = false;
    }
    device_->Reset();
    // Kicks that arrived for the old queues mean nothing to the new ones.
    for (const EventFd& fd : notify_eventfds_) (void)fd.Read();
    for (const std::optional<EventFd>& fd : call_eventfds_) {
      if (fd) (void)fd->Read();
    }
    absl::MutexLock lock(&mu_);
    ClearRegistersLocked();
    ++counters_.resets;
  }
  if (was_activated && hook_) hook_(false);
}

void VirtioTransportState::ClearRegistersLocked() {
  status_ = 0;
  device_feature_select_ = 0;
  driver_feature_select_ = 0;
  driver_features_ = 0;
  driver_features_beyond_64_ = false;
  config_msix_vector_ = kVirtioMsiNoVector;
  queue_select_ = 0;
  queues_.assign(max_sizes_.size(), QueueRegisters{});
  for (size_t i = 0; i < queues_.size(); ++i) queues_[i].size = max_sizes_[i];
  if (interrupt_status_ != 0) {
    interrupt_status_ = 0;
    delivery_->InterruptStatusChanged(0, false);
  }
}

absl::StatusOr<VirtioActivation> VirtioTransportState::BuildActivation() {
  VirtioActivation a;
  a.memory = &memory_;
  a.features = driver_features_;
  a.context = this;
  for (size_t i = 0; i < queues_.size(); ++i) {
    a.kick_fds.push_back(notify_eventfds_[i].fd());
    // A back-end's signal goes straight to KVM when the queue has an MSI-X
    // vector with an irqfd; through our call EventFd (and the VMM) otherwise.
    int call = call_eventfds_[i] ? call_eventfds_[i]->fd() : -1;
    if (call >= 0 && delivery_->MsixEnabled() && queues_[i].msix_vector != kVirtioMsiNoVector) {
      const int direct = delivery_->DirectMsixFd(queues_[i].msix_vector);
      if (direct >= 0) call = direct;
    }
    a.call_fds.push_back(call);
    if (queues_[i].enabled) {
      absl::StatusOr<Virtqueue> vq = Virtqueue::Create(QueueConfig(queues_[i]), memory_);
      if (!vq.ok()) return Annotate(vq.status(), absl::StrCat("queue ", i));
      a.queues.push_back(*std::move(vq));
      a.queue_enabled.push_back(true);
      continue;
    }
    // VirtioActivation wants a Virtqueue in every slot; a disabled queue gets
    // a one-entry placeholder at the start of RAM that the device never
    // touches (queue_enabled is false).
    if (memory_.regions().empty()) return absl::InternalError("no guest memory");
    const GuestAddress base = memory_.regions()[0].start;
    absl::StatusOr<Virtqueue> vq =
        Virtqueue::Create({.size = 1, .desc = base, .avail = base, .used = base}, memory_);
    if (!vq.ok()) return Annotate(vq.status(), absl::StrCat("placeholder for disabled queue ", i));
    a.queues.push_back(*std::move(vq));
    a.queue_enabled.push_back(false);
  }
  return a;
}

VirtioTransportState::QueueRegisters* VirtioTransportState::SelectedQueue() {
  return queue_select_ < queues_.size() ? &queues_[queue_select_] : nullptr;
}

uint16_t VirtioTransportState::ValidVector(uint32_t value) const {
  // An unknown vector reads back as NO_VECTOR, which tells the driver it was
  // refused (virtio 1.2 4.1.4.3.1).
  return value < msix_vectors_ ? static_cast<uint16_t>(value) : kVirtioMsiNoVector;
}

bool VirtioTransportState::DeliveringLocked() const {
  return (status_ & kVirtioStatusDriverOk) != 0 && (status_ & kVirtioStatusNeedsReset) == 0;
}

void VirtioTransportState::SendConfigInterruptLocked() {
  interrupt_status_ |= kVirtioInterruptConfigChange;
  if (delivery_->MsixEnabled()) {
    if (config_msix_vector_ == kVirtioMsiNoVector) return;
    delivery_->SendMsix(config_msix_vector_);
  } else {
    delivery_->InterruptStatusChanged(interrupt_status_, true);
  }
  ++counters_.config_interrupts;
}

void VirtioTransportState::SetNeedsResetLocked(absl::string_view why) {
  if (status_ & kVirtioStatusNeedsReset) return;
  status_ |= kVirtioStatusNeedsReset;
  needs_reset_reason_ = std::string(why);
  ++counters_.needs_reset;
  if (needs_reset_signal_ != nullptr) (void)needs_reset_signal_->Write(1);
  // A driver that is running learns about it through a config interrupt.
  if (status_ & kVirtioStatusDriverOk) SendConfigInterruptLocked();
}

void VirtioTransportState::NotifyUsed(uint16_t queue) {
  absl::MutexLock lock(&mu_);
  if (!DeliveringLocked() || queue >= queues_.size() || !queues_[queue].enabled) return;
  if (delivery_->MsixEnabled()) {
    const uint16_t vector = queues_[queue].msix_vector;
    if (vector == kVirtioMsiNoVector) return;
    delivery_->SendMsix(vector);
  } else {
    interrupt_status_ |= kVirtioInterruptUsedBuffer;
    delivery_->InterruptStatusChanged(interrupt_status_, true);
  }
  ++counters_.used_interrupts;
}

void VirtioTransportState::NotifyConfigChanged() {
  absl::MutexLock lock(&mu_);
  ++config_generation_;
  if (DeliveringLocked()) SendConfigInterruptLocked();
}

void VirtioTransportState::DeviceNeedsReset(absl::string_view why) {
  absl::MutexLock lock(&mu_);
  SetNeedsResetLocked(why);
}

void VirtioTransportState::ReadDeviceConfig(uint64_t offset, absl::Span<uint8_t> data) {
  device_->ReadConfig(offset, data);
}

void VirtioTransportState::WriteDeviceConfig(uint64_t offset, absl::Span<const uint8_t> data) {
  device_->WriteConfig(offset, data);
}

uint8_t VirtioTransportState::interrupt_status() const {
  absl::MutexLock lock(&mu_);
  return interrupt_status_;
}

void VirtioTransportState::AckInterrupt(uint8_t bits) {
  absl::MutexLock lock(&mu_);
  if ((interrupt_status_ & bits) == 0) return;
  interrupt_status_ &= ~bits;
  delivery_->InterruptStatusChanged(interrupt_status_, false);
}

uint8_t VirtioTransportState::ReadAndClearInterruptStatus() {
  absl::MutexLock lock(&mu_);
  const uint8_t status = interrupt_status_;
  if (status != 0) {
    interrupt_status_ = 0;
    delivery_->InterruptStatusChanged(0, false);
  }
  return status;
}

void VirtioTransportState::HandleQueueNotify(uint16_t queue) {
  {
    absl::MutexLock lock(&mu_);
    const bool live = activated_ && queue < queues_.size() && queues_[queue].enabled &&
                      (status_ & kVirtioStatusNeedsReset) == 0;
    if (!live) {
      ++counters_.notifies_dropped;
      return;
    }
  }
  // Neither of our locks is held: the device's own lock is the one lock on
  // the data path. A reset may slip in between the check and the call; the
  // device then finds itself inactive and does nothing (VirtioDevice says so).
  device_->ProcessQueue(queue);
}

void VirtioTransportState::HandleQueueNotifyEvent(uint16_t queue) {
  if (queue >= notify_eventfds_.size()) return;
  (void)notify_eventfds_[queue].Read();
  HandleQueueNotify(queue);
}

void VirtioTransportState::HandleQueueCallEvent(uint16_t queue) {
  const EventFd* fd = queue_call_eventfd(queue);
  if (fd == nullptr) return;
  (void)fd->Read();
  NotifyUsed(queue);
}

void VirtioTransportState::ProcessAgain(uint16_t queue) {
  if (queue < notify_eventfds_.size()) (void)notify_eventfds_[queue].Write(1);
}

void VirtioTransportState::NotifyRegisterWritten(uint32_t queue) {
  {
    absl::MutexLock lock(&mu_);
    ++counters_.notify_exits;
    if (queue >= queues_.size()) {
      ++counters_.notifies_dropped;
      return;
    }
  }
  const bool to_eventfd = defer_notifies_.load(std::memory_order_relaxed) ||
                          device_->QueueInBackend(static_cast<uint16_t>(queue));
  if (to_eventfd) {
    (void)notify_eventfds_[queue].Write(1);
    return;
  }
  HandleQueueNotify(static_cast<uint16_t>(queue));
}

void VirtioTransportState::SetActivationHook(ActivationHook hook) {
  absl::MutexLock lock(&status_mu_);
  hook_ = std::move(hook);
}

void VirtioTransportState::SetNeedsResetSignal(const EventFd* signal) {
  absl::MutexLock lock(&mu_);
  needs_reset_signal_ = signal;
}

void VirtioTransportState::CountBadAccess() {
  absl::MutexLock lock(&mu_);
  ++counters_.bad_accesses;
}

VirtioTransportCounters VirtioTransportState::counters() const {
  absl::MutexLock lock(&mu_);
  return counters_;
}

uint8_t VirtioTransportState::status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

std::string VirtioTransportState::needs_reset_reason() const {
  absl::MutexLock lock(&mu_);
  return needs_reset_reason_;
}

}  // namespace vmm
