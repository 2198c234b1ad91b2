// The VMM side of device interrupts: pin lines into the in-kernel
// PIC/IOAPIC, the VM's GSI routing table, and MSI vectors delivered by irqfd.
#ifndef VMM_VMM_INTERRUPTS_H_
#define VMM_VMM_INTERRUPTS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/eventfd.h"
#include "devices/interrupt.h"
#include "devices/irq_line.h"
#include "vmm/kvm/vm_wiring.h"

namespace vmm {

// An interrupt line of the in-kernel PIC/IOAPIC, driven with KVM_IRQ_LINE
// (a vCPU-thread ioctl: fine for legacy devices and INTx, not a data path).
class KvmIrqLine : public IrqLine {
 public:
  KvmIrqLine(VmWiring* vm, uint32_t gsi) : vm_(vm), gsi_(gsi) {}
  void SetLevel(bool asserted) override { (void)vm_->SetIrqLine(gsi_, asserted); }

 private:
  VmWiring* vm_;
  uint32_t gsi_;
};

// Owns the VM's GSI routing table: the PC's legacy routes plus one MSI route
// per GSI handed out. KVM_SET_GSI_ROUTING replaces the whole table, so every
// change commits all of it (irqfds bound to a GSI follow the new route).
class GsiRouter {
 public:
  // GSIs below this are the IOAPIC's pins; MSI GSIs are allocated above.
  static constexpr uint32_t kFirstMsiGsi = 24;
  // Bounded so a guest cannot make us grow the table without limit (KVM
  // allows 4096 routes).
  static constexpr uint32_t kMaxMsiGsis = 2048;

  explicit GsiRouter(VmWiring* vm) : vm_(vm) {}
  // Installs the legacy routes.
  absl::Status Init();
  // A fresh GSI for an MSI vector (no route yet: triggering it does nothing).
  absl::StatusOr<uint32_t> AllocateMsiGsi();
  // Routes `gsi` to `message`, or removes its route (nullopt).
  absl::Status SetMsiRoute(uint32_t gsi, std::optional<MsiMessage> message);

 private:
  absl::Status CommitLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  VmWiring* vm_;
  absl::Mutex mu_;
  uint32_t next_gsi_ ABSL_GUARDED_BY(mu_) = kFirstMsiGsi;
  std::map<uint32_t, MsiMessage> msi_routes_ ABSL_GUARDED_BY(mu_);
};

// A PCI function's MSI-X vectors: each its own GSI and irqfd, so Trigger()
// is one eventfd write and the guest never exits to user space for it.
//
// The irqfd is bound only while the vector is unmasked and routed. A masked
// vector's eventfd is detached from KVM, so writes to it (a vhost or
// vhost-user back-end signalling through DirectTriggerFd) wait in its
// counter; binding it again on unmask fires them (KVM_IRQFD injects at once
// when the eventfd is already signalled). Nothing a back-end raises while the
// guest has the vector masked is lost — and nothing reaches the guest then.
class KvmMsiVectors : public MsiVectorSink {
 public:
  static absl::StatusOr<std::unique_ptr<KvmMsiVectors>> Create(VmWiring* vm, GsiRouter* router,
                                                               uint16_t count);
  ~KvmMsiVectors() override;

  void Configure(uint16_t index, const MsiMessage& message, bool masked) override;
  void Trigger(uint16_t index) override;
  int DirectTriggerFd(uint16_t index) const override;

  // Messages refused because their address is not the LAPIC window.
  uint64_t rejected_messages() const;

 private:
  struct Vector {
    uint32_t gsi;
    EventFd eventfd;
    bool bound = false;  // irqfd registered (the vector is unmasked and routed)
  };
  KvmMsiVectors(VmWiring* vm, GsiRouter* router) : vm_(vm), router_(router) {}

  VmWiring* vm_;
  GsiRouter* router_;
  // The set of vectors is fixed at Create; `bound` changes under mu_.
  std::vector<Vector> vectors_;
  mutable absl::Mutex mu_;
  uint64_t rejected_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vmm

#endif  // VMM_VMM_INTERRUPTS_H_
