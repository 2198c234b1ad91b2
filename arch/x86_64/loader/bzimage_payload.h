// The compressed vmlinux inside a bzImage (boot protocol 2.08+: the setup
// header's payload_offset/payload_length), and decompressing it in the VMM so
// the guest skips its own decompressor — which under an instruction emulator
// takes tens of minutes for an XZ kernel.
#ifndef VMM_ARCH_X86_64_LOADER_BZIMAGE_PAYLOAD_H_
#define VMM_ARCH_X86_64_LOADER_BZIMAGE_PAYLOAD_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "arch/x86_64/loader/loaded_kernel.h"
#include "base/guest_memory.h"

namespace vmm::x86_64 {

// The formats Linux can compress its payload with (CONFIG_KERNEL_*), known
// by their magic bytes.
enum class PayloadFormat { kUnknown, kGzip, kBzip2, kLzma, kXz, kLzo, kLz4, kZstd };

// "xz", "gzip", ... ("unknown format" for kUnknown).
absl::string_view PayloadFormatName(PayloadFormat format);

// The format `payload` starts with.
PayloadFormat IdentifyPayloadFormat(absl::Span<const uint8_t> payload);

// The payload bytes of a bzImage: validates the setup header (as
// ParseBzImage) and that the payload lies inside the protected-mode kernel.
// `image` is untrusted; a bad header or offsets are InvalidArgument.
absl::StatusOr<absl::Span<const uint8_t>> FindBzImagePayload(absl::Span<const uint8_t> image);

// Never produce more than this, whatever the guest memory size.
inline constexpr uint64_t kMaxDecompressedKernel = uint64_t{1} << 30;

// Decompresses an xz or gzip payload, refusing output longer than
// min(max_size, kMaxDecompressedKernel) bytes; memory use is bounded by that
// cap (the buffer grows as output appears) plus the xz dictionary limit.
// Another format is Unimplemented ("payload compressed with lz4: vmm
// decompresses xz and gzip") so the caller can let the guest decompress;
// corrupt or oversized data is InvalidArgument. Bytes after the end of the
// compressed stream (the appended uncompressed size) are ignored.
absl::StatusOr<std::vector<uint8_t>> DecompressPayload(absl::Span<const uint8_t> payload,
                                                       uint64_t max_size);

// Decompresses a bzImage's payload and loads the vmlinux ELF inside by
// physical address. The result is kind kBzImage with the file's setup header
// (for boot_params), entry64 = the vmlinux's e_entry (startup_64), no PVH
// entry, [start, end) at least init_size long, decompressed_by_vmm set.
// Errors as DecompressPayload, plus those of loading the ELF.
absl::StatusOr<LoadedKernel> LoadBzImagePayload(const GuestMemory& mem,
                                                absl::Span<const uint8_t> image);

}  // namespace vmm::x86_64

#endif  // VMM_ARCH_X86_64_LOADER_BZIMAGE_PAYLOAD_H_
