// Application processor bring-up through the local APIC (xAPIC MMIO).
#ifndef VMM_TESTS_GUESTS_RUNTIME_SMP_H_
#define VMM_TESTS_GUESTS_RUNTIME_SMP_H_

#include <stdint.h>

#include "runtime/mp_table.h"

// Physical page the real-mode AP trampoline is copied to (SIPI vector 0x10).
#define AP_TRAMPOLINE_PADDR 0x10000u

// This CPU's local APIC ID.
uint32_t lapic_id(uint32_t lapic_paddr);

// Sends INIT-SIPI-SIPI to every processor in `mp` except this one and
// waits (bounded by time) until each has reported "cpu <apic id> up".
// Returns how many CPUs are running, this one included.
uint32_t smp_start_aps(const struct mp_info* mp);

// As Linux's stop_this_cpu(): this CPU's local APIC software-disabled, then
// HLT with interrupts off, for good. An AP work function (smp_ap_work).
__attribute__((noreturn)) void smp_stop_this_cpu(void);

// Sends INIT to every other processor, as Linux's stop_other_cpus() parks
// them before a reboot: each then waits for a SIPI that never comes.
void smp_park_aps_in_init(const struct mp_info* mp);

// Entered by each AP from entry.S on its own stack in 64-bit mode: reports
// "cpu <apic id> up", counts itself, runs smp_ap_work if set, and halts.
void ap_main(void);

// Work for the APs, set before smp_start_aps (null: they just halt).
extern void (*smp_ap_work)(void);

#endif  // VMM_TESTS_GUESTS_RUNTIME_SMP_H_
