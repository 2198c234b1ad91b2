// A virtio device model, independent of its transport: the same object works
// behind virtio-pci (virtio_pci_transport.h) and virtio-mmio
// (virtio_mmio_transport.h). A new device is one .h/.cc pair implementing
// this, one test file and one registration line. Its ProcessQueue drains
// its queues through a QueuePass (queue_pass.h), which does what every
// device shares: popping, re-arming kicks, used entries, interrupts after the
// device's lock, DEVICE_NEEDS_RESET for a broken ring.
#ifndef VMM_DEVICES_VIRTIO_VIRTIO_DEVICE_H_
#define VMM_DEVICES_VIRTIO_VIRTIO_DEVICE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "base/guest_memory.h"
#include "devices/virtio/virtqueue.h"

namespace vmm {

// Feature bits every device offers or that the transport handles.
inline constexpr uint64_t kVirtioFIndirectDesc = 1ull << 28;
inline constexpr uint64_t kVirtioFEventIdx = 1ull << 29;
inline constexpr uint64_t kVirtioFVersion1 = 1ull << 32;
inline constexpr uint64_t kVirtioFAccessPlatform = 1ull << 33;

// Device status bits (virtio 1.x 2.1).
inline constexpr uint8_t kVirtioStatusAcknowledge = 1;
inline constexpr uint8_t kVirtioStatusDriver = 2;
inline constexpr uint8_t kVirtioStatusDriverOk = 4;
inline constexpr uint8_t kVirtioStatusFeaturesOk = 8;
inline constexpr uint8_t kVirtioStatusNeedsReset = 64;
inline constexpr uint8_t kVirtioStatusFailed = 128;

// What a device uses to talk back through its transport. Implemented by each
// transport; safe to call from any thread.
class VirtioDeviceContext {
 public:
  virtual ~VirtioDeviceContext() = default;
  // The device put buffers in queue `queue`'s used ring and the queue wants
  // an interrupt (the device checked Virtqueue::ShouldNotify). On the data
  // path this is an eventfd write into a KVM irqfd.
  virtual void NotifyUsed(uint16_t queue) = 0;
  // The device's configuration space changed (bumps config generation and
  // raises the configuration interrupt).
  virtual void NotifyConfigChanged() = 0;
  // The driver broke the protocol (a malformed chain, ...): the transport sets
  // DEVICE_NEEDS_RESET, notifies the driver, counts it, and stops delivering
  // notifications to the device until reset. The VMM keeps running.
  virtual void DeviceNeedsReset(absl::string_view why) = 0;
  // The device stopped a pass over `queue` with chains left (its per-pass
  // budget, QueuePass::kChainBudget): run ProcessQueue(queue) again from the
  // event loop, after whatever else is ready there (the transport writes
  // the queue's notify EventFd, as a driver's kick would).
  virtual void ProcessAgain(uint16_t queue) = 0;
};

// Everything a device gets when the driver sets DRIVER_OK.
struct VirtioActivation {
  const GuestMemory* memory = nullptr;
  uint64_t features = 0;              // what was negotiated
  std::vector<Virtqueue> queues;      // index = queue number; only enabled ones are meaningful
  std::vector<bool> queue_enabled;    // same length as queues
  VirtioDeviceContext* context = nullptr;  // valid until Reset()
  // For a data path outside the VMM (VirtioDevice::QueueInBackend), per
  // queue, owned by the transport and valid until Reset():
  // kick_fds[q] is the eventfd a driver's notify of queue q signals (KVM's
  // ioeventfd for the queue's notify address); call_fds[q] is the eventfd
  // that raises queue q's interrupt when written — with MSI-X, the vector's
  // KVM irqfd itself; otherwise one the VMM watches and turns into the
  // transport's interrupt (interrupt status, pin).
  std::vector<int> kick_fds;
  std::vector<int> call_fds;
};

// What a device keeps of its activation until Reset(); each device's own
// active state derives from it and adds what only it needs.
struct VirtioActiveQueues {
  const GuestMemory* memory = nullptr;
  uint64_t features = 0;
  std::vector<Virtqueue> queues;
  std::vector<bool> queue_enabled;  // same length as queues
  VirtioDeviceContext* context = nullptr;
  std::vector<int> kick_fds;  // for queues in a back-end (VirtioActivation)
  std::vector<int> call_fds;
  bool broken = false;  // asked for DEVICE_NEEDS_RESET: leave the queues alone

  bool QueueUsable(size_t queue) const {
    return !broken && queue < queues.size() && queue_enabled[queue];
  }
};

// Moves `activation` into `active`. An activation without guest memory or a
// context is refused (InvalidArgument, naming `device`), leaving `active` as
// it was.
inline absl::Status TakeActivation(absl::string_view device, VirtioActivation&& activation,
                                   VirtioActiveQueues& active) {
  if (activation.memory == nullptr || activation.context == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(device, ": activation without memory or context"));
  }
  active.memory = activation.memory;
  active.features = activation.features;
  active.queues = std::move(activation.queues);
  active.queue_enabled = std::move(activation.queue_enabled);
  active.queue_enabled.resize(active.queues.size(), false);
  active.context = activation.context;
  active.kick_fds = std::move(activation.kick_fds);
  active.call_fds = std::move(activation.call_fds);
  active.kick_fds.resize(active.queues.size(), -1);
  active.call_fds.resize(active.queues.size(), -1);
  return absl::OkStatus();
}

