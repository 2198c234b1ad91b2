// Identity mappings beyond the static first 4 GiB, for device windows such
// as 64-bit PCI BARs placed above RAM.
#ifndef VMM_TESTS_GUESTS_RUNTIME_PAGING_H_
#define VMM_TESTS_GUESTS_RUNTIME_PAGING_H_

#include <stdbool.h>
#include <stdint.h>

// Identity-maps [paddr, paddr + size) uncached with 2 MiB pages. Addresses
// below 4 GiB are already mapped (true). Up to PAGING_SPARE_DIRECTORIES
// distinct GiB-sized regions below 512 GiB can be added; false beyond that.
#define PAGING_SPARE_DIRECTORIES 4
bool paging_map_mmio(uint64_t paddr, uint64_t size);

#endif  // VMM_TESTS_GUESTS_RUNTIME_PAGING_H_
