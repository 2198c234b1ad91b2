// virtio-mmio, version 2 (virtio 1.2 section 4.2): the register file of one
// slot, over the shared status/feature/queue machine (virtio_transport_state.h).
//
// Wiring (the VMM does it; the transport never touches KVM):
// - Insert it on the MMIO bus at the slot base with size kRegisterFileSize.
// - Interrupt: irq_eventfd() is bound with KVM_IRQFD to the slot's GSI; every
//   used-buffer or config-change event writes it once (an edge). The guest
//   reads InterruptStatus and acknowledges with InterruptACK.
// - Notifications: queue q's EventFd (queue_notify_eventfds()[q]) is bound
//   with KVM_IOEVENTFD at base + kQueueNotifyOffset, kQueueNotifyWidth bytes,
//   datamatch q. When it fires the VMM calls HandleQueueNotifyEvent(q) on its
//   event loop. A QueueNotify write that still reaches the bus takes the slow
//   path (same effect, counted in counters().notify_exits).
//
// Vendor ID: 0x554d4551 ("QEMU"), the value Linux guests are used to seeing;
// no driver checks it.
#ifndef VMM_DEVICES_VIRTIO_VIRTIO_MMIO_TRANSPORT_H_
#define VMM_DEVICES_VIRTIO_VIRTIO_MMIO_TRANSPORT_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/eventfd.h"
#include "base/guest_memory.h"
#include "devices/bus.h"
#include "devices/virtio/virtio_device.h"
#include "devices/virtio/virtio_transport_state.h"

namespace vmm {

class VirtioMmioTransport final : public BusDevice, private VirtioInterruptDelivery {
 public:
  static constexpr uint64_t kRegisterFileSize = 0x200;
  static constexpr uint32_t kMagic = 0x74726976;  // "virt"
  static constexpr uint32_t kVersion = 2;
  static constexpr uint32_t kVendorId = 0x554d4551;
  static constexpr uint64_t kQueueNotifyOffset = 0x50;
  static constexpr uint32_t kQueueNotifyWidth = 4;
  static constexpr uint64_t kConfigOffset = 0x100;

  // `memory` must outlive the transport.
  static absl::StatusOr<std::shared_ptr<VirtioMmioTransport>> Create(
      std::shared_ptr<VirtioDevice> device, const GuestMemory& memory);

  // BusDevice. Registers take 32-bit aligned accesses only (others read 0,
  // writes are dropped and counted); the config space at 0x100 takes any
  // width.
  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

  // The slot's interrupt (for KVM_IRQFD).
  const EventFd& irq_eventfd() const { return irq_; }
  // Queue notification: one EventFd per queue, datamatch = queue index.
  absl::Span<const EventFd> queue_notify_eventfds() const {
    return state_->queue_notify_eventfds();
  }
  uint16_t num_queues() const { return state_->num_queues(); }
  // The event-loop callback for queue q's notify EventFd.
  void HandleQueueNotifyEvent(uint16_t queue) { state_->HandleQueueNotifyEvent(queue); }
  // Called with true after DRIVER_OK activated the device, false after the
  // reset of an activated device: wire/unwire the ioeventfds and event loop.
  void SetActivationHook(VirtioTransportState::ActivationHook hook) {
    state_->SetActivationHook(std::move(hook));
  }
  VirtioTransportCounters counters() const { return state_->counters(); }
  VirtioTransportState& state() { return *state_; }

 private:
  VirtioMmioTransport(EventFd irq, uint32_t device_id)
      : irq_(std::move(irq)), device_id_(device_id) {}

  uint32_t ReadRegister(uint64_t offset);
  void WriteRegister(uint64_t offset, uint32_t value);

  // VirtioInterruptDelivery: pin-based only; every new event is one edge.
  bool MsixEnabled() override { return false; }
  void SendMsix(uint16_t) override {}
  void InterruptStatusChanged(uint8_t status, bool raised) override;

  const EventFd irq_;
  const uint32_t device_id_;
  // Last: destroyed first, while the members it calls back into still live.
  std::unique_ptr<VirtioTransportState> state_;
};

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_VIRTIO_MMIO_TRANSPORT_H_
