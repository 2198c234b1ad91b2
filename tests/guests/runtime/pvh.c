#include "runtime/pvh.h"

#include <stdint.h>

// Only the first 4 GiB are mapped.
#define IDENTITY_MAP_END 0x100000000ull

const char* pvh_cmdline(const struct hvm_start_info* info) {
  if (info == 0 || info->magic != HVM_START_MAGIC_VALUE) return "";
  uint64_t paddr = info->cmdline_paddr;
  if (paddr == 0 || paddr >= IDENTITY_MAP_END - 4096) return "";
  return (const char*)(uintptr_t)paddr;
}
