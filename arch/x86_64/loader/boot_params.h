// The zero page (struct boot_params) for the Linux 64-bit boot protocol.
#ifndef VMM_ARCH_X86_64_LOADER_BOOT_PARAMS_H_
#define VMM_ARCH_X86_64_LOADER_BOOT_PARAMS_H_

#include <asm/bootparam.h>

#include "absl/status/statusor.h"
#include "arch/x86_64/loader/boot_info.h"
#include "arch/x86_64/loader/loaded_kernel.h"
#include "base/guest_memory.h"

namespace vmm::x86_64 {

// The protocol version claimed for an ELF vmlinux, which has no header of its
// own: 2.15, whose fields (acpi_rsdp_addr, ext_*) are the ones we fill.
inline constexpr uint16_t kElfBootProtocol = 0x020f;

// Builds boot_params: a bzImage's setup header (or, for an ELF, the few
// header fields Linux checks), the loader type, cmdline pointer, initrd,
// e820 map and RSDP address. InvalidArgument if the map has more than
// E820_MAX_ENTRIES_ZEROPAGE entries.
absl::StatusOr<boot_params> BuildBootParams(const LoadedKernel& kernel, const BootInfo& info);

// Writes BuildBootParams' result at kZeroPageStart and returns that address
// (the value for RSI at the 64-bit entry).
absl::StatusOr<GuestAddress> WriteBootParams(const GuestMemory& mem, const LoadedKernel& kernel,
                                             const BootInfo& info);

}  // namespace vmm::x86_64

#endif  // VMM_ARCH_X86_64_LOADER_BOOT_PARAMS_H_
