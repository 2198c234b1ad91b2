// VirtioTransportState's snapshot: SaveState and RestoreState (the
// registers, where each queue stands and the device's own state), apart
// from the register file's live paths in virtio_transport_state.cc.
#include <bit>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/state_file.h"
#include "base/status_macros.h"
#include "devices/virtio/virtio_transport_state.h"

namespace vmm {

absl::StatusOr<std::string> VirtioTransportState::SaveState() {
  // The locks of an activation, so that the device's answer and the
  // registers belong together.
  absl::MutexLock status_lock(&status_mu_);
  absl::MutexLock device_lock(&device_mu_);
  bool activated;
  {
    absl::MutexLock lock(&mu_);
    activated = activated_ && (status_ & kVirtioStatusNeedsReset) == 0;
  }
  VirtioDeviceSnapshot device;
  if (activated) {
    // Without mu_, as Activate is called.
    ASSIGN_OR_RETURN(device, device_->Snapshot());
    if (device.queues.size() != max_sizes_.size()) {
      return absl::InternalError(absl::StrCat("the device saved ", device.queues.size(),
                                              " queue positions for ", max_sizes_.size(),
                                              " queues"));
    }
  }
  absl::MutexLock lock(&mu_);
  StateWriter out;
  out.Put<uint16_t>(num_queues());
  out.Put<uint8_t>(status_);
  out.Put<uint32_t>(device_feature_select_);
  out.Put<uint32_t>(driver_feature_select_);
  out.Put<uint64_t>(driver_features_);
  out.Put<uint8_t>(driver_features_beyond_64_);
  out.Put<uint16_t>(config_msix_vector_);
  out.Put<uint32_t>(config_generation_);
  out.Put<uint32_t>(queue_select_);
  out.Put<uint8_t>(interrupt_status_);
  out.PutBytes(needs_reset_reason_);
  for (const QueueRegisters& q : queues_) {
    out.Put<uint16_t>(q.size);
    out.Put<uint16_t>(q.msix_vector);
    out.Put<uint8_t>(q.enabled);
    out.Put<uint64_t>(q.desc);
    out.Put<uint64_t>(q.driver);
    out.Put<uint64_t>(q.device);
  }
  out.Put<uint8_t>(activated);
  if (activated) {
    for (const VirtqueuePosition& p : device.queues) {
      out.Put<uint16_t>(p.next_avail);
      out.Put<uint16_t>(p.next_used);
    }
    out.PutBytes(device.state);
  }
  return out.Take();
}

absl::StatusOr<bool> VirtioTransportState::RestoreRegistersLocked(StateReader& in) {
  uint16_t queues = 0;
  RETURN_IF_ERROR(in.Get("queue count", &queues));
  if (queues != num_queues()) {
    return absl::DataLossError(
        absl::StrCat("the device had ", queues, " queues, this one has ", num_queues()));
  }
  uint8_t beyond_64 = 0;
  RETURN_IF_ERROR(in.Get("status", &status_));
  RETURN_IF_ERROR(in.Get("device feature select", &device_feature_select_));
  RETURN_IF_ERROR(in.Get("driver feature select", &driver_feature_select_));
  RETURN_IF_ERROR(in.Get("driver features", &driver_features_));
  RETURN_IF_ERROR(in.Get("driver features beyond 64", &beyond_64));
  driver_features_beyond_64_ = beyond_64 != 0;
  RETURN_IF_ERROR(in.Get("config vector", &config_msix_vector_));
  RETURN_IF_ERROR(in.Get("config generation", &config_generation_));
  RETURN_IF_ERROR(in.Get("queue select", &queue_select_));
  RETURN_IF_ERROR(in.Get("interrupt status", &interrupt_status_));
  RETURN_IF_ERROR(in.GetBytes("needs-reset reason", 1024, &needs_reset_reason_));
  if (ValidVector(config_msix_vector_) != config_msix_vector_) {
    return absl::DataLossError("the configuration MSI-X vector is out of range");
  }
  if ((status_ & kVirtioStatusFeaturesOk) != 0 && !FeaturesAcceptable()) {
    return absl::DataLossError("the negotiated features were never offered");
  }
  interrupt_status_ &= kVirtioInterruptUsedBuffer | kVirtioInterruptConfigChange;
  for (size_t i = 0; i < queues_.size(); ++i) {
    QueueRegisters& q = queues_[i];
    uint8_t enabled = 0;
    RETURN_IF_ERROR(in.Get("queue size", &q.size));
    RETURN_IF_ERROR(in.Get("queue vector", &q.msix_vector));
    RETURN_IF_ERROR(in.Get("queue enabled", &enabled));
    RETURN_IF_ERROR(in.Get("queue descriptor table", &q.desc));
    RETURN_IF_ERROR(in.Get("queue driver area", &q.driver));
    RETURN_IF_ERROR(in.Get("queue device area", &q.device));
    q.enabled = enabled != 0;
    if (ValidVector(q.msix_vector) != q.msix_vector) {
      return absl::DataLossError(absl::StrCat("queue ", i, ": MSI-X vector out of range"));
    }
    if (q.enabled && (!std::has_single_bit(q.size) || q.size > max_sizes_[i])) {
      return absl::DataLossError(absl::StrCat("queue ", i, ": size ", q.size,
                                              " is not a power of two <= ", max_sizes_[i]));
    }
  }
  uint8_t activated = 0;
  RETURN_IF_ERROR(in.Get("activated", &activated));
  if (activated != 0 && (status_ & kVirtioStatusDriverOk) == 0) {
    return absl::DataLossError("an active device without DRIVER_OK");
  }
  return activated != 0 && (status_ & kVirtioStatusNeedsReset) == 0;
}

absl::Status VirtioTransportState::RestoreState(absl::string_view state) {
  StateReader in("virtio transport", state);
  absl::MutexLock status_lock(&status_mu_);
  {
    absl::MutexLock device_lock(&device_mu_);
    absl::StatusOr<VirtioActivation> activation = absl::UnknownError("not activating");
    std::string device_state;
    absl::Status restored;
    {
      absl::MutexLock lock(&mu_);
      restored = RestoreLocked(in, &activation, &device_state);
      if (!restored.ok()) ClearRegistersLocked();
    }
    RETURN_IF_ERROR(restored);
    if (activation.ok()) {
      // Without mu_, as WriteStatus activates.
      absl::Status s = device_->Activate(*std::move(activation));
      if (s.ok()) {
        s = device_->RestoreSnapshot(device_state);
        if (!s.ok()) device_->Reset();
      }
      absl::MutexLock lock(&mu_);
      if (!s.ok()) {
        ClearRegistersLocked();
        return absl::DataLossError(absl::StrCat("the device: ", s.message()));
      }
      activated_ = true;
      ++counters_.activations;
    }
  }
  bool activated;
  {
    absl::MutexLock lock(&mu_);
    activated = activated_;
    // INTx is a level: drive it as it was (an edge, virtio-mmio's, is in the
    // restored interrupt controller already).
    if (interrupt_status_ != 0) delivery_->InterruptStatusChanged(interrupt_status_, false);
  }
  if (activated) {
    if (hook_) hook_(true);
    // Whatever the driver made available while the VM was being paused, and
    // the receive buffers the device gave back (SnapshotPositions), is
    // looked at once the VM runs.
    for (uint16_t q = 0; q < num_queues(); ++q) ProcessAgain(q);
  }
  return absl::OkStatus();
}

absl::Status VirtioTransportState::RestoreLocked(StateReader& in,
                                                 absl::StatusOr<VirtioActivation>* activation,
                                                 std::string* device_state) {
  ASSIGN_OR_RETURN(bool activate, RestoreRegistersLocked(in));
  if (activate) {
    *activation = BuildActivation();
    if (!activation->ok()) return absl::DataLossError(activation->status().message());
    for (size_t i = 0; i < queues_.size(); ++i) {
      VirtqueuePosition p;
      RETURN_IF_ERROR(in.Get("queue next avail", &p.next_avail));
      RETURN_IF_ERROR(in.Get("queue next used", &p.next_used));
      // A device never has more chains out than its queue holds.
      if (queues_[i].enabled && static_cast<uint16_t>(p.next_avail - p.next_used) >
                                    (*activation)->queues[i].config().size) {
        return absl::DataLossError(
            absl::StrCat("queue ", i, ": more chains in flight than the queue holds"));
      }
      (*activation)->queues[i].Restore(p);
    }
    RETURN_IF_ERROR(in.GetBytes("device state", 16 << 20, device_state));
  }
  return in.Finish();
}

}  // namespace vmm
