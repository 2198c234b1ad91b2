// What the boot-information writers (boot_params for the 64-bit Linux entry,
// hvm_start_info for PVH) tell the kernel beyond what it loaded.
#ifndef VMM_ARCH_X86_64_LOADER_BOOT_INFO_H_
#define VMM_ARCH_X86_64_LOADER_BOOT_INFO_H_

#include <cstdint>
#include <optional>

#include "absl/types/span.h"
#include "arch/x86_64/loader/cmdline.h"
#include "arch/x86_64/loader/e820_entry.h"
#include "arch/x86_64/loader/initrd.h"

namespace vmm::x86_64 {

struct BootInfo {
  GuestCmdline cmdline;                 // from WriteCmdline
  std::optional<LoadedInitrd> initrd;   // from LoadInitrd
  absl::Span<const E820Entry> e820;     // from firmware::BuildE820Map; must outlive the call
  uint64_t acpi_rsdp_addr = 0;          // 0 when there are no ACPI tables
};

}  // namespace vmm::x86_64

#endif  // VMM_ARCH_X86_64_LOADER_BOOT_INFO_H_
