// What a kernel loader put into guest memory and how to enter it. The
// loaders only load; boot_params / PVH start_info are written by a later step
// (boot_params.h, pvh_start_info.h) from this description.
#ifndef VMM_ARCH_X86_64_LOADER_LOADED_KERNEL_H_
#define VMM_ARCH_X86_64_LOADER_LOADED_KERNEL_H_

#include <asm/bootparam.h>

#include <optional>

#include "base/guest_address.h"

namespace vmm::x86_64 {

enum class KernelKind {
  kBzImage,  // Linux bzImage: 64-bit boot protocol with boot_params
  kElf,      // ELF vmlinux without a PVH note: 64-bit boot protocol with boot_params
  kElfPvh,   // ELF with XEN_ELFNOTE_PHYS32_ENTRY: PVH entry with hvm_start_info
};

struct LoadedKernel {
  KernelKind kind = KernelKind::kElf;
  // The 64-bit entry (long mode, RSI = boot_params): load address + 0x200 for
  // a bzImage, e_entry for an ELF.
  GuestAddress entry64;
  // The 32-bit PVH entry (protected mode, paging off, EBX = start_info);
  // set exactly when kind == kElfPvh, and then the one to use.
  std::optional<GuestAddress> pvh_entry;
  // [start, end) covers everything the kernel occupies, including for a
  // bzImage the init_size it needs to decompress; the initrd goes above end.
  GuestAddress start;
  GuestAddress end;
  // The setup header of a bzImage as found in the file, to be copied into
  // boot_params; nullopt for ELF kernels.
  std::optional<setup_header> bzimage_header;
  // A bzImage whose payload the VMM decompressed: the vmlinux ELF inside is
  // loaded and entry64 is its startup_64, not load + 0x200.
  bool decompressed_by_vmm = false;
};

}  // namespace vmm::x86_64

#endif  // VMM_ARCH_X86_64_LOADER_LOADED_KERNEL_H_
