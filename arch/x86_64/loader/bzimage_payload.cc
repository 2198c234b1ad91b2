#include "arch/x86_64/loader/bzimage_payload.h"

#include <lzma.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "arch/x86_64/loader/bzimage.h"
#include "arch/x86_64/loader/elf.h"
#include "base/status_macros.h"

namespace vmm::x86_64 {
namespace {

// payload_offset/payload_length appeared in boot protocol 2.08.
constexpr uint16_t kMinPayloadProtocol = 0x0208;
// Linux compresses with a 32 MiB dictionary; a hostile header asking for
// more than this is refused rather than allocated.
constexpr uint64_t kXzMemLimit = 128 << 20;
// The first output buffer, unless the appended size asks for more; it
// doubles up to the cap as output appears.
constexpr uint64_t kInitialOutput = 1 << 20;
// zlib counts in 32-bit uInt.
constexpr uint64_t kMaxZlibChunk = 1 << 30;

struct Magic {
  PayloadFormat format;
  absl::string_view bytes;
};
// From lib/decompress.c, lengthened where the format's magic is longer.
constexpr Magic kMagics[] = {
    {PayloadFormat::kXz, absl::string_view("\xfd" "7zXZ\0", 6)},
    {PayloadFormat::kGzip, "\x1f\x8b"},
    {PayloadFormat::kZstd, "\x28\xb5\x2f\xfd"},
    {PayloadFormat::kLz4, "\x02\x21\x4c\x18"},  // LZ4 legacy frame
    {PayloadFormat::kLzma, absl::string_view("\x5d\x00", 2)},
    {PayloadFormat::kBzip2, "BZh"},
    {PayloadFormat::kLzo, "\x89LZO"},
};

// One step of a streaming decoder: consumes from its input, writes at most
// `avail` bytes at `out`, and says how many it wrote.
enum class StepResult { kMore, kEnd };
// The output buffer starts at `size_hint` + 1 bytes (so a correct hint
// needs no regrowth) and doubles; it never exceeds `cap`.
template <typename Step>  // absl::StatusOr<StepResult>(uint8_t* out, size_t avail, size_t* wrote)
absl::StatusOr<std::vector<uint8_t>> DecodeBounded(uint64_t cap, uint64_t size_hint,
                                                   absl::string_view format, Step step) {
  std::vector<uint8_t> out;
  size_t used = 0;
  for (;;) {
    if (used == out.size()) {
      if (out.size() < cap) {
        const uint64_t want =
            out.empty() ? std::max(kInitialOutput, size_hint + 1) : out.size() * 2;
        out.resize(std::min(cap, want));
      } else {
        // Full at the cap: the stream must end without another byte.
        uint8_t probe;
        size_t wrote = 0;
        ASSIGN_OR_RETURN(StepResult r, step(&probe, 1, &wrote));
        if (wrote > 0) {
          return absl::InvalidArgumentError(absl::StrFormat(
              "the %s payload decompresses to more than %d bytes (the limit is the guest "
              "memory size, at most 1 GiB)",
              format, cap));
        }
        if (r == StepResult::kEnd) break;
        continue;
      }
    }
    size_t wrote = 0;
    ASSIGN_OR_RETURN(StepResult r, step(out.data() + used, out.size() - used, &wrote));
    used += wrote;
    if (r == StepResult::kEnd) break;
  }
  out.resize(used);  // the buffer is short-lived: no shrink_to_fit copy
  return out;
}

// Linux appends the uncompressed size (32-bit little-endian) to every
// payload; used only to size the first buffer, as it is not checked.
uint64_t AppendedSize(absl::Span<const uint8_t> payload) {
  uint32_t size = 0;
  if (payload.size() >= sizeof(size)) {
    std::memcpy(&size, payload.data() + payload.size() - sizeof(size), sizeof(size));
  }
  return size;
}

absl::Status XzError(lzma_ret ret) {
  switch (ret) {
    case LZMA_MEMLIMIT_ERROR:
      return absl::InvalidArgumentError(absl::StrFormat(
          "the xz payload needs more than %d MiB of dictionary", kXzMemLimit >> 20));
    case LZMA_MEM_ERROR:
      return absl::ResourceExhaustedError("out of memory decompressing the xz payload");
    case LZMA_FORMAT_ERROR:
      return absl::InvalidArgumentError("the xz payload has a bad stream header");
    case LZMA_OPTIONS_ERROR:
      return absl::InvalidArgumentError("the xz payload uses unsupported options");
    case LZMA_BUF_ERROR:
      return absl::InvalidArgumentError("the xz payload is truncated");
    default:
      return absl::InvalidArgumentError(
          absl::StrFormat("the xz payload is corrupt (liblzma error %d)", static_cast<int>(ret)));
  }
}

absl::StatusOr<std::vector<uint8_t>> DecompressXz(absl::Span<const uint8_t> payload,
                                                  uint64_t cap) {
  lzma_stream strm = LZMA_STREAM_INIT;
  // No LZMA_CONCATENATED: decoding stops after the one stream, before the
  // appended size. The stream header names the filters (x86 BCJ + LZMA2)
  // and the check (crc32), which the decoder applies and verifies.
  lzma_ret ret = lzma_stream_decoder(&strm, kXzMemLimit, 0);
  if (ret != LZMA_OK) return XzError(ret);
  absl::Cleanup end = [&strm] { lzma_end(&strm); };
  strm.next_in = payload.data();
  strm.avail_in = payload.size();
  return DecodeBounded(cap, AppendedSize(payload), "xz", [&](uint8_t* out, size_t avail,
                                      size_t* wrote) -> absl::StatusOr<StepResult> {
    strm.next_out = out;
    strm.avail_out = avail;
    lzma_ret r = lzma_code(&strm, LZMA_FINISH);
    *wrote = avail - strm.avail_out;
    if (r == LZMA_STREAM_END) return StepResult::kEnd;
    if (r != LZMA_OK) return XzError(r);
    return StepResult::kMore;
  });
}

absl::StatusOr<std::vector<uint8_t>> DecompressGzip(absl::Span<const uint8_t> payload,
                                                    uint64_t cap) {
  if (payload.size() > kMaxZlibChunk) {
    return absl::InvalidArgumentError("the gzip payload is too large");
  }
  z_stream strm;
  std::memset(&strm, 0, sizeof(strm));
  // 16 + MAX_WBITS: a gzip wrapper, not zlib's own; one member only, so the
  // appended size after it is not read.
  if (inflateInit2(&strm, 16 + MAX_WBITS) != Z_OK) {
    return absl::ResourceExhaustedError("cannot set up zlib to decompress the gzip payload");
  }
  absl::Cleanup end = [&strm] { inflateEnd(&strm); };
  strm.next_in = const_cast<Bytef*>(payload.data());  // zlib's API is not const-correct
  strm.avail_in = static_cast<uInt>(payload.size());
  return DecodeBounded(cap, AppendedSize(payload), "gzip", [&](uint8_t* out, size_t avail,
                                        size_t* wrote) -> absl::StatusOr<StepResult> {
    const uInt chunk = static_cast<uInt>(std::min<uint64_t>(avail, kMaxZlibChunk));
    strm.next_out = out;
    strm.avail_out = chunk;
    int r = inflate(&strm, Z_NO_FLUSH);
    *wrote = chunk - strm.avail_out;
    if (r == Z_STREAM_END) return StepResult::kEnd;
    if (r == Z_OK) return StepResult::kMore;
    // We always offer output space, so a lack of progress means no input.
    if (r == Z_BUF_ERROR) return absl::InvalidArgumentError("the gzip payload is truncated");
    if (r == Z_MEM_ERROR) {
      return absl::ResourceExhaustedError("out of memory decompressing the gzip payload");
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "the gzip payload is corrupt (", strm.msg != nullptr ? strm.msg : "zlib error", ")"));
  });
}

// The payload of a bzImage whose header ParseBzImage accepted.
absl::StatusOr<absl::Span<const uint8_t>> PayloadOf(absl::Span<const uint8_t> image,
                                                    const BzImageLayout& layout) {
  // ParseBzImage wants 2.12 already; the fields themselves need 2.08.
  if (layout.header.version < kMinPayloadProtocol) {
    return absl::InvalidArgumentError("bzImage predates boot protocol 2.08: no payload fields");
  }
  // Both are 32-bit and relative to the protected-mode kernel, which lies in
  // the file: the 64-bit sum cannot wrap.
  const uint64_t offset = layout.header.payload_offset;
  const uint64_t length = layout.header.payload_length;
  if (length == 0 || offset + length > layout.kernel_size) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bzImage payload at 0x%x+0x%x lies outside the 0x%x-byte protected-mode kernel", offset,
        length, layout.kernel_size));
  }
  return image.subspan(layout.kernel_offset + offset, length);
}

}  // namespace

