// The Xen PVH boot ABI as the test guests see it: the entry stub receives
// the physical address of struct hvm_start_info in EBX.
#ifndef VMM_TESTS_GUESTS_RUNTIME_PVH_H_
#define VMM_TESTS_GUESTS_RUNTIME_PVH_H_

#include <stdint.h>

#define HVM_START_MAGIC_VALUE 0x336ec578u

struct hvm_start_info {
  uint32_t magic;
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;  // version >= 1
  uint32_t memmap_entries;
  uint32_t reserved;
};

// The kernel command line from start_info, or "" when the structure is
// missing, has the wrong magic or names no command line (or one above the
// 4 GiB identity map).
const char* pvh_cmdline(const struct hvm_start_info* info);

#endif  // VMM_TESTS_GUESTS_RUNTIME_PVH_H_
