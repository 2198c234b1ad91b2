// How devices raise message-signalled interrupts without knowing about KVM.
// (Pin-based lines are devices/irq_line.h.)
#ifndef VMM_DEVICES_INTERRUPT_H_
#define VMM_DEVICES_INTERRUPT_H_

#include <cstdint>

namespace vmm {

// An MSI message as the guest programmed it (an MSI-X table entry).
struct MsiMessage {
  uint64_t address = 0;
  uint32_t data = 0;
  bool operator==(const MsiMessage&) const = default;
};

// The VMM side of a device's MSI-X vectors. The VMM implements it with one
// KVM GSI route and one irqfd per vector, so Trigger() never exits to user
// space on the guest's side: it is an eventfd write.
class MsiVectorSink {
 public:
  virtual ~MsiVectorSink() = default;
  // The guest (re)programmed or (un)masked vector `index`. While masked, the
  // route may be torn down; the device keeps pending bits itself.
  virtual void Configure(uint16_t index, const MsiMessage& message, bool masked) = 0;
  // Delivers vector `index` (must be configured and unmasked).
  virtual void Trigger(uint16_t index) = 0;
  // An eventfd whose every write raises vector `index` without passing
  // through the VMM (a KVM irqfd), for a device back-end outside the VMM
  // (vhost, vhost-user) to signal. While the vector is masked its writes
  // wait in the eventfd and fire when it is unmasked; none is lost. -1: this
  // sink has none, and the back-end's signal goes through the VMM.
  virtual int DirectTriggerFd(uint16_t /*index*/) const { return -1; }
};

}  // namespace vmm

#endif  // VMM_DEVICES_INTERRUPT_H_
