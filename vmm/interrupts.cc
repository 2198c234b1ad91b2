#include "vmm/interrupts.h"

#include "absl/strings/str_format.h"
#include "arch/x86_64/irq_routing.h"
#include "base/status_macros.h"

namespace vmm {
namespace {

// MSI messages target the local APICs: address 0xFEEx_xxxx (x86).
constexpr uint64_t kMsiAddressMask = 0xffff'ffff'fff0'0000;
constexpr uint64_t kMsiAddressBase = 0xfee0'0000;

}  // namespace

absl::Status GsiRouter::Init() {
  absl::MutexLock lock(&mu_);
  return CommitLocked();
}

absl::StatusOr<uint32_t> GsiRouter::AllocateMsiGsi() {
  absl::MutexLock lock(&mu_);
  if (next_gsi_ >= kFirstMsiGsi + kMaxMsiGsis) {
    return absl::ResourceExhaustedError("out of MSI GSIs");
  }
  return next_gsi_++;
}

absl::Status GsiRouter::SetMsiRoute(uint32_t gsi, std::optional<MsiMessage> message) {
  absl::MutexLock lock(&mu_);
  if (message) {
    auto [it, inserted] = msi_routes_.insert_or_assign(gsi, *message);
    (void)it;
    (void)inserted;
  } else if (msi_routes_.erase(gsi) == 0) {
    return absl::OkStatus();  // nothing routed: nothing to commit
  }
  return CommitLocked();
}

absl::Status GsiRouter::CommitLocked() {
  std::vector<kvm_irq_routing_entry> routes = x86_64::LegacyIrqRouting();
  for (const auto& [gsi, message] : msi_routes_) {
    kvm_irq_routing_entry e{};
    e.gsi = gsi;
    e.type = KVM_IRQ_ROUTING_MSI;
    e.u.msi.address_lo = static_cast<uint32_t>(message.address);
    e.u.msi.address_hi = static_cast<uint32_t>(message.address >> 32);
    e.u.msi.data = message.data;
    routes.push_back(e);
  }
  return vm_->SetGsiRouting(routes);
}

absl::StatusOr<std::unique_ptr<KvmMsiVectors>> KvmMsiVectors::Create(VmWiring* vm,
                                                                     GsiRouter* router,
                                                                     uint16_t count) {
  std::unique_ptr<KvmMsiVectors> vectors(new KvmMsiVectors(vm, router));
  for (uint16_t i = 0; i < count; ++i) {
    ASSIGN_OR_RETURN(uint32_t gsi, router->AllocateMsiGsi());
    ASSIGN_OR_RETURN(EventFd eventfd, EventFd::Create());
    // Vectors start masked: the irqfd is bound when the guest unmasks one.
    vectors->vectors_.push_back(Vector{gsi, std::move(eventfd)});
  }
  return vectors;
}

KvmMsiVectors::~KvmMsiVectors() {
  absl::MutexLock lock(&mu_);
  for (const Vector& v : vectors_) {
    if (v.bound) (void)vm_->RemoveIrqfd(v.eventfd.fd(), v.gsi);
    (void)router_->SetMsiRoute(v.gsi, std::nullopt);
  }
}

void KvmMsiVectors::Configure(uint16_t index, const MsiMessage& message, bool masked) {
  if (index >= vectors_.size()) return;
  bool valid = (message.address & kMsiAddressMask) == kMsiAddressBase;
  absl::MutexLock lock(&mu_);
  if (!valid && !masked) ++rejected_;
  Vector& v = vectors_[index];
  if (masked || !valid) {
    // A masked vector, or one aimed anywhere but the LAPICs: detached, so
    // triggers wait in the eventfd (the MSI-X logic keeps its own pending
    // bits for the VMM's triggers).
    if (v.bound && vm_->RemoveIrqfd(v.eventfd.fd(), v.gsi).ok()) v.bound = false;
    (void)router_->SetMsiRoute(v.gsi, std::nullopt);
    return;
  }
  // Route first, then bind: a trigger that waited fires on the new route.
  if (!router_->SetMsiRoute(v.gsi, message).ok()) return;
  if (!v.bound && vm_->AddIrqfd(v.eventfd.fd(), v.gsi).ok()) v.bound = true;
}

void KvmMsiVectors::Trigger(uint16_t index) {
  if (index < vectors_.size()) (void)vectors_[index].eventfd.Write(1);
}

int KvmMsiVectors::DirectTriggerFd(uint16_t index) const {
  return index < vectors_.size() ? vectors_[index].eventfd.fd() : -1;
}

uint64_t KvmMsiVectors::rejected_messages() const {
  absl::MutexLock lock(&mu_);
  return rejected_;
}

}  // namespace vmm
