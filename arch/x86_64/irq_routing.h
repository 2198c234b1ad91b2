// The VM's GSI routing for the in-kernel PIC and IOAPIC, the PC way: ISA
// IRQ n reaches PIC pin n (n < 16) and IOAPIC pin n, except the PIT's GSI 0,
// which reaches IOAPIC pin kPitIoapicPin (2) as on every PC since the IOAPIC
// (and as the MP table and ACPI tell the guest). GSIs 16..23 reach IOAPIC
// pins 16..23 only.
#ifndef VMM_ARCH_X86_64_IRQ_ROUTING_H_
#define VMM_ARCH_X86_64_IRQ_ROUTING_H_

#include <linux/kvm.h>

#include <vector>

namespace vmm::x86_64 {

// Entries for KVM_SET_GSI_ROUTING. Later users (MSI routes) append to them:
// KVM_SET_GSI_ROUTING replaces the whole table.
std::vector<kvm_irq_routing_entry> LegacyIrqRouting();

}  // namespace vmm::x86_64

#endif  // VMM_ARCH_X86_64_IRQ_ROUTING_H_
