#include "arch/x86_64/loader/bzimage.h"

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "absl/strings/str_format.h"
#include "arch/x86_64/layout.h"
#include "base/status_macros.h"

namespace vmm::x86_64 {
namespace {

// A 2.12+ setup header reaches at least to the end of handover_offset.
constexpr uint64_t kMinSetupHeaderEnd = 0x268;
constexpr uint64_t kSectorSize = 512;

template <typename T>
T LoadLe(absl::Span<const uint8_t> image, uint64_t offset) {
  T value;
  std::memcpy(&value, image.data() + offset, sizeof(T));
  return value;
}

}  // namespace

bool LooksLikeBzImage(absl::Span<const uint8_t> image) {
  return image.size() >= kHeaderMagicOffset + 4 &&
         LoadLe<uint32_t>(image, kHeaderMagicOffset) == kHeaderMagic;
}

absl::StatusOr<BzImageLayout> ParseBzImage(absl::Span<const uint8_t> image) {
  const uint64_t file_size = image.size();
  if (file_size < kSetupHeaderOffset + sizeof(setup_header)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "truncated bzImage: %d bytes is too short for the setup header", file_size));
  }
  if (!LooksLikeBzImage(image)) return absl::InvalidArgumentError("not a bzImage (no HdrS magic)");
  const uint16_t boot_flag = LoadLe<uint16_t>(image, kBootFlagOffset);
  if (boot_flag != kBootFlag) {
    return absl::InvalidArgumentError(
        absl::StrFormat("bad bzImage boot_flag 0x%04x (expected 0xaa55)", boot_flag));
  }
  const uint16_t version = LoadLe<uint16_t>(image, kSetupHeaderOffset + offsetof(setup_header, version));
  if (version < kMinBootProtocol) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bzImage boot protocol %d.%02d is too old; the 64-bit entry needs 2.12 or later",
        version >> 8, version & 0xff));
  }
  // The header ends at 0x202 + the byte at 0x201 (the jump over it); copy
  // only that much so setup code never lands in boot_params.
  const uint64_t header_end = kHeaderMagicOffset + image[0x201];
  if (header_end < kMinSetupHeaderEnd) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "truncated bzImage setup header: it ends at 0x%x, before 0x%x", header_end,
        kMinSetupHeaderEnd));
  }
  setup_header hdr;
  std::memset(&hdr, 0, sizeof(hdr));
  std::memcpy(&hdr, image.data() + kSetupHeaderOffset,
              std::min<uint64_t>(sizeof(hdr), header_end - kSetupHeaderOffset));

  if ((hdr.loadflags & LOADED_HIGH) == 0) {
    return absl::InvalidArgumentError("zImage kernels (loaded below 1 MiB) are not supported");
  }
  if ((hdr.xloadflags & XLF_KERNEL_64) == 0) {
    return absl::InvalidArgumentError("bzImage has no 64-bit entry point (XLF_KERNEL_64 clear)");
  }

  // Real-mode setup: setup_sects sectors after the boot sector; 0 means 4.
  const uint64_t setup_sects = hdr.setup_sects == 0 ? 4 : hdr.setup_sects;
  const uint64_t kernel_offset = (setup_sects + 1) * kSectorSize;
  if (kernel_offset >= file_size) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "truncated bzImage: %d setup sectors leave no protected-mode kernel in %d bytes",
        setup_sects, file_size));
  }
  const uint64_t kernel_size = file_size - kernel_offset;
  const uint64_t declared_size = uint64_t{hdr.syssize} * 16;
  if (declared_size > kernel_size) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "truncated bzImage: the protected-mode kernel is %d bytes, the header says %d",
        kernel_size, declared_size));
  }
  return BzImageLayout{hdr, kernel_offset, kernel_size};
}

absl::StatusOr<LoadedKernel> LoadBzImage(const GuestMemory& mem, absl::Span<const uint8_t> image) {
  ASSIGN_OR_RETURN(BzImageLayout layout, ParseBzImage(image));
  const setup_header& hdr = layout.header;
  const uint64_t kernel_offset = layout.kernel_offset;
  const uint64_t kernel_size = layout.kernel_size;

  // Load where the kernel wants to run: a relocatable kernel would otherwise
  // move itself to at least pref_address anyway, and a non-relocatable one
  // must run there.
  const uint64_t load = hdr.pref_address != 0 ? hdr.pref_address : kHighMemStart;
  if (load < kHighMemStart || load % kPageSize != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bzImage preferred load address 0x%x is below 1 MiB or not page-aligned", load));
  }
  // The kernel needs init_size bytes from its start to decompress in place.
  const uint64_t footprint = std::max<uint64_t>(kernel_size, hdr.init_size);
  std::optional<GuestAddress> end = GuestAddress(load).CheckedAdd(footprint);
  if (!end || !mem.Contains(GuestAddress(load), footprint)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "guest memory (%d MiB) is too small for the kernel: it needs 0x%x-0x%x (init_size "
        "0x%x) in RAM",
        mem.total_size() >> 20, load, load + footprint, uint32_t{hdr.init_size}));  // a copy: packed field
  }
  RETURN_IF_ERROR(mem.WriteBytes(GuestAddress(load), image.subspan(kernel_offset)));

  LoadedKernel kernel;
  kernel.kind = KernelKind::kBzImage;
  kernel.entry64 = GuestAddress(load + kEntry64Offset);
  kernel.start = GuestAddress(load);
  kernel.end = *end;
  kernel.bzimage_header = hdr;
  return kernel;
}

absl::StatusOr<std::string> BzImageKernelRelease(absl::Span<const uint8_t> image) {
  constexpr uint64_t kVersionField = 0x20e;  // setup_header.kernel_version
  if (!LooksLikeBzImage(image) || image.size() < kVersionField + 2) {
    return absl::NotFoundError("not a bzImage");
  }
  const uint64_t pointer = image[kVersionField] | (uint64_t{image[kVersionField + 1]} << 8);
  const uint64_t at = pointer + 0x200;
  std::string release;
  for (uint64_t i = at; pointer != 0 && i < image.size() && release.size() < 64; ++i) {
    const char c = static_cast<char>(image[i]);
    if (c <= ' ' || c > '~') break;
    release.push_back(c);
  }
  if (release.empty()) return absl::NotFoundError("the bzImage names no kernel release");
  return release;
}

}  // namespace vmm::x86_64
