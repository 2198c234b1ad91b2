// The guest's e820 memory map, the BIOS's answer to "where is RAM": handed to
// Linux in boot_params and to PVH kernels in hvm_start_info.
#ifndef VMM_FIRMWARE_E820_H_
#define VMM_FIRMWARE_E820_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "arch/x86_64/loader/e820_entry.h"
#include "base/guest_memory.h"

namespace vmm::firmware {

// The map for guest RAM `ram` (as given to GuestMemory::Create, e.g. from
// x86_64::RamRangesFor): RAM below kEbdaStart, [kEbdaStart, 1 MiB) reserved
// (EBDA, VGA, option ROMs, BIOS), RAM from 1 MiB on, plus `extra` entries
// (e.g. reserved parts of the MMIO hole, ACPI tables). Sorted by address;
// InvalidArgument if entries overlap or wrap.
absl::StatusOr<std::vector<x86_64::E820Entry>> BuildE820Map(
    absl::Span<const RamRange> ram, absl::Span<const x86_64::E820Entry> extra = {});

}  // namespace vmm::firmware

#endif  // VMM_FIRMWARE_E820_H_
