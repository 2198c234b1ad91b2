// The ELF64 kernel loader: loads PT_LOAD segments at their physical
// addresses and finds the PVH entry (XEN_ELFNOTE_PHYS32_ENTRY) if present.
#ifndef VMM_ARCH_X86_64_LOADER_ELF_H_
#define VMM_ARCH_X86_64_LOADER_ELF_H_

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "arch/x86_64/loader/loaded_kernel.h"
#include "base/guest_memory.h"

namespace vmm::x86_64 {

// The Xen ELF note that gives the 32-bit PVH entry point (public/elfnote.h).
inline constexpr uint32_t kXenElfNotePhys32Entry = 18;

// True if `image` starts with the ELF magic.
bool LooksLikeElf(absl::Span<const uint8_t> image);

// The PVH entry from the image's PT_NOTE segments; nullopt if there is no
// such note, an error if a note is malformed. `image` is untrusted.
absl::StatusOr<std::optional<GuestAddress>> FindPvhEntry(absl::Span<const uint8_t> image);

// Loads every PT_LOAD segment at p_paddr (zero-filling p_memsz beyond
// p_filesz). Kind is kElfPvh when the PVH note is present, else kElf.
// Segments must lie in guest RAM at or above 1 MiB (below it live the boot
// structures). `image` is untrusted.
absl::StatusOr<LoadedKernel> LoadElf(const GuestMemory& mem, absl::Span<const uint8_t> image);

}  // namespace vmm::x86_64

#endif  // VMM_ARCH_X86_64_LOADER_ELF_H_
