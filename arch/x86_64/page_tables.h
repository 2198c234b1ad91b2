// Identity-mapping page tables for entering a 64-bit kernel with paging on
// (the Linux 64-bit boot protocol requires the kernel, boot_params and the
// command line to be identity mapped).
#ifndef VMM_ARCH_X86_64_PAGE_TABLES_H_
#define VMM_ARCH_X86_64_PAGE_TABLES_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "arch/x86_64/layout.h"
#include "base/guest_memory.h"

namespace vmm::x86_64 {

// Page-table entry bits used here.
inline constexpr uint64_t kPtePresent = 1ull << 0;
inline constexpr uint64_t kPteWritable = 1ull << 1;
inline constexpr uint64_t kPteLargePage = 1ull << 7;  // PS: 2 MiB page in a PD
inline constexpr uint64_t kPteAddressMask = 0x000f'ffff'ffff'f000;

// Layout inside [kPageTablesStart, kPageTablesEnd): PML4, then the PDPT,
// then one page directory per GiB, each mapping 512 x 2 MiB.
inline constexpr uint64_t kPml4Start = kPageTablesStart;
inline constexpr uint64_t kPdptStart = kPageTablesStart + kPageSize;
inline constexpr uint64_t kPdStart = kPageTablesStart + 2 * kPageSize;
inline constexpr uint64_t kIdentityMapPds = (kPageTablesEnd - kPdStart) / kPageSize;
inline constexpr uint64_t kIdentityMapSize = kIdentityMapPds << 30;

static_assert(kIdentityMapPds >= 4, "layout.h leaves room for less than 4 GiB of identity map");
static_assert(kIdentityMapPds <= 512, "one PDPT maps at most 512 GiB");

// Writes the tables (whole pages, so no stale entries survive) and returns
// the CR3 value that selects them. Fails if the range is not guest RAM.
absl::StatusOr<uint64_t> WriteIdentityPageTables(const GuestMemory& memory);

}  // namespace vmm::x86_64

#endif  // VMM_ARCH_X86_64_PAGE_TABLES_H_
