// The local APIC (xAPIC, MMIO) as an interrupt target: enable, EOI, and a
// periodic timer that wakes a halted CPU so that no wait is unbounded.
#ifndef VMM_TESTS_GUESTS_RUNTIME_LAPIC_H_
#define VMM_TESTS_GUESTS_RUNTIME_LAPIC_H_

#include <stdint.h>

#define LAPIC_DEFAULT_PADDR 0xfee00000u
#define LAPIC_SPURIOUS_VECTOR 0xff

// Software-enables the LAPIC at `paddr` (spurious vector 0xff), masks
// LINT0/LINT1/error/timer and accepts every priority.
void lapic_init(uint32_t paddr);
uint32_t lapic_self_id(void);
void lapic_eoi(void);

// Periodic timer on `vector`, every `count` bus ticks divided by 16 (KVM and
// QEMU model a 1 GHz APIC bus, so 62500 is ~1 ms). count 0 stops it.
void lapic_timer_periodic(uint8_t vector, uint32_t count);

#endif  // VMM_TESTS_GUESTS_RUNTIME_LAPIC_H_
