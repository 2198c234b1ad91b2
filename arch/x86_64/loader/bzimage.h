// The Linux bzImage loader (Documentation/arch/x86/boot.rst): validates the
// setup header, loads the protected-mode kernel and reports the 64-bit entry.
#ifndef VMM_ARCH_X86_64_LOADER_BZIMAGE_H_
#define VMM_ARCH_X86_64_LOADER_BZIMAGE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "arch/x86_64/loader/loaded_kernel.h"
#include "base/guest_memory.h"

namespace vmm::x86_64 {

// Where the setup header sits in the file (and in boot_params).
inline constexpr uint64_t kSetupHeaderOffset = 0x1f1;
inline constexpr uint64_t kBootFlagOffset = 0x1fe;
inline constexpr uint64_t kHeaderMagicOffset = 0x202;
inline constexpr uint16_t kBootFlag = 0xaa55;
inline constexpr uint32_t kHeaderMagic = 0x53726448;  // "HdrS"
// The oldest protocol with a 64-bit entry point (XLF_KERNEL_64).
inline constexpr uint16_t kMinBootProtocol = 0x020c;
// The 64-bit entry is this far into the protected-mode kernel.
inline constexpr uint64_t kEntry64Offset = 0x200;

// True if `image` carries the "HdrS" setup header magic.
bool LooksLikeBzImage(absl::Span<const uint8_t> image);

// A bzImage's setup header, checked as LoadBzImage checks it, and where its
// protected-mode kernel lies in the file.
struct BzImageLayout {
  setup_header header;
  uint64_t kernel_offset = 0;  // (setup_sects + 1) * 512, inside the file
  uint64_t kernel_size = 0;    // the rest of the file
};

// Validates the header (boot flag, protocol >= 2.12, 64-bit entry, loaded
// high, syssize within the file). `image` is untrusted.
absl::StatusOr<BzImageLayout> ParseBzImage(absl::Span<const uint8_t> image);

// The kernel's release ("6.1.0-27-amd64"): the first word of the version
// string the setup header's kernel_version field points at (protocol
// >= 2.00), as `file` and kexec read it. `image` is untrusted: NotFound when
// the field is absent or points outside the file or at no printable word.
absl::StatusOr<std::string> BzImageKernelRelease(absl::Span<const uint8_t> image);

// Loads the protected-mode part of a bzImage at its preferred address (or
// 1 MiB), after checking the boot flag, the protocol version (>= 2.12), that
// the kernel has a 64-bit entry, and that the kernel plus its init_size fits
// in guest RAM. `image` is untrusted.
absl::StatusOr<LoadedKernel> LoadBzImage(const GuestMemory& mem, absl::Span<const uint8_t> image);

}  // namespace vmm::x86_64

#endif  // VMM_ARCH_X86_64_LOADER_BZIMAGE_H_
