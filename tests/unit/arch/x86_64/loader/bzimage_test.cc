#include "arch/x86_64/loader/bzimage.h"

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/arch/x86_64/loader/test_images.h"

namespace vmm::x86_64 {
namespace {

using ::testing::HasSubstr;
using namespace ::vmm::x86_64::testing;

// Expects `image` to be rejected as InvalidArgument with `message` in the text.
void ExpectRejected(const std::vector<uint8_t>& image, const std::string& message,
                    uint64_t memory = 64 * kMiB) {
  GuestMemory mem = MakeGuestMemory(memory);
  auto kernel = LoadBzImage(mem, image);
  ASSERT_FALSE(kernel.ok());
  EXPECT_EQ(kernel.status().code(), absl::StatusCode::kInvalidArgument) << kernel.status();
  EXPECT_THAT(kernel.status().message(), HasSubstr(message));
}

TEST(BzImageTest, ProtectedModeKernelLandsAtPreferredAddress) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  BzImageSpec spec;
  auto kernel = LoadBzImage(mem, MakeBzImage(spec));
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  EXPECT_EQ(kernel->kind, KernelKind::kBzImage);
  EXPECT_EQ(kernel->start, GuestAddress(16 * kMiB));
  for (uint64_t i : {uint64_t{0}, uint64_t{0x200}, spec.kernel_size - 1}) {
    EXPECT_EQ(*mem.Read<uint8_t>(GuestAddress(16 * kMiB + i)), KernelByte(i)) << "byte " << i;
  }
  EXPECT_EQ(*mem.Read<uint8_t>(GuestAddress(16 * kMiB + spec.kernel_size)), 0)
      << "nothing past the kernel";
}

TEST(BzImageTest, Entry64IsLoadAddressPlus0x200) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  auto kernel = LoadBzImage(mem, MakeBzImage());
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  EXPECT_EQ(kernel->entry64, GuestAddress(16 * kMiB + 0x200));
  EXPECT_FALSE(kernel->pvh_entry.has_value());
}

TEST(BzImageTest, EndCoversInitSizeForDecompression) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  BzImageSpec spec;
  spec.init_size = 20 * kMiB;
  auto kernel = LoadBzImage(mem, MakeBzImage(spec));
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  EXPECT_EQ(kernel->end, GuestAddress(36 * kMiB));
}

TEST(BzImageTest, EndCoversFileWhenLargerThanInitSize) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  BzImageSpec spec;
  spec.init_size = 0x1000;
  spec.kernel_size = 0x5000;
  auto kernel = LoadBzImage(mem, MakeBzImage(spec));
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  EXPECT_EQ(kernel->end, GuestAddress(16 * kMiB + 0x5000));
}

TEST(BzImageTest, NoPreferredAddressLoadsAtOneMiB) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  BzImageSpec spec;
  spec.pref_address = 0;
  auto kernel = LoadBzImage(mem, MakeBzImage(spec));
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  EXPECT_EQ(kernel->start, GuestAddress(kMiB));
  EXPECT_EQ(kernel->entry64, GuestAddress(kMiB + 0x200));
  EXPECT_EQ(*mem.Read<uint8_t>(GuestAddress(kMiB + 5)), KernelByte(5));
}

TEST(BzImageTest, ZeroSetupSectsMeansFour) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  BzImageSpec spec;
  spec.setup_sects = 0;
  std::vector<uint8_t> image = MakeBzImage(spec);
  ASSERT_EQ(image.size(), 5 * 512 + spec.kernel_size);
  auto kernel = LoadBzImage(mem, image);
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  EXPECT_EQ(*mem.Read<uint8_t>(GuestAddress(16 * kMiB)), KernelByte(0));
}

TEST(BzImageTest, SetupSectsLocateTheProtectedModeKernel) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  BzImageSpec spec;
  spec.setup_sects = 30;
  auto kernel = LoadBzImage(mem, MakeBzImage(spec));
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  EXPECT_EQ(*mem.Read<uint8_t>(GuestAddress(16 * kMiB + 1)), KernelByte(1));
}

TEST(BzImageTest, SetupHeaderIsReportedForBootParams) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  auto kernel = LoadBzImage(mem, MakeBzImage());
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  ASSERT_TRUE(kernel->bzimage_header.has_value());
  EXPECT_EQ(kernel->bzimage_header->header, kHeaderMagic);
  EXPECT_EQ(kernel->bzimage_header->version, 0x020f);
  EXPECT_EQ(kernel->bzimage_header->cmdline_size, 2047u);
  EXPECT_EQ(kernel->bzimage_header->init_size, 4 * kMiB);
}

TEST(BzImageTest, HeaderCopyStopsWhereTheHeaderSaysItEnds) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  std::vector<uint8_t> image = MakeBzImage();
  image[0x201] = 0x66;  // header ends at 0x268: kernel_info_offset is setup code
  HeaderOf(image).kernel_info_offset = 0x12345678;
  auto kernel = LoadBzImage(mem, image);
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  EXPECT_EQ(kernel->bzimage_header->kernel_info_offset, 0u);
  EXPECT_EQ(kernel->bzimage_header->init_size, 4 * kMiB);
}

