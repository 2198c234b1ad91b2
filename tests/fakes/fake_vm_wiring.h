// A VmWiring (vmm/kvm/vm_wiring.h) that records what the VMM binds, for unit
// tests of the device manager and interrupt plumbing without /dev/kvm.
// Adding a binding twice or removing one that is not there fails the call,
// as KVM does (EEXIST / ENOENT).
#ifndef VMM_TESTS_FAKES_FAKE_VM_WIRING_H_
#define VMM_TESTS_FAKES_FAKE_VM_WIRING_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "vmm/kvm/vm_wiring.h"

namespace vmm::testing {

class FakeVmWiring : public VmWiring {
 public:
  struct Ioeventfd {
    int fd = -1;
    IoSpace space = IoSpace::kMmio;
    uint64_t addr = 0;
    uint32_t len = 0;
    std::optional<uint64_t> datamatch;
    auto operator<=>(const Ioeventfd&) const = default;
  };

  absl::Status SetIrqLine(uint32_t gsi, bool level) override {
    absl::MutexLock lock(&mu_);
    lines_[gsi] = level;
    return absl::OkStatus();
  }
  absl::Status AddIoeventfd(int fd, IoSpace space, uint64_t addr, uint32_t len,
                            std::optional<uint64_t> datamatch) override {
    absl::MutexLock lock(&mu_);
    if (!ioeventfds_.insert({fd, space, addr, len, datamatch}).second) {
      return absl::AlreadyExistsError("ioeventfd bound twice");
    }
    return absl::OkStatus();
  }
  absl::Status RemoveIoeventfd(int fd, IoSpace space, uint64_t addr, uint32_t len,
                               std::optional<uint64_t> datamatch) override {
    absl::MutexLock lock(&mu_);
    if (ioeventfds_.erase({fd, space, addr, len, datamatch}) == 0) {
      return absl::NotFoundError("no such ioeventfd");
    }
    return absl::OkStatus();
  }
  absl::Status AddIrqfd(int fd, uint32_t gsi) override {
    absl::MutexLock lock(&mu_);
    if (!irqfds_.insert({fd, gsi}).second) return absl::AlreadyExistsError("irqfd bound twice");
    irqfd_order_.emplace_back(fd, gsi);
    return absl::OkStatus();
  }
  absl::Status RemoveIrqfd(int fd, uint32_t gsi) override {
    absl::MutexLock lock(&mu_);
    if (irqfds_.erase({fd, gsi}) == 0) return absl::NotFoundError("no such irqfd");
    return absl::OkStatus();
  }
  absl::Status SetGsiRouting(absl::Span<const kvm_irq_routing_entry> entries) override {
    absl::MutexLock lock(&mu_);
    routes_.assign(entries.begin(), entries.end());
    return absl::OkStatus();
  }

  std::set<Ioeventfd> ioeventfds() const {
    absl::MutexLock lock(&mu_);
    return ioeventfds_;
  }
  std::set<std::pair<int, uint32_t>> irqfds() const {
    absl::MutexLock lock(&mu_);
    return irqfds_;
  }
  // Every AddIrqfd, in call order (removed ones included).
  std::vector<std::pair<int, uint32_t>> irqfd_order() const {
    absl::MutexLock lock(&mu_);
    return irqfd_order_;
  }
  std::vector<kvm_irq_routing_entry> routes() const {
    absl::MutexLock lock(&mu_);
    return routes_;
  }
  // The MSI route of `gsi` in the table now, if any.
  std::optional<kvm_irq_routing_msi> MsiRoute(uint32_t gsi) const {
    absl::MutexLock lock(&mu_);
    for (const kvm_irq_routing_entry& e : routes_) {
      if (e.gsi == gsi && e.type == KVM_IRQ_ROUTING_MSI) return e.u.msi;
    }
    return std::nullopt;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<uint32_t, bool> lines_ ABSL_GUARDED_BY(mu_);
  std::set<Ioeventfd> ioeventfds_ ABSL_GUARDED_BY(mu_);
  std::set<std::pair<int, uint32_t>> irqfds_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<int, uint32_t>> irqfd_order_ ABSL_GUARDED_BY(mu_);
  std::vector<kvm_irq_routing_entry> routes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vmm::testing

#endif  // VMM_TESTS_FAKES_FAKE_VM_WIRING_H_
