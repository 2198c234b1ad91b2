// Finds the CPUs through the Intel MultiProcessor Specification 1.4 tables.
#ifndef VMM_TESTS_GUESTS_RUNTIME_MP_TABLE_H_
#define VMM_TESTS_GUESTS_RUNTIME_MP_TABLE_H_

#include <stdbool.h>
#include <stdint.h>

#define MP_MAX_CPUS 32

struct mp_info {
  uint32_t cpu_count;  // enabled processor entries (at most MP_MAX_CPUS)
  uint8_t apic_ids[MP_MAX_CPUS];
  uint32_t lapic_paddr;
};

// Scans the EBDA's last KiB (0x9fc00-0xa0000) and the BIOS area
// (0xf0000-0x100000) for the "_MP_" floating pointer, checks both
// checksums and collects the enabled processors. Returns false (and
// leaves *info as one CPU with the default LAPIC) when there is no valid
// table; *why names the reason.
bool mp_find_cpus(struct mp_info* info, const char** why);

#endif  // VMM_TESTS_GUESTS_RUNTIME_MP_TABLE_H_
