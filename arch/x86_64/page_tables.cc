#include "arch/x86_64/page_tables.h"

#include <vector>

#include "base/status_macros.h"

namespace vmm::x86_64 {

absl::StatusOr<uint64_t> WriteIdentityPageTables(const GuestMemory& memory) {
  constexpr uint64_t kEntriesPerPage = kPageSize / sizeof(uint64_t);
  constexpr uint64_t kPageTableBytes = kPageTablesEnd - kPageTablesStart;
  constexpr uint64_t kLargePageSize = 2ull << 20;

  // Build every page in one buffer and write it once.
  std::vector<uint64_t> tables(kPageTableBytes / sizeof(uint64_t), 0);
  uint64_t* pml4 = &tables[(kPml4Start - kPageTablesStart) / sizeof(uint64_t)];
  uint64_t* pdpt = &tables[(kPdptStart - kPageTablesStart) / sizeof(uint64_t)];
  uint64_t* pds = &tables[(kPdStart - kPageTablesStart) / sizeof(uint64_t)];

  pml4[0] = kPdptStart | kPtePresent | kPteWritable;
  for (uint64_t gib = 0; gib < kIdentityMapPds; ++gib) {
    pdpt[gib] = (kPdStart + gib * kPageSize) | kPtePresent | kPteWritable;
    for (uint64_t i = 0; i < kEntriesPerPage; ++i) {
      const uint64_t address = (gib * kEntriesPerPage + i) * kLargePageSize;
      pds[gib * kEntriesPerPage + i] = address | kPtePresent | kPteWritable | kPteLargePage;
    }
  }

  absl::Status status = memory.WriteBytes(
      GuestAddress(kPageTablesStart),
      absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(tables.data()), kPageTableBytes));
  if (!status.ok()) return Annotate(status, "writing the identity page tables");
  return kPml4Start;
}

}  // namespace vmm::x86_64
