#include "arch/x86_64/irq_routing.h"

#include "arch/x86_64/layout.h"

namespace vmm::x86_64 {
namespace {

kvm_irq_routing_entry IrqchipRoute(uint32_t gsi, uint32_t chip, uint32_t pin) {
  kvm_irq_routing_entry e{};
  e.gsi = gsi;
  e.type = KVM_IRQ_ROUTING_IRQCHIP;
  e.u.irqchip.irqchip = chip;
  e.u.irqchip.pin = pin;
  return e;
}

}  // namespace

std::vector<kvm_irq_routing_entry> LegacyIrqRouting() {
  std::vector<kvm_irq_routing_entry> routes;
  for (uint32_t gsi = 0; gsi < kIoapicPins; ++gsi) {
    // GSI 2 is the 8259 cascade: nothing raises it.
    if (gsi == 2) continue;
    if (gsi < 8) routes.push_back(IrqchipRoute(gsi, KVM_IRQCHIP_PIC_MASTER, gsi));
    else if (gsi < 16) routes.push_back(IrqchipRoute(gsi, KVM_IRQCHIP_PIC_SLAVE, gsi - 8));
    routes.push_back(IrqchipRoute(gsi, KVM_IRQCHIP_IOAPIC, gsi == 0 ? kPitIoapicPin : gsi));
  }
  return routes;
}

}  // namespace vmm::x86_64
