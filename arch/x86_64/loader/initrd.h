// Placing and loading the initial ramdisk: as high as the kernel allows,
// above the kernel and below the 32-bit MMIO hole.
#ifndef VMM_ARCH_X86_64_LOADER_INITRD_H_
#define VMM_ARCH_X86_64_LOADER_INITRD_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "arch/x86_64/loader/loaded_kernel.h"
#include "base/guest_memory.h"

namespace vmm::x86_64 {

struct LoadedInitrd {
  GuestAddress addr;
  uint64_t size = 0;
};

// Old bzImages (protocol < 2.03) may not say; this is their limit.
inline constexpr uint64_t kDefaultInitrdAddrMax = 0x37ff'ffff;

// One past the highest address the initrd may occupy for `kernel`: the
// bzImage's initrd_addr_max + 1, never above the MMIO hole.
uint64_t InitrdEndLimit(const LoadedKernel& kernel);

// The highest page-aligned address at which `size` bytes fit in RAM above
// kernel.end and below InitrdEndLimit; InvalidArgument if there is none.
absl::StatusOr<GuestAddress> PlaceInitrd(const GuestMemory& mem, const LoadedKernel& kernel,
                                         uint64_t size);

// Reads the initrd file straight into guest memory at PlaceInitrd's address.
absl::StatusOr<LoadedInitrd> LoadInitrd(const GuestMemory& mem, const LoadedKernel& kernel,
                                        const std::string& path);

}  // namespace vmm::x86_64

#endif  // VMM_ARCH_X86_64_LOADER_INITRD_H_
