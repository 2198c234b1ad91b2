// The boot GDT the VMM places in guest memory for the first instruction, and
// the conversion from a descriptor to the kvm_segment KVM_SET_SREGS loads.
//
// One table serves both entry kinds:
//   0x00 null
//   0x08 32-bit flat code   (PVH entry: CS)
//   0x10 64-bit code        (Linux 64-bit boot protocol: __BOOT_CS)
//   0x18 flat data          (__BOOT_DS; DS/ES/SS/FS/GS for both entries)
//   0x20 TSS, base 0, limit 0x67, type 11 (busy). In protected mode that is the
//        32-bit busy TSS the PVH ABI asks for; in long mode the same type
//        means a 64-bit busy TSS, whose 16-byte descriptor spills into
//        slot 5 (the upper half: base 63:32 = 0). KVM requires a valid TR.
#ifndef VMM_ARCH_X86_64_GDT_H_
#define VMM_ARCH_X86_64_GDT_H_

#include <linux/kvm.h>

#include <array>
#include <cstdint>

#include "absl/status/status.h"
#include "base/guest_memory.h"

namespace vmm::x86_64 {

inline constexpr uint16_t kBootCode32Selector = 0x08;
inline constexpr uint16_t kBootCode64Selector = 0x10;  // Linux __BOOT_CS
inline constexpr uint16_t kBootDataSelector = 0x18;    // Linux __BOOT_DS
inline constexpr uint16_t kBootTssSelector = 0x20;
inline constexpr size_t kBootGdtEntries = 6;  // TSS takes slots 4 and 5
// The GDTR limit: size in bytes minus one.
inline constexpr uint16_t kBootGdtLimit = kBootGdtEntries * sizeof(uint64_t) - 1;

// Encodes a segment descriptor. `flags` packs the access byte in bits 7:0
// (P, DPL, S, type) and the G, D/B, L, AVL nibble in bits 15:12, the way
// descriptors are usually written (0xa09b = present 64-bit code). `limit` is
// the raw 20-bit field (in 4 KiB units when G is set).
constexpr uint64_t GdtEntry(uint16_t flags, uint32_t base, uint32_t limit) {
  return ((uint64_t{base} & 0xff00'0000) << 32) | ((uint64_t{flags} & 0xf0ff) << 40) |
         ((uint64_t{limit} & 0x000f'0000) << 32) | ((uint64_t{base} & 0x00ff'ffff) << 16) |
         (uint64_t{limit} & 0x0000'ffff);
}

// The table above, indexed by selector >> 3.
std::array<uint64_t, kBootGdtEntries> BootGdt();

// Writes BootGdt() at kBootGdtStart.
absl::Status WriteBootGdt(const GuestMemory& memory);

// The segment register contents the CPU would load from `entry` with
// `selector`: base, byte-granular limit, type and attribute bits.
kvm_segment SegmentFromGdtEntry(uint64_t entry, uint16_t selector);

// SegmentFromGdtEntry for one of the boot selectors above.
kvm_segment BootSegment(uint16_t selector);

}  // namespace vmm::x86_64

#endif  // VMM_ARCH_X86_64_GDT_H_