// A device's ReadConfig: the bytes of its config space `config` from
// `offset`, zeros past its end (whatever the guest asks).
inline void ReadConfigBytes(absl::Span<const uint8_t> config, uint64_t offset,
                            absl::Span<uint8_t> data) {
  for (size_t i = 0; i < data.size(); ++i) {
    const bool inside = offset < config.size() && i < config.size() - offset;
    data[i] = inside ? config[offset + i] : 0;
  }
}
// The same over a plain configuration structure.
template <typename Config>
void ReadConfigBytes(const Config& config, uint64_t offset, absl::Span<uint8_t> data) {
  static_assert(std::is_trivially_copyable_v<Config>);
  ReadConfigBytes(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(&config), sizeof(config)),
                  offset, data);
}

// An active device's part of a snapshot (issue 15): where each of its
// queues stands and whatever else it must carry (bytes it encodes itself).
struct VirtioDeviceSnapshot {
  std::vector<VirtqueuePosition> queues;  // one per queue of the activation
  std::string state;
};

// The positions of `active`'s queues for VirtioDevice::Snapshot, each
// queue's next_avail moved back by the chains the device holds without
// having returned them (`held[q]`; missing entries are 0). Such chains must
// be the last ones the device popped from their queue: a restored device
// pops them again (a receive buffer the device had put aside while waiting
// for data is offered to it anew; what it had half-written is dropped).
inline std::vector<VirtqueuePosition> SnapshotPositions(const VirtioActiveQueues& active,
                                                        absl::Span<const size_t> held = {}) {
  std::vector<VirtqueuePosition> positions;
  for (size_t q = 0; q < active.queues.size(); ++q) {
    VirtqueuePosition p = active.queues[q].position();
    if (q < held.size()) p.next_avail = static_cast<uint16_t>(p.next_avail - held[q]);
    positions.push_back(p);
  }
  return positions;
}

// One of a device's own counters, by name ("requests", "rx_bytes").
struct DeviceCounter {
  const char* name;  // a string literal
  uint64_t value;
};

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;

  // VIRTIO_ID_* (1 net, 2 block, 3 console, 4 rng, 19 vsock, ...).
  virtual uint32_t device_type() const = 0;
  // Feature bits offered, VERSION_1 included.
  virtual uint64_t device_features() const = 0;
  // Maximum size of each queue; the number of entries is the queue count.
  virtual std::vector<uint16_t> queue_max_sizes() const = 0;

  // Device-specific configuration space (virtio 1.x 4.x "device
  // configuration layout"). Out-of-range reads return zeros; writes to
  // read-only fields are ignored.
  virtual void ReadConfig(uint64_t offset, absl::Span<uint8_t> data) = 0;
  virtual void WriteConfig(uint64_t offset, absl::Span<const uint8_t> data) = 0;

  // The driver set DRIVER_OK. A device that cannot start returns an error
  // and the transport reports DEVICE_NEEDS_RESET.
  virtual absl::Status Activate(VirtioActivation activation) = 0;
  // The driver kicked queue `queue` (its ioeventfd fired, on the event-loop
  // thread). Process available chains until the queue is empty (or the
  // pass's budget is spent). The transport holds none of its locks here, so
  // a kick may arrive just after a Reset: a device that is not active (or
  // whose queue is not enabled) does nothing.
  virtual void ProcessQueue(uint16_t queue) = 0;
  // True for a queue whose data path runs outside the VMM — in the host
  // kernel (vhost) or another process (vhost-user): the back-end is kicked
  // through the activation's kick_fds[queue] and signals its call_fds[queue].
  // The VMM then neither watches the queue's notify eventfd nor calls
  // ProcessQueue for it, and watches its call eventfd instead. Fixed for the
  // device's life.
  virtual bool QueueInBackend(uint16_t /*queue*/) const { return false; }
  // The driver reset the device (status 0) or the VMM is tearing down: drop
  // queues and memory, return to the pre-activation state. May run at the
  // same time as ProcessQueue or a back-end callback: devices serialise them
  // with their own lock.
  virtual void Reset() = 0;
  // --- Snapshots (issue 15) ---
  // Called on an active device of a paused VM (no ProcessQueue, no back-end
  // callback runs meanwhile). The default refuses: a device whose state
  // lives outside the VMM (vhost, vhost-user) or that has not learnt to
  // save its state. The message names the device.
  virtual absl::StatusOr<VirtioDeviceSnapshot> Snapshot() const {
    return absl::UnimplementedError("this device's state cannot be saved in a snapshot");
  }
  // Called on a restored device right after Activate (its queues already at
  // their saved positions) with VirtioDeviceSnapshot::state; the state is
  // untrusted input (any file may be handed to --restore). The transport
  // then kicks every queue once.
  virtual absl::Status RestoreSnapshot(absl::string_view state) {
    if (!state.empty()) return absl::DataLossError("unexpected device state");
    return absl::OkStatus();
  }

  // The device's own counters (what it did with the guest's requests), for
  // Vm::devices() and the API socket's vm.counters. Safe from any thread.
  virtual std::vector<DeviceCounter> counters() const { return {}; }
};

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_VIRTIO_DEVICE_H_
