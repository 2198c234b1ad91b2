// One entry of the guest's e820 memory map. The type lives here (not in
// firmware/) because the boot_params and PVH writers in arch/ consume it and
// arch/ is built before firmware/; firmware/e820.h builds the list.
#ifndef VMM_ARCH_X86_64_LOADER_E820_ENTRY_H_
#define VMM_ARCH_X86_64_LOADER_E820_ENTRY_H_

#include <cstdint>

#include "base/guest_address.h"

namespace vmm::x86_64 {

// The ACPI/e820 address range types (the same numbers in boot_params and in
// the PVH memory map).
enum class E820Type : uint32_t {
  kRam = 1,
  kReserved = 2,
  kAcpi = 3,
  kNvs = 4,
  kUnusable = 5,
};

struct E820Entry {
  GuestAddress addr;
  uint64_t size = 0;
  E820Type type = E820Type::kReserved;

  bool operator==(const E820Entry&) const = default;
};

}  // namespace vmm::x86_64

#endif  // VMM_ARCH_X86_64_LOADER_E820_ENTRY_H_