TEST(BzImageTest, FileTooShortForSetupHeaderIsTruncated) {
  std::vector<uint8_t> image = MakeBzImage();
  image.resize(0x250);
  ExpectRejected(image, "truncated");
}

TEST(BzImageTest, HeaderEndingBeforeProtocol212FieldsIsTruncated) {
  std::vector<uint8_t> image = MakeBzImage();
  image[0x201] = 0x30;
  ExpectRejected(image, "truncated bzImage setup header");
}

TEST(BzImageTest, BadBootFlagIsRejected) {
  std::vector<uint8_t> image = MakeBzImage();
  HeaderOf(image).boot_flag = 0x1234;
  ExpectRejected(image, "boot_flag 0x1234");
}

TEST(BzImageTest, ProtocolOlderThan212IsRejected) {
  BzImageSpec spec;
  spec.version = 0x020a;
  ExpectRejected(MakeBzImage(spec), "boot protocol 2.10 is too old");
}

TEST(BzImageTest, KernelWithout64BitEntryIsRejected) {
  BzImageSpec spec;
  spec.xloadflags = 0;
  ExpectRejected(MakeBzImage(spec), "no 64-bit entry point");
}

TEST(BzImageTest, ZImageLoadedLowIsRejected) {
  BzImageSpec spec;
  spec.loadflags = 0;
  ExpectRejected(MakeBzImage(spec), "zImage");
}

TEST(BzImageTest, SetupSectorsPastEndOfFileAreTruncated) {
  std::vector<uint8_t> image = MakeBzImage();
  HeaderOf(image).setup_sects = 200;
  ExpectRejected(image, "leave no protected-mode kernel");
}

TEST(BzImageTest, KernelShorterThanSyssizeIsTruncated) {
  std::vector<uint8_t> image = MakeBzImage();
  image.resize(image.size() - 0x100);
  ExpectRejected(image, "header says");
}

TEST(BzImageTest, InitSizeBeyondGuestRamIsMemoryTooSmall) {
  BzImageSpec spec;
  spec.init_size = 60 * kMiB;  // 16 MiB + 60 MiB > 64 MiB
  ExpectRejected(MakeBzImage(spec), "guest memory (64 MiB) is too small for the kernel");
}

TEST(BzImageTest, PreferredAddressAboveRamIsMemoryTooSmall) {
  ExpectRejected(MakeBzImage(), "too small", 8 * kMiB);
}

TEST(BzImageTest, PreferredAddressNearTopOfAddressSpaceDoesNotWrap) {
  BzImageSpec spec;
  spec.pref_address = 0xffff'ffff'ffff'f000;
  ExpectRejected(MakeBzImage(spec), "too small");
}

TEST(BzImageTest, PreferredAddressIntoMmioHoleIsRejected) {
  BzImageSpec spec;
  spec.pref_address = 0xbff0'0000;  // kernel + init_size would cross into the hole
  ExpectRejected(MakeBzImage(spec), "too small", 4096 * kMiB);
}

TEST(BzImageTest, PreferredAddressBelowOneMiBIsRejected) {
  BzImageSpec spec;
  spec.pref_address = 0x8000;
  ExpectRejected(MakeBzImage(spec), "below 1 MiB");
}

TEST(BzImageTest, UnalignedPreferredAddressIsRejected) {
  BzImageSpec spec;
  spec.pref_address = 16 * kMiB + 3;
  ExpectRejected(MakeBzImage(spec), "not page-aligned");
}

TEST(BzImageTest, LooksLikeBzImageNeedsTheHdrSMagic) {
  EXPECT_TRUE(LooksLikeBzImage(MakeBzImage()));
  std::vector<uint8_t> image = MakeBzImage();
  image[0x203] = 'x';
  EXPECT_FALSE(LooksLikeBzImage(image));
  EXPECT_FALSE(LooksLikeBzImage(std::vector<uint8_t>(0x205, 0)));
}

// Hostile files: every truncation and every single-byte corruption of the
// header area must give a status, never a crash (run under ASan to see
// out-of-bounds reads).
TEST(BzImageTest, CorruptedOrTruncatedImagesNeverCrash) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  const std::vector<uint8_t> good = MakeBzImage();
  ASSERT_GT(good.size(), 0xa00u + 16);
  // Cut in its setup sectors or kernel, the file is refused, with a reason.
  for (size_t len = 0; len < 0xa00 + 16; len += 7) {
    std::vector<uint8_t> image(good.begin(), good.begin() + len);
    EXPECT_TRUE(Refused(LoadBzImage(mem, image))) << "truncated to " << len << " bytes";
  }
  // A changed setup-header byte may still describe a bootable kernel (a
  // field the loader does not need); otherwise it is refused, with a reason.
  for (size_t off = 0x1f1; off < 0x26c; ++off) {
    for (uint8_t value : {0x00, 0x01, 0x7f, 0x80, 0xff}) {
      std::vector<uint8_t> image = good;
      image[off] = value;
      EXPECT_TRUE(LoadedOrRefused(LoadBzImage(mem, image)))
          << "byte " << std::hex << off << " = " << static_cast<int>(value);
    }
  }
}

}  // namespace
}  // namespace vmm::x86_64
