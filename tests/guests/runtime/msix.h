// PCI MSI-X: find the capability, locate the table in its BAR, program
// entries for the local APIC (fixed delivery, physical destination).
#ifndef VMM_TESTS_GUESTS_RUNTIME_MSIX_H_
#define VMM_TESTS_GUESTS_RUNTIME_MSIX_H_

#include <stdbool.h>
#include <stdint.h>

struct msix {
  uint16_t bdf;
  uint8_t cap;           // config-space offset of the capability
  uint16_t table_size;   // entries
  uint64_t table;        // physical address of entry 0
};

// False (with *why) when the function has no usable MSI-X capability.
bool msix_probe(uint16_t bdf, struct msix* msix, const char** why);

// Writes entry `index` (masked until msix_enable unmasks the function).
void msix_set_entry(const struct msix* msix, uint16_t index, uint8_t apic_id,
                    uint8_t vector);
void msix_unmask_entry(const struct msix* msix, uint16_t index);

// MSI-X on (and INTx off), function mask cleared; msix_disable undoes it.
void msix_enable(const struct msix* msix);
void msix_disable(const struct msix* msix);

#endif  // VMM_TESTS_GUESTS_RUNTIME_MSIX_H_
