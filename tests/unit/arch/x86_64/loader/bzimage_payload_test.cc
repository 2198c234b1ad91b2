#include "arch/x86_64/loader/bzimage_payload.h"

#include <lzma.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <sys/stat.h>
#include <vector>

#include "absl/status/status.h"
#include "arch/x86_64/loader/initrd.h"
#include "arch/x86_64/loader/kernel_loader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/arch/x86_64/loader/test_images.h"

namespace vmm::x86_64 {
namespace {

using ::testing::HasSubstr;
using namespace ::vmm::x86_64::testing;

constexpr LoadOptions kDecompress{.decompress_bzimage = true};
// Where the payload starts inside the protected-mode kernel (after what
// would be the decompressor's code).
constexpr uint32_t kPayloadOffset = 0x100;

// xz as Linux's scripts/xz_wrap.sh makes it: CRC32 check, optionally with
// the x86 BCJ filter in front of LZMA2.
std::vector<uint8_t> Xz(const std::vector<uint8_t>& data, bool x86_bcj = false) {
  lzma_options_lzma lzma2;
  EXPECT_FALSE(lzma_lzma_preset(&lzma2, 0));
  lzma_filter filters[3];
  int n = 0;
  if (x86_bcj) filters[n++] = {LZMA_FILTER_X86, nullptr};
  filters[n++] = {LZMA_FILTER_LZMA2, &lzma2};
  filters[n] = {LZMA_VLI_UNKNOWN, nullptr};
  std::vector<uint8_t> out(lzma_stream_buffer_bound(data.size()));
  size_t out_pos = 0;
  EXPECT_EQ(lzma_stream_buffer_encode(filters, LZMA_CHECK_CRC32, nullptr, data.data(),
                                      data.size(), out.data(), &out_pos, out.size()),
            LZMA_OK);
  out.resize(out_pos);
  return out;
}

std::vector<uint8_t> Gzip(const std::vector<uint8_t>& data) {
  z_stream strm;
  std::memset(&strm, 0, sizeof(strm));
  EXPECT_EQ(deflateInit2(&strm, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::vector<uint8_t> out(deflateBound(&strm, data.size()));
  strm.next_in = const_cast<Bytef*>(data.data());
  strm.avail_in = static_cast<uInt>(data.size());
  strm.next_out = out.data();
  strm.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&strm, Z_FINISH), Z_STREAM_END);
  out.resize(strm.total_out);
  deflateEnd(&strm);
  return out;
}

// What Linux's size_append puts after the compressed stream.
std::vector<uint8_t> WithAppendedSize(std::vector<uint8_t> compressed, uint32_t size) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(&size);
  compressed.insert(compressed.end(), p, p + sizeof(size));
  return compressed;
}

// A bzImage whose protected-mode kernel holds `payload` at kPayloadOffset,
// described by payload_offset/payload_length as mkpiggy does.
std::vector<uint8_t> BzImageWithPayload(const std::vector<uint8_t>& payload,
                                        uint32_t init_size = 4 * kMiB) {
  BzImageSpec spec;
  // Rounded to 16 bytes: syssize counts in those.
  spec.kernel_size = (kPayloadOffset + payload.size() + 0x40 + 15) & ~uint64_t{15};
  spec.init_size = init_size;
  std::vector<uint8_t> image = MakeBzImage(spec);
  const uint64_t kernel_offset = (spec.setup_sects + 1) * 512;
  std::copy(payload.begin(), payload.end(), image.begin() + kernel_offset + kPayloadOffset);
  HeaderOf(image).payload_offset = kPayloadOffset;
  HeaderOf(image).payload_length = static_cast<uint32_t>(payload.size());
  return image;
}

std::vector<uint8_t> SimpleElf() { return MakeElf(SimpleElfSpec()); }

std::vector<uint8_t> XzBzImage(const std::vector<uint8_t>& vmlinux, bool x86_bcj = false) {
  return BzImageWithPayload(
      WithAppendedSize(Xz(vmlinux, x86_bcj), static_cast<uint32_t>(vmlinux.size())));
}

TEST(BzImagePayloadTest, XzPayloadLoadsTheVmlinuxInsideAtItsElfEntry) {
  GuestMemory mem = MakeGuestMemory(16 * kMiB);
  std::vector<uint8_t> image = XzBzImage(SimpleElf());
  auto kernel = LoadKernelImage(mem, image, kDecompress);
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  EXPECT_EQ(kernel->kind, KernelKind::kBzImage);
  EXPECT_TRUE(kernel->decompressed_by_vmm);
  EXPECT_EQ(kernel->entry64, GuestAddress(2 * kMiB)) << "the ELF's e_entry, not load + 0x200";
  EXPECT_FALSE(kernel->pvh_entry.has_value());
  ASSERT_TRUE(kernel->bzimage_header.has_value());
  EXPECT_EQ(std::memcmp(&*kernel->bzimage_header, &HeaderOf(image), sizeof(setup_header)), 0)
      << "boot_params gets the file's setup header";
  // The segment's bytes, not the compressed ones, are at its physical address.
  EXPECT_EQ(*mem.Read<uint8_t>(GuestAddress(2 * kMiB + 9)), KernelByte(9));
  EXPECT_EQ(*mem.Read<uint8_t>(GuestAddress(2 * kMiB + 0x1fff)), KernelByte(0x1fff));
}

TEST(BzImagePayloadTest, KernelFootprintCoversInitSizeSoTheInitrdGoesAbove) {
  GuestMemory mem = MakeGuestMemory(16 * kMiB);
  auto kernel = LoadKernelImage(mem, XzBzImage(SimpleElf()), kDecompress);
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  EXPECT_EQ(kernel->start, GuestAddress(2 * kMiB));
  EXPECT_EQ(kernel->end, GuestAddress(2 * kMiB + 4 * kMiB)) << "start + init_size";
  auto initrd = PlaceInitrd(mem, *kernel, 1 * kMiB);
  ASSERT_TRUE(initrd.ok()) << initrd.status();
  EXPECT_GE(*initrd, kernel->end);
}

TEST(BzImagePayloadTest, KernelFootprintCoversTheVmlinuxWhenInitSizeIsSmaller) {
  GuestMemory mem = MakeGuestMemory(16 * kMiB);
  auto kernel = LoadKernelImage(
      mem, BzImageWithPayload(Xz(SimpleElf()), /*init_size=*/0x1000), kDecompress);
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  EXPECT_EQ(kernel->end, GuestAddress(2 * kMiB + 0x3000)) << "the segment's p_memsz";
}

TEST(BzImagePayloadTest, XzPayloadWithX86BcjFilterLoads) {
  GuestMemory mem = MakeGuestMemory(16 * kMiB);
  ElfSpec spec = SimpleElfSpec();
  // Call instructions (E8 rel32), which BCJ rewrites, so the filter matters.
  for (size_t i = 0; i + 5 <= spec.segments[0].data.size(); i += 16) {
    spec.segments[0].data[i] = 0xe8;
  }
  std::vector<uint8_t> vmlinux = MakeElf(spec);
  auto kernel = LoadKernelImage(mem, XzBzImage(vmlinux, /*x86_bcj=*/true), kDecompress);
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  auto loaded = mem.Slice(GuestAddress(2 * kMiB), spec.segments[0].data.size());
  ASSERT_TRUE(loaded.ok());
  EXPECT_TRUE(std::equal(loaded->begin(), loaded->end(), spec.segments[0].data.begin()));
}

TEST(BzImagePayloadTest, GzipPayloadLoads) {
  GuestMemory mem = MakeGuestMemory(16 * kMiB);
  std::vector<uint8_t> vmlinux = SimpleElf();
  auto kernel = LoadKernelImage(
      mem, BzImageWithPayload(WithAppendedSize(Gzip(vmlinux), vmlinux.size())), kDecompress);
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  EXPECT_TRUE(kernel->decompressed_by_vmm);
  EXPECT_EQ(kernel->entry64, GuestAddress(2 * kMiB));
  EXPECT_EQ(*mem.Read<uint8_t>(GuestAddress(2 * kMiB + 100)), KernelByte(100));
}

TEST(BzImagePayloadTest, VmlinuxWithPvhNoteIsStillEnteredThroughItsElfEntry) {
  GuestMemory mem = MakeGuestMemory(16 * kMiB);
  ElfSpec spec = SimpleElfSpec();
  spec.pvh_entry = 2 * kMiB + 0x40;
  auto kernel = LoadKernelImage(mem, XzBzImage(MakeElf(spec)), kDecompress);
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  EXPECT_EQ(kernel->kind, KernelKind::kBzImage);
  EXPECT_FALSE(kernel->pvh_entry.has_value());
  EXPECT_EQ(kernel->entry64, GuestAddress(2 * kMiB));
}

TEST(BzImagePayloadTest, WithoutTheOptionTheBzImageIsLoadedForTheGuestToDecompress) {
  GuestMemory mem = MakeGuestMemory(32 * kMiB);
  auto kernel = LoadKernelImage(mem, XzBzImage(SimpleElf()));
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  EXPECT_FALSE(kernel->decompressed_by_vmm);
  EXPECT_EQ(kernel->entry64, GuestAddress(16 * kMiB + 0x200));
}

TEST(BzImagePayloadTest, OptionLeavesElfKernelsAlone) {
  GuestMemory mem = MakeGuestMemory(16 * kMiB);
  auto kernel = LoadKernelImage(mem, SimpleElf(), kDecompress);
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  EXPECT_EQ(kernel->kind, KernelKind::kElf);
  EXPECT_FALSE(kernel->decompressed_by_vmm);
}

TEST(BzImagePayloadTest, CorruptXzPayloadIsInvalidArgumentNamingTheFile) {
  GuestMemory mem = MakeGuestMemory(16 * kMiB);
  std::vector<uint8_t> payload = Xz(SimpleElf());
  for (size_t i = 24; i < payload.size() - 16; i += 7) payload[i] ^= 0x5a;
  TempFile file("corrupt-xz-bzImage", BzImageWithPayload(payload));
  auto kernel = LoadKernel(mem, file.path(), kDecompress);
  ASSERT_FALSE(kernel.ok());
  EXPECT_EQ(kernel.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(kernel.status().message(), HasSubstr("kernel " + file.path() + ": "));
  EXPECT_THAT(kernel.status().message(), HasSubstr("xz payload"));
}

TEST(BzImagePayloadTest, TruncatedXzPayloadIsInvalidArgument) {
  std::vector<uint8_t> payload = Xz(SimpleElf());
  payload.resize(payload.size() / 2);
  auto out = DecompressPayload(payload, 16 * kMiB);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out.status().message(), HasSubstr("truncated"));
}

TEST(BzImagePayloadTest, CorruptGzipPayloadIsInvalidArgument) {
  std::vector<uint8_t> payload = Gzip(SimpleElf());
  for (size_t i = 12; i < payload.size() - 8; i += 5) payload[i] ^= 0xa5;
  auto out = DecompressPayload(payload, 16 * kMiB);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out.status().message(), HasSubstr("gzip payload"));
}