absl::string_view PayloadFormatName(PayloadFormat format) {
  switch (format) {
    case PayloadFormat::kGzip: return "gzip";
    case PayloadFormat::kBzip2: return "bzip2";
    case PayloadFormat::kLzma: return "lzma";
    case PayloadFormat::kXz: return "xz";
    case PayloadFormat::kLzo: return "lzo";
    case PayloadFormat::kLz4: return "lz4";
    case PayloadFormat::kZstd: return "zstd";
    case PayloadFormat::kUnknown: break;
  }
  return "unknown format";
}

PayloadFormat IdentifyPayloadFormat(absl::Span<const uint8_t> payload) {
  for (const Magic& m : kMagics) {
    if (payload.size() >= m.bytes.size() &&
        std::memcmp(payload.data(), m.bytes.data(), m.bytes.size()) == 0) {
      return m.format;
    }
  }
  return PayloadFormat::kUnknown;
}

absl::StatusOr<absl::Span<const uint8_t>> FindBzImagePayload(absl::Span<const uint8_t> image) {
  ASSIGN_OR_RETURN(BzImageLayout layout, ParseBzImage(image));
  return PayloadOf(image, layout);
}

absl::StatusOr<std::vector<uint8_t>> DecompressPayload(absl::Span<const uint8_t> payload,
                                                       uint64_t max_size) {
  const uint64_t cap = std::min(max_size, kMaxDecompressedKernel);
  const PayloadFormat format = IdentifyPayloadFormat(payload);
  switch (format) {
    case PayloadFormat::kXz:
      return DecompressXz(payload, cap);
    case PayloadFormat::kGzip:
      return DecompressGzip(payload, cap);
    default:
      return absl::UnimplementedError(absl::StrCat("payload compressed with ",
                                                   PayloadFormatName(format),
                                                   ": vmm decompresses xz and gzip"));
  }
}

