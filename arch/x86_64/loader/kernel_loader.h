// Loads a kernel file into guest memory, whatever its format: a bzImage, an
// ELF vmlinux, or an ELF with a PVH entry note.
#ifndef VMM_ARCH_X86_64_LOADER_KERNEL_LOADER_H_
#define VMM_ARCH_X86_64_LOADER_KERNEL_LOADER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "arch/x86_64/loader/loaded_kernel.h"
#include "base/guest_memory.h"

namespace vmm::x86_64 {

struct LoadOptions {
  // Decompress a bzImage's payload in the VMM and load the vmlinux inside,
  // entered at its startup_64 with the bzImage's setup header in
  // boot_params: the guest skips its decompressor, which an emulated CPU
  // runs for tens of minutes. Payloads in formats other than xz and gzip
  // make LoadKernel fail with Unimplemented; retry without the option.
  bool decompress_bzimage = false;
};

// Reads `path` and loads it. A missing file is NotFound; an unreadable,
// unrecognised, malformed kernel or one that does not fit in guest RAM is
// InvalidArgument. The message names the file.
absl::StatusOr<LoadedKernel> LoadKernel(const GuestMemory& mem, const std::string& path,
                                        const LoadOptions& options = {});

// The same for a kernel image already in memory (used by LoadKernel and
// tests). `image` is untrusted: every offset and size in it is checked.
absl::StatusOr<LoadedKernel> LoadKernelImage(const GuestMemory& mem,
                                             absl::Span<const uint8_t> image,
                                             const LoadOptions& options = {});

}  // namespace vmm::x86_64

#endif  // VMM_ARCH_X86_64_LOADER_KERNEL_LOADER_H_
