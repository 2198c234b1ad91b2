#include "arch/x86_64/loader/pvh_start_info.h"

#include <vector>

#include "absl/strings/str_format.h"
#include "arch/x86_64/layout.h"
#include "base/status_macros.h"

namespace vmm::x86_64 {

// The three structures must not run into each other or the zero page.
static_assert(kPvhInfoStart + sizeof(HvmStartInfo) <= kPvhModlistStart);
static_assert(kPvhModlistStart + sizeof(HvmModlistEntry) <= kPvhMemmapStart);
static_assert(kPvhMemmapStart + kPvhMemmapMaxEntries * sizeof(HvmMemmapTableEntry) <=
              kZeroPageStart);

absl::StatusOr<GuestAddress> WritePvhStartInfo(const GuestMemory& mem, const BootInfo& info) {
  if (info.e820.size() > kPvhMemmapMaxEntries) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "memory map has %d entries; PVH start_info holds at most %d", info.e820.size(),
        kPvhMemmapMaxEntries));
  }
  std::vector<HvmMemmapTableEntry> memmap;
  memmap.reserve(info.e820.size());
  for (const E820Entry& e : info.e820) {
    memmap.push_back({e.addr.value(), e.size, static_cast<uint32_t>(e.type), 0});
  }
  RETURN_IF_ERROR(mem.WriteBytes(
      GuestAddress(kPvhMemmapStart),
      absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(memmap.data()),
                                memmap.size() * sizeof(HvmMemmapTableEntry))));

  HvmStartInfo start_info = {};
  start_info.magic = kHvmStartMagic;
  start_info.version = kHvmStartVersion;
  start_info.cmdline_paddr = info.cmdline.addr.value();
  start_info.rsdp_paddr = info.acpi_rsdp_addr;
  start_info.memmap_paddr = kPvhMemmapStart;
  start_info.memmap_entries = static_cast<uint32_t>(memmap.size());
  if (info.initrd) {
    const HvmModlistEntry module = {info.initrd->addr.value(), info.initrd->size, 0, 0};
    RETURN_IF_ERROR(mem.Write(GuestAddress(kPvhModlistStart), module));
    start_info.nr_modules = 1;
    start_info.modlist_paddr = kPvhModlistStart;
  }
  const GuestAddress addr(kPvhInfoStart);
  RETURN_IF_ERROR(mem.Write(addr, start_info));
  return addr;
}

}  // namespace vmm::x86_64
