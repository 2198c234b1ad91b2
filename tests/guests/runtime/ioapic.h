// I/O APIC redirection entries: route a GSI to a vector on one CPU.
#ifndef VMM_TESTS_GUESTS_RUNTIME_IOAPIC_H_
#define VMM_TESTS_GUESTS_RUNTIME_IOAPIC_H_

#include <stdbool.h>
#include <stdint.h>

#define IOAPIC_DEFAULT_PADDR 0xfec00000u

// An IOAPIC at `paddr` whose first pin is GSI `gsi_base`.
struct ioapic {
  uint32_t paddr;
  uint32_t gsi_base;
};

// Number of redirection entries (from the version register).
uint32_t ioapic_pins(const struct ioapic* ioapic);

// Routes `gsi` as fixed delivery of `vector` to physical APIC `dest`,
// unmasked. False when the GSI is not one of this IOAPIC's pins.
bool ioapic_route(const struct ioapic* ioapic, uint32_t gsi, uint8_t vector,
                  uint8_t dest, bool level, bool active_low);
void ioapic_mask(const struct ioapic* ioapic, uint32_t gsi);

#endif  // VMM_TESTS_GUESTS_RUNTIME_IOAPIC_H_
