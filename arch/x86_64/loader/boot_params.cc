#include "arch/x86_64/loader/boot_params.h"

#include <cstring>

#include "absl/strings/str_format.h"
#include "arch/x86_64/layout.h"
#include "arch/x86_64/loader/bzimage.h"
#include "base/status_macros.h"

namespace vmm::x86_64 {
namespace {

// The boot loader ID for "undefined / not in the registry".
constexpr uint8_t kLoaderTypeUndefined = 0xff;

uint32_t Low32(uint64_t v) { return static_cast<uint32_t>(v); }
uint32_t High32(uint64_t v) { return static_cast<uint32_t>(v >> 32); }

}  // namespace

absl::StatusOr<boot_params> BuildBootParams(const LoadedKernel& kernel, const BootInfo& info) {
  if (info.e820.size() > E820_MAX_ENTRIES_ZEROPAGE) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "e820 map has %d entries; boot_params holds at most %d", info.e820.size(),
        E820_MAX_ENTRIES_ZEROPAGE));
  }
  boot_params bp;
  std::memset(&bp, 0, sizeof(bp));
  if (kernel.bzimage_header) {
    bp.hdr = *kernel.bzimage_header;
    // Only used by the 32-bit entry, but keep it truthful.
    if (kernel.start.value() <= 0xffff'ffff) bp.hdr.code32_start = Low32(kernel.start.value());
  } else {
    bp.hdr.boot_flag = kBootFlag;
    bp.hdr.header = kHeaderMagic;
    bp.hdr.version = kElfBootProtocol;
    bp.hdr.cmdline_size = static_cast<uint32_t>(info.cmdline.size > 0 ? info.cmdline.size - 1 : 0);
  }
  bp.hdr.type_of_loader = kLoaderTypeUndefined;
  // The kernel sits above 1 MiB. CAN_USE_HEAP (and heap_end_ptr) only
  // matter to the real-mode setup code, which the 64-bit entry skips.
  bp.hdr.loadflags |= LOADED_HIGH;

  bp.hdr.cmd_line_ptr = Low32(info.cmdline.addr.value());
  bp.ext_cmd_line_ptr = High32(info.cmdline.addr.value());
  if (info.initrd) {
    bp.hdr.ramdisk_image = Low32(info.initrd->addr.value());
    bp.ext_ramdisk_image = High32(info.initrd->addr.value());
    bp.hdr.ramdisk_size = Low32(info.initrd->size);
    bp.ext_ramdisk_size = High32(info.initrd->size);
  }
  bp.acpi_rsdp_addr = info.acpi_rsdp_addr;
  bp.e820_entries = static_cast<uint8_t>(info.e820.size());
  for (size_t i = 0; i < info.e820.size(); ++i) {
    const E820Entry& e = info.e820[i];
    bp.e820_table[i] = boot_e820_entry{e.addr.value(), e.size, static_cast<uint32_t>(e.type)};
  }
  return bp;
}

absl::StatusOr<GuestAddress> WriteBootParams(const GuestMemory& mem, const LoadedKernel& kernel,
                                             const BootInfo& info) {
  ASSIGN_OR_RETURN(boot_params bp, BuildBootParams(kernel, info));
  const GuestAddress addr(kZeroPageStart);
  RETURN_IF_ERROR(mem.Write(addr, bp));
  return addr;
}

}  // namespace vmm::x86_64