TEST(BzImagePayloadTest, TruncatedGzipPayloadIsInvalidArgument) {
  std::vector<uint8_t> payload = Gzip(SimpleElf());
  payload.resize(payload.size() / 2);
  auto out = DecompressPayload(payload, 16 * kMiB);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out.status().message(), HasSubstr("truncated"));
}

TEST(BzImagePayloadTest, PayloadPastTheEndOfTheFileIsInvalidArgument) {
  std::vector<uint8_t> image = XzBzImage(SimpleElf());
  HeaderOf(image).payload_length += 0x1000;
  auto payload = FindBzImagePayload(image);
  ASSERT_FALSE(payload.ok());
  EXPECT_EQ(payload.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(payload.status().message(), HasSubstr("lies outside"));
}

TEST(BzImagePayloadTest, PayloadOffsetsThatWouldWrapAre32BitSafe) {
  std::vector<uint8_t> image = XzBzImage(SimpleElf());
  HeaderOf(image).payload_offset = 0xffff'fff0;
  HeaderOf(image).payload_length = 0x20;  // wraps to 0x10 in 32-bit arithmetic
  auto payload = FindBzImagePayload(image);
  ASSERT_FALSE(payload.ok());
  EXPECT_EQ(payload.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(BzImagePayloadTest, EmptyPayloadIsInvalidArgument) {
  std::vector<uint8_t> image = XzBzImage(SimpleElf());
  HeaderOf(image).payload_length = 0;
  GuestMemory mem = MakeGuestMemory(16 * kMiB);
  auto kernel = LoadKernelImage(mem, image, kDecompress);
  ASSERT_FALSE(kernel.ok());
  EXPECT_EQ(kernel.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(BzImagePayloadTest, BadSetupHeaderIsRejectedBeforeThePayloadIsRead) {
  std::vector<uint8_t> image = XzBzImage(SimpleElf());
  HeaderOf(image).boot_flag = 0;
  auto payload = FindBzImagePayload(image);
  ASSERT_FALSE(payload.ok());
  EXPECT_THAT(payload.status().message(), HasSubstr("boot_flag"));
}

TEST(BzImagePayloadTest, FindBzImagePayloadReturnsExactlyTheDeclaredBytes) {
  std::vector<uint8_t> compressed = Xz(SimpleElf());
  std::vector<uint8_t> image = BzImageWithPayload(compressed);
  auto payload = FindBzImagePayload(image);
  ASSERT_TRUE(payload.ok()) << payload.status();
  EXPECT_TRUE(std::equal(payload->begin(), payload->end(), compressed.begin(), compressed.end()));
}

TEST(BzImagePayloadTest, OtherFormatsAreUnimplementedSoTheCallerCanFallBack) {
  GuestMemory mem = MakeGuestMemory(32 * kMiB);
  std::vector<uint8_t> zstd = {0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58, 0x01, 0x02};
  TempFile file("zstd-bzImage", BzImageWithPayload(zstd));
  auto kernel = LoadKernel(mem, file.path(), kDecompress);
  ASSERT_FALSE(kernel.ok());
  EXPECT_EQ(kernel.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(kernel.status().message(), "kernel " + file.path() +
                                           ": payload compressed with zstd: vmm decompresses "
                                           "xz and gzip");
  // The same file loads for the guest to decompress.
  EXPECT_TRUE(LoadKernel(mem, file.path()).ok());
}

TEST(BzImagePayloadTest, UnrecognisedPayloadIsUnimplemented) {
  auto out = DecompressPayload(std::vector<uint8_t>(64, 0x77), 16 * kMiB);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(out.status().message(), HasSubstr("payload compressed with unknown format"));
}

TEST(BzImagePayloadTest, FormatsAreIdentifiedByTheirMagic) {
  auto id = [](std::vector<uint8_t> bytes) { return IdentifyPayloadFormat(bytes); };
  EXPECT_EQ(id({0xfd, '7', 'z', 'X', 'Z', 0x00, 0x00}), PayloadFormat::kXz);
  EXPECT_EQ(id({0x1f, 0x8b, 0x08}), PayloadFormat::kGzip);
  EXPECT_EQ(id({0x28, 0xb5, 0x2f, 0xfd}), PayloadFormat::kZstd);
  EXPECT_EQ(id({0x02, 0x21, 0x4c, 0x18}), PayloadFormat::kLz4);
  EXPECT_EQ(id({0x5d, 0x00, 0x00, 0x80}), PayloadFormat::kLzma);
  EXPECT_EQ(id({'B', 'Z', 'h', '9'}), PayloadFormat::kBzip2);
  EXPECT_EQ(id({0x89, 'L', 'Z', 'O', 0x00}), PayloadFormat::kLzo);
  EXPECT_EQ(id({0xfd, '7', 'z'}), PayloadFormat::kUnknown) << "a magic cut short";
  EXPECT_EQ(id({}), PayloadFormat::kUnknown);
  EXPECT_EQ(PayloadFormatName(PayloadFormat::kLz4), "lz4");
}

TEST(BzImagePayloadTest, OutputUpToTheLimitIsAcceptedAndOneByteMoreIsNot) {
  const std::vector<uint8_t> data(256 * 1024, 0x42);
  auto exact = DecompressPayload(Xz(data), data.size());
  ASSERT_TRUE(exact.ok()) << exact.status();
  EXPECT_EQ(*exact, data);
  auto over = DecompressPayload(Xz(data), data.size() - 1);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(over.status().message(), HasSubstr("decompresses to more than"));
  EXPECT_FALSE(DecompressPayload(Gzip(data), data.size() - 1).ok());
}

TEST(BzImagePayloadTest, VmlinuxLargerThanGuestMemoryIsRejected) {
  GuestMemory mem = MakeGuestMemory(8 * kMiB);
  ElfSpec spec;
  spec.entry = 2 * kMiB;
  spec.segments.push_back({2 * kMiB, std::vector<uint8_t>(12 * kMiB), 12 * kMiB});
  // A hostile appended size does not make the buffer exceed guest memory.
  std::vector<uint8_t> image = BzImageWithPayload(WithAppendedSize(Xz(MakeElf(spec)), ~0u));
  auto kernel = LoadKernelImage(mem, image, kDecompress);
  ASSERT_FALSE(kernel.ok());
  EXPECT_EQ(kernel.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(kernel.status().message(), HasSubstr("decompresses to more than 8388608 bytes"));
}

TEST(BzImagePayloadTest, XzDictionaryBeyondTheMemoryLimitIsRefusedNotAllocated) {
  std::vector<uint8_t> payload = Xz(SimpleElf());
  // Rewrite the block header (after the 12-byte stream header) to ask for a
  // 1.5 GiB dictionary, with a valid CRC.
  lzma_filter filters[LZMA_FILTERS_MAX + 1];
  lzma_block block{};
  block.version = 0;
  block.check = LZMA_CHECK_CRC32;
  block.filters = filters;
  block.header_size = lzma_block_header_size_decode(payload[12]);
  ASSERT_EQ(lzma_block_header_decode(&block, nullptr, payload.data() + 12), LZMA_OK);
  ASSERT_EQ(filters[0].id, LZMA_FILTER_LZMA2);
  static_cast<lzma_options_lzma*>(filters[0].options)->dict_size = 3u << 29;
  ASSERT_EQ(lzma_block_header_encode(&block, payload.data() + 12), LZMA_OK);
  for (int i = 0; filters[i].id != LZMA_VLI_UNKNOWN; ++i) free(filters[i].options);
  auto out = DecompressPayload(payload, 16 * kMiB);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out.status().message(), HasSubstr("dictionary"));
}

TEST(BzImagePayloadTest, PayloadThatIsNotAnElfIsInvalidArgument) {
  GuestMemory mem = MakeGuestMemory(16 * kMiB);
  auto kernel = LoadKernelImage(mem, BzImageWithPayload(Xz(std::vector<uint8_t>(4096, 1))),
                                kDecompress);
  ASSERT_FALSE(kernel.ok());
  EXPECT_EQ(kernel.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(kernel.status().message(), HasSubstr("not an ELF vmlinux"));
}

TEST(BzImagePayloadTest, BadElfInsideIsReportedAsTheDecompressedVmlinux) {
  GuestMemory mem = MakeGuestMemory(16 * kMiB);
  ElfSpec spec = SimpleElfSpec();
  spec.segments[0].paddr = 64 * kMiB;  // beyond guest RAM
  auto kernel = LoadKernelImage(mem, XzBzImage(MakeElf(spec)), kDecompress);
  ASSERT_FALSE(kernel.ok());
  EXPECT_THAT(kernel.status().message(), HasSubstr("decompressed vmlinux: ELF segment 0"));
}

TEST(BzImagePayloadTest, InitSizeBeyondGuestMemoryIsInvalidArgument) {
  GuestMemory mem = MakeGuestMemory(16 * kMiB);
  auto kernel = LoadKernelImage(
      mem, BzImageWithPayload(Xz(SimpleElf()), /*init_size=*/32 * kMiB), kDecompress);
  ASSERT_FALSE(kernel.ok());
  EXPECT_EQ(kernel.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(kernel.status().message(), HasSubstr("too small for the kernel"));
}

// Debian's stock kernel (tests/linux/fetch-kernel): $VMM_TEST_KERNEL, else
// build/linux/vmlinuz in the source tree, when present. Takes about a second.
TEST(BzImagePayloadTest, DebianBzImageDecompressesToAVmlinuxAt16MiB) {
  std::string path;
  if (const char* env = std::getenv("VMM_TEST_KERNEL")) path = env;
  if (path.empty()) path = std::string(VMM_SOURCE_ROOT) + "/build/linux/vmlinuz";
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    GTEST_SKIP() << "no $VMM_TEST_KERNEL or " << path << " (run tests/linux/fetch-kernel)";
  }
  GuestMemory mem = MakeGuestMemory(512 * kMiB);
  const auto begin = std::chrono::steady_clock::now();
  auto kernel = LoadKernel(mem, path, kDecompress);
  const auto elapsed = std::chrono::steady_clock::now() - begin;
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  std::cout << "decompressed and loaded " << path << " in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms\n";
  EXPECT_EQ(kernel->kind, KernelKind::kBzImage);
  EXPECT_TRUE(kernel->decompressed_by_vmm);
  EXPECT_EQ(kernel->entry64, GuestAddress(0x1000000)) << "phys_startup_64";
  ASSERT_TRUE(kernel->bzimage_header.has_value());
  EXPECT_GE(kernel->end, kernel->start + kernel->bzimage_header->init_size);
  auto loaded = mem.Slice(kernel->start, kernel->end - kernel->start);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  static constexpr char kBanner[] = "Linux version ";
  EXPECT_NE(std::search(loaded->begin(), loaded->end(), kBanner, kBanner + sizeof(kBanner) - 1),
            loaded->end());
  auto initrd = PlaceInitrd(mem, *kernel, 32 * kMiB);
  EXPECT_TRUE(initrd.ok()) << initrd.status();
}

}  // namespace
}  // namespace vmm::x86_64
