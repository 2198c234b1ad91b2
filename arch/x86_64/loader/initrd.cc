#include "arch/x86_64/loader/initrd.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "arch/x86_64/layout.h"
#include "arch/x86_64/loader/loader_file.h"
#include "base/status_macros.h"

namespace vmm::x86_64 {
namespace {

uint64_t AlignDown(uint64_t value, uint64_t align) { return value & ~(align - 1); }

}  // namespace

uint64_t InitrdEndLimit(const LoadedKernel& kernel) {
  uint64_t limit = kMmioHoleStart;
  if (kernel.bzimage_header) {
    // initrd_addr_max is inclusive, and 0 on kernels too old to set it.
    uint64_t max = kernel.bzimage_header->version >= 0x0203 ? kernel.bzimage_header->initrd_addr_max
                                                            : kDefaultInitrdAddrMax;
    if (max == 0) max = kDefaultInitrdAddrMax;
    limit = std::min(limit, max + 1);
  }
  return limit;
}

absl::StatusOr<GuestAddress> PlaceInitrd(const GuestMemory& mem, const LoadedKernel& kernel,
                                         uint64_t size) {
  if (size == 0) return absl::InvalidArgumentError("the file is empty");
  const uint64_t limit = InitrdEndLimit(kernel);
  const uint64_t floor = std::max(kernel.end.value(), kHighMemStart);
  std::optional<GuestAddress> best;
  for (const GuestMemory::Region& r : mem.regions()) {
    const uint64_t top = std::min(r.end().value(), limit);
    const uint64_t bottom = std::max(r.start.value(), floor);
    if (top <= bottom || top - bottom < size) continue;
    const uint64_t addr = AlignDown(top - size, kPageSize);
    if (addr < bottom) continue;
    if (!best || addr > best->value()) best = GuestAddress(addr);
  }
  if (!best) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%d bytes do not fit in guest RAM between the kernel end 0x%x and 0x%x "
        "(guest memory is %d MiB)",
        size, floor, limit, mem.total_size() >> 20));
  }
  return *best;
}

absl::StatusOr<LoadedInitrd> LoadInitrd(const GuestMemory& mem, const LoadedKernel& kernel,
                                        const std::string& path) {
  ASSIGN_OR_RETURN(OpenedFile file, OpenRegularFile("initrd", path));
  absl::StatusOr<GuestAddress> addr = PlaceInitrd(mem, kernel, file.size);
  if (!addr.ok()) return Annotate(addr.status(), absl::StrCat("initrd ", path));
  ASSIGN_OR_RETURN(absl::Span<uint8_t> dst, mem.Slice(*addr, file.size));
  RETURN_IF_ERROR(ReadExactly("initrd", path, file.fd, 0, dst));
  return LoadedInitrd{*addr, file.size};
}

}  // namespace vmm::x86_64