absl::StatusOr<LoadedKernel> LoadBzImagePayload(const GuestMemory& mem,
                                                absl::Span<const uint8_t> image) {
  ASSIGN_OR_RETURN(BzImageLayout layout, ParseBzImage(image));
  ASSIGN_OR_RETURN(absl::Span<const uint8_t> payload, PayloadOf(image, layout));
  // The vmlinux must fit in guest RAM, which also bounds the buffer.
  ASSIGN_OR_RETURN(std::vector<uint8_t> vmlinux, DecompressPayload(payload, mem.total_size()));
  // x86 payloads are ELF: the guest's decompressor parses them the same way.
  if (!LooksLikeElf(vmlinux)) {
    return absl::InvalidArgumentError("the decompressed bzImage payload is not an ELF vmlinux");
  }
  absl::StatusOr<LoadedKernel> elf = LoadElf(mem, vmlinux);
  if (!elf.ok()) return Annotate(elf.status(), "decompressed vmlinux");
  // LoadElf checks the PVH entry when there is one; this path uses e_entry
  // (phys_startup_64) whatever notes the vmlinux carries.
  if (!mem.Contains(elf->entry64, 1)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "decompressed vmlinux entry point 0x%x is outside guest RAM", elf->entry64.value()));
  }
  // Reserve init_size from the load address, as for a bzImage the guest
  // decompresses, so the initrd is placed above everything the kernel uses
  // early (its bss, brk and early page tables).
  const uint64_t footprint = std::max<uint64_t>(elf->end - elf->start, layout.header.init_size);
  if (!mem.Contains(elf->start, footprint)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "guest memory (%d MiB) is too small for the kernel: it needs 0x%x-0x%x (init_size "
        "0x%x) in RAM",
        mem.total_size() >> 20, elf->start.value(), elf->start.value() + footprint,
        uint32_t{layout.header.init_size}));  // a copy: packed field
  }

  LoadedKernel kernel;
  kernel.kind = KernelKind::kBzImage;
  kernel.entry64 = elf->entry64;
  kernel.start = elf->start;
  kernel.end = elf->start + footprint;
  kernel.bzimage_header = layout.header;
  kernel.decompressed_by_vmm = true;
  return kernel;
}

}  // namespace vmm::x86_64
