// How guest RAM of a given size is laid out around the 32-bit MMIO hole:
// [0, min(size, kMmioHoleStart)) and, for what is left, [4 GiB, 4 GiB + rest).
// Header-only so that firmware/ (the e820 builder's tests) can use it without
// linking arch/.
#ifndef VMM_ARCH_X86_64_LOADER_RAM_RANGES_H_
#define VMM_ARCH_X86_64_LOADER_RAM_RANGES_H_

#include <algorithm>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "arch/x86_64/layout.h"
#include "base/guest_memory.h"

namespace vmm::x86_64 {

// The RAM ranges (for GuestMemory::Create) of a guest with `memory_bytes` of
// RAM. The size must be a multiple of the page size, at least kMinMemory,
// and leave the ranges inside the 64-bit address space.
inline absl::StatusOr<std::vector<RamRange>> RamRangesFor(uint64_t memory_bytes) {
  if (memory_bytes < kMinMemory) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "guest memory of %d bytes is too small; need at least %d MiB", memory_bytes,
        kMinMemory >> 20));
  }
  if (memory_bytes % kPageSize != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "guest memory of %d bytes is not a multiple of %d", memory_bytes, kPageSize));
  }
  const uint64_t low = std::min(memory_bytes, kMmioHoleStart);
  std::vector<RamRange> ranges = {{GuestAddress(0), low}};
  const uint64_t high = memory_bytes - low;
  if (high > 0) {
    if (!GuestAddress(kHighRamStart).CheckedAdd(high)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("guest memory of %d bytes does not fit the address space", memory_bytes));
    }
    ranges.push_back({GuestAddress(kHighRamStart), high});
  }
  return ranges;
}

}  // namespace vmm::x86_64

#endif  // VMM_ARCH_X86_64_LOADER_RAM_RANGES_H_
