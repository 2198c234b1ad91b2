#include "arch/x86_64/loader/kernel_loader.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "arch/x86_64/loader/bzimage.h"
#include "arch/x86_64/loader/bzimage_payload.h"
#include "arch/x86_64/loader/elf.h"
#include "arch/x86_64/loader/loader_file.h"
#include "base/status_macros.h"

namespace vmm::x86_64 {

absl::StatusOr<LoadedKernel> LoadKernelImage(const GuestMemory& mem,
                                             absl::Span<const uint8_t> image,
                                             const LoadOptions& options) {
  if (LooksLikeElf(image)) return LoadElf(mem, image);
  if (LooksLikeBzImage(image)) {
    return options.decompress_bzimage ? LoadBzImagePayload(mem, image) : LoadBzImage(mem, image);
  }
  return absl::InvalidArgumentError("neither a bzImage nor an ELF executable");
}

absl::StatusOr<LoadedKernel> LoadKernel(const GuestMemory& mem, const std::string& path,
                                        const LoadOptions& options) {
  // A kernel larger than guest RAM cannot fit; the bound also caps the buffer.
  ASSIGN_OR_RETURN(std::vector<uint8_t> image, ReadWholeFile("kernel", path, mem.total_size()));
  absl::StatusOr<LoadedKernel> kernel = LoadKernelImage(mem, image, options);
  if (!kernel.ok()) return Annotate(kernel.status(), absl::StrCat("kernel ", path));
  return kernel;
}

}  // namespace vmm::x86_64
