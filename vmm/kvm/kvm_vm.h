// A KVM virtual machine: memory slots, the in-kernel interrupt controllers,
// ioeventfds, irqfds and GSI routing.
#ifndef VMM_VMM_KVM_KVM_VM_H_
#define VMM_VMM_KVM_KVM_VM_H_

#include <linux/kvm.h>

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/guest_address.h"
#include "base/unique_fd.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/kvm/vm_wiring.h"

namespace vmm {

class KvmVcpu;

class KvmVm final : public VmWiring {
 public:
  static absl::StatusOr<KvmVm> Create(const KvmSystem& kvm);

  int fd() const { return fd_.get(); }

  absl::Status SetUserMemoryRegion(uint32_t slot, GuestAddress guest, uint64_t size,
                                   void* host, uint32_t flags = 0);
  absl::Status SetTssAddr(uint64_t addr);
  absl::Status SetIdentityMapAddr(uint64_t addr);
  // In-kernel PIC, IOAPIC and per-vCPU LAPICs; must precede vCPU creation.
  absl::Status CreateIrqchip();
  // The in-kernel PIT (i8254); after CreateIrqchip, at any time.
  absl::Status CreatePit2();
  bool has_pit() const { return has_pit_; }
  // KVM_CAP_EXIT_ON_EMULATION_FAILURE: an emulation failure at any CPL
  // exits to user space (without it KVM turns one outside ring 0 into a #UD
  // for the guest). Changes nothing where KVM lacks the capability.
  absl::Status EnableExitOnEmulationFailure();
  // The guest's kvmclock, in ns (KVM_GET_CLOCK / KVM_SET_CLOCK): a pause
  // reads it and the resume sets it back, so that the guest's clock does
  // not jump over the time it was stopped (as QEMU does).
  absl::StatusOr<uint64_t> GetClock() const;
  absl::Status SetClock(uint64_t ns);
  // The in-kernel interrupt controllers (KVM_IRQCHIP_PIC_MASTER, _SLAVE,
  // _IOAPIC) and PIT, for snapshots.
  absl::StatusOr<kvm_irqchip> GetIrqchip(uint32_t chip_id) const;
  absl::Status SetIrqchip(const kvm_irqchip& chip);
  absl::StatusOr<kvm_pit_state2> GetPit2() const;
  absl::Status SetPit2(const kvm_pit_state2& state);
  // VmWiring (vm_wiring.h says what each does).
  absl::Status SetIrqLine(uint32_t gsi, bool level) override;
  absl::Status AddIoeventfd(int eventfd, IoSpace space, uint64_t addr, uint32_t len,
                            std::optional<uint64_t> datamatch = std::nullopt) override;
  absl::Status RemoveIoeventfd(int eventfd, IoSpace space, uint64_t addr, uint32_t len,
                               std::optional<uint64_t> datamatch = std::nullopt) override;
  absl::Status AddIrqfd(int eventfd, uint32_t gsi) override;
  absl::Status RemoveIrqfd(int eventfd, uint32_t gsi) override;
  absl::Status SetGsiRouting(absl::Span<const kvm_irq_routing_entry> entries) override;

  absl::StatusOr<KvmVcpu> CreateVcpu(const KvmSystem& kvm, uint32_t id);

 private:
  explicit KvmVm(UniqueFd fd) : fd_(std::move(fd)) {}
  absl::Status Ioeventfd(int eventfd, IoSpace space, uint64_t addr, uint32_t len,
                         std::optional<uint64_t> datamatch, bool remove);
  absl::Status Irqfd(int eventfd, uint32_t gsi, bool remove);

  UniqueFd fd_;
  bool has_pit_ = false;
};

}  // namespace vmm

#endif  // VMM_VMM_KVM_KVM_VM_H_
