// What the device manager and the interrupt plumbing need of a VM: binding
// eventfds (ioeventfds for queue notifications, irqfds for interrupts), the
// in-kernel irqchip's lines and the GSI routing table. KvmVm implements it
// with ioctls; tests/fakes/fake_vm_wiring.h records the calls, so the wiring
// (BAR moves re-binding ioeventfds, MSI-X routes, virtio-mmio irqfds) is
// unit-tested without /dev/kvm.
#ifndef VMM_VMM_KVM_VM_WIRING_H_
#define VMM_VMM_KVM_VM_WIRING_H_

#include <linux/kvm.h>

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace vmm {

// Where an ioeventfd listens.
enum class IoSpace { kPio, kMmio };

class VmWiring {
 public:
  virtual ~VmWiring() = default;
  // Sets the level of an interrupt line (GSI) of the in-kernel irqchip.
  virtual absl::Status SetIrqLine(uint32_t gsi, bool level) = 0;
  // Signals `eventfd` when the guest writes to [addr, addr + len); with
  // `datamatch`, only when the written value equals it.
  virtual absl::Status AddIoeventfd(int eventfd, IoSpace space, uint64_t addr, uint32_t len,
                                    std::optional<uint64_t> datamatch = std::nullopt) = 0;
  virtual absl::Status RemoveIoeventfd(int eventfd, IoSpace space, uint64_t addr, uint32_t len,
                                       std::optional<uint64_t> datamatch = std::nullopt) = 0;
  // Injects `gsi` each time `eventfd` is signalled.
  virtual absl::Status AddIrqfd(int eventfd, uint32_t gsi) = 0;
  virtual absl::Status RemoveIrqfd(int eventfd, uint32_t gsi) = 0;
  // Replaces the whole GSI routing table.
  virtual absl::Status SetGsiRouting(absl::Span<const kvm_irq_routing_entry> entries) = 0;
};

}  // namespace vmm

#endif  // VMM_VMM_KVM_VM_WIRING_H_
