// The PVH boot information (Xen's public/arch-x86/hvm/start_info.h, version
// 1): hvm_start_info with the command line, the initrd as module 0 and the
// memory map, at the layout.h addresses.
#ifndef VMM_ARCH_X86_64_LOADER_PVH_START_INFO_H_
#define VMM_ARCH_X86_64_LOADER_PVH_START_INFO_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "arch/x86_64/loader/boot_info.h"
#include "base/guest_memory.h"

namespace vmm::x86_64 {

inline constexpr uint32_t kHvmStartMagic = 0x336ec578;  // "xEn3" with the high bit set
inline constexpr uint32_t kHvmStartVersion = 1;         // with the memory map

struct HvmStartInfo {
  uint32_t magic;
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;  // version 1
  uint32_t memmap_entries;
  uint32_t reserved;
};
static_assert(sizeof(HvmStartInfo) == 56);

struct HvmModlistEntry {
  uint64_t paddr;
  uint64_t size;
  uint64_t cmdline_paddr;
  uint64_t reserved;
};
static_assert(sizeof(HvmModlistEntry) == 32);

struct HvmMemmapTableEntry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;  // E820Type numbering
  uint32_t reserved;
};
static_assert(sizeof(HvmMemmapTableEntry) == 24);

// Writes start_info at kPvhInfoStart, the initrd (if any) as module 0 at
// kPvhModlistStart and info.e820 at kPvhMemmapStart. Returns kPvhInfoStart,
// the value for EBX at the PVH entry. InvalidArgument if the map has more
// than kPvhMemmapMaxEntries entries.
absl::StatusOr<GuestAddress> WritePvhStartInfo(const GuestMemory& mem, const BootInfo& info);

}  // namespace vmm::x86_64

#endif  // VMM_ARCH_X86_64_LOADER_PVH_START_INFO_H_
