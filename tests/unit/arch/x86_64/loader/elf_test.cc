#include "arch/x86_64/loader/elf.h"

#include <elf.h>

#include <fstream>
#include <iterator>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/arch/x86_64/loader/test_images.h"

namespace vmm::x86_64 {
namespace {

using ::testing::HasSubstr;
using namespace ::vmm::x86_64::testing;

void ExpectRejected(const std::vector<uint8_t>& image, const std::string& message) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  auto kernel = LoadElf(mem, image);
  ASSERT_FALSE(kernel.ok());
  EXPECT_EQ(kernel.status().code(), absl::StatusCode::kInvalidArgument) << kernel.status();
  EXPECT_THAT(kernel.status().message(), HasSubstr(message));
}

Elf64_Phdr& Phdr(std::vector<uint8_t>& image, size_t i) {
  return At<Elf64_Phdr>(image, sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr));
}

TEST(ElfTest, SegmentsLoadAtTheirPhysicalAddress) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  ElfSpec spec = SimpleElfSpec();
  spec.segments.push_back({8 * kMiB, {1, 2, 3}, 3});
  auto kernel = LoadElf(mem, MakeElf(spec));
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  EXPECT_EQ(*mem.Read<uint8_t>(GuestAddress(2 * kMiB)), KernelByte(0));
  EXPECT_EQ(*mem.Read<uint8_t>(GuestAddress(2 * kMiB + 0x1fff)), KernelByte(0x1fff));
  EXPECT_EQ(*mem.Read<uint8_t>(GuestAddress(8 * kMiB + 2)), 3);
  EXPECT_EQ(kernel->start, GuestAddress(2 * kMiB));
  EXPECT_EQ(kernel->end, GuestAddress(8 * kMiB + 3));
}

TEST(ElfTest, BssBeyondFileSizeIsZeroed) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  ASSERT_TRUE(mem.Write<uint32_t>(GuestAddress(2 * kMiB + 0x2800), 0xdeadbeef).ok());
  auto kernel = LoadElf(mem, MakeElf(SimpleElfSpec()));
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  EXPECT_EQ(*mem.Read<uint32_t>(GuestAddress(2 * kMiB + 0x2800)), 0u);
  EXPECT_EQ(kernel->end, GuestAddress(2 * kMiB + 0x3000)) << "end includes bss";
}

TEST(ElfTest, ElfWithoutPvhNoteUsesTheLinux64BitEntry) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  ElfSpec spec = SimpleElfSpec();
  spec.entry = 2 * kMiB + 0x100;
  auto kernel = LoadElf(mem, MakeElf(spec));
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  EXPECT_EQ(kernel->kind, KernelKind::kElf);
  EXPECT_EQ(kernel->entry64, GuestAddress(2 * kMiB + 0x100));
  EXPECT_FALSE(kernel->pvh_entry.has_value());
  EXPECT_FALSE(kernel->bzimage_header.has_value());
}

TEST(ElfTest, PvhNoteWithFourByteValueGivesThePvhEntry) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  ElfSpec spec = SimpleElfSpec();
  spec.pvh_entry = 2 * kMiB + 0x40;
  auto kernel = LoadElf(mem, MakeElf(spec));
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  EXPECT_EQ(kernel->kind, KernelKind::kElfPvh);
  EXPECT_EQ(kernel->pvh_entry, GuestAddress(2 * kMiB + 0x40));
  EXPECT_EQ(kernel->entry64, GuestAddress(2 * kMiB)) << "e_entry still reported";
}

TEST(ElfTest, PvhNoteWithEightByteValueAsLinuxEmitsIt) {
  ElfSpec spec = SimpleElfSpec();
  spec.pvh_entry = 2 * kMiB + 0x80;
  spec.pvh_note_size = 8;
  auto entry = FindPvhEntry(MakeElf(spec));
  ASSERT_TRUE(entry.ok()) << entry.status();
  EXPECT_EQ(*entry, GuestAddress(2 * kMiB + 0x80));
}

// Issue 17, item 3: an 8-aligned note segment (a GNU property note first, as
// CET-enabled toolchains emit) was rejected as "an ELF note runs past the
// end of its segment": the value's offset was padded from the name, not from
// the note's start.
TEST(ElfTest, EightByteAlignedNotesAreReadAsTheGabiLaysThemOut) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  ElfSpec spec = SimpleElfSpec();
  spec.pvh_entry = 0x1000123;
  spec.pvh_note_size = 8;
  spec.note_align = 8;
  auto kernel = LoadElf(mem, MakeElf(spec));
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  EXPECT_EQ(kernel->pvh_entry, GuestAddress(0x1000123));
}

// The same with the real thing: an ELF linked by this machine's toolchain
// with CET enabled (cet_note_guest.c), as a distribution's kernel may be.
// The test first checks the file has the shape that broke the parser.
TEST(ElfTest, ACetEnabledLinkFromTheRealToolchainLoadsWithItsPvhEntry) {
  std::ifstream in(VMM_CET_NOTE_ELF, std::ios::binary);
  ASSERT_TRUE(in) << VMM_CET_NOTE_ELF;
  std::vector<uint8_t> image{std::istreambuf_iterator<char>(in), {}};
  ASSERT_GE(image.size(), sizeof(Elf64_Ehdr));
  const Elf64_Ehdr ehdr = At<Elf64_Ehdr>(image, 0);
  bool property_note_in_8_aligned_segment = false;
  for (size_t i = 0; i < ehdr.e_phnum; ++i) {
    const Elf64_Phdr phdr = At<Elf64_Phdr>(image, ehdr.e_phoff + i * sizeof(Elf64_Phdr));
    if (phdr.p_type != PT_NOTE || phdr.p_align != 8) continue;
    const Elf64_Nhdr note = At<Elf64_Nhdr>(image, phdr.p_offset);
    property_note_in_8_aligned_segment |= note.n_type == NT_GNU_PROPERTY_TYPE_0;
  }
  ASSERT_TRUE(property_note_in_8_aligned_segment)
      << "the toolchain no longer emits the shape this test is about";

  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  auto kernel = LoadElf(mem, image);
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  EXPECT_EQ(kernel->kind, KernelKind::kElfPvh);
  EXPECT_EQ(kernel->pvh_entry, GuestAddress(ehdr.e_entry)) << "the note names _start";
}

TEST(ElfTest, FindPvhEntryWithoutNoteIsNullopt) {
  auto entry = FindPvhEntry(MakeElf(SimpleElfSpec()));
  ASSERT_TRUE(entry.ok()) << entry.status();
  EXPECT_FALSE(entry->has_value());
}

TEST(ElfTest, PvhNoteWithOddValueSizeIsRejected) {
  ElfSpec spec = SimpleElfSpec();
  spec.pvh_entry = 2 * kMiB;
  spec.pvh_note_size = 2;
  ExpectRejected(MakeElf(spec), "2-byte value");
}

TEST(ElfTest, PvhEntryAbove4GiBIsRejected) {
  ElfSpec spec = SimpleElfSpec();
  spec.pvh_entry = 0x1'0000'1000;
  spec.pvh_note_size = 8;
  ExpectRejected(MakeElf(spec), "above 4 GiB");
}

TEST(ElfTest, PvhEntryOutsideRamIsRejected) {
  ElfSpec spec = SimpleElfSpec();
  spec.pvh_entry = 0xd000'0000;
  ExpectRejected(MakeElf(spec), "entry point 0xd0000000 is outside guest RAM");
}

TEST(ElfTest, NoteRunningPastItsSegmentIsRejected) {
  ElfSpec spec = SimpleElfSpec();
  spec.pvh_entry = 2 * kMiB;
  ElfLayout layout;
  std::vector<uint8_t> image = MakeElf(spec, &layout);
  At<Elf64_Nhdr>(image, layout.note_offset).n_descsz = 0xffff'fff0;
  ExpectRejected(image, "runs past the end");
}

TEST(ElfTest, NoteSegmentOutsideFileIsRejected) {
  ElfSpec spec = SimpleElfSpec();
  spec.pvh_entry = 2 * kMiB;
  std::vector<uint8_t> image = MakeElf(spec);
  Phdr(image, 1).p_offset = ~uint64_t{0} - 4;
  ExpectRejected(image, "note segment");
}

TEST(ElfTest, EntryOutsideRamIsRejected) {
  ElfSpec spec = SimpleElfSpec();
  spec.entry = 0xffff'ffff'8100'0000;  // a virtual address: unusable
  ExpectRejected(MakeElf(spec), "outside guest RAM");
}

TEST(ElfTest, TooShortForHeaderIsRejected) {
  std::vector<uint8_t> image = MakeElf(SimpleElfSpec());
  image.resize(40);
  ExpectRejected(image, "too short for the ELF header");
}

TEST(ElfTest, Elf32IsRejected) {
  std::vector<uint8_t> image = MakeElf(SimpleElfSpec());
  image[EI_CLASS] = ELFCLASS32;
  ExpectRejected(image, "only 64-bit ELF");
}

TEST(ElfTest, OtherMachineIsRejected) {
  std::vector<uint8_t> image = MakeElf(SimpleElfSpec());
  At<Elf64_Ehdr>(image, 0).e_machine = EM_AARCH64;
  ExpectRejected(image, "not an x86-64 ELF");
}

TEST(ElfTest, RelocatableObjectIsRejected) {
  std::vector<uint8_t> image = MakeElf(SimpleElfSpec());
  At<Elf64_Ehdr>(image, 0).e_type = ET_REL;
  ExpectRejected(image, "not an executable");
}

TEST(ElfTest, ProgramHeadersOutsideFileAreRejected) {
  std::vector<uint8_t> image = MakeElf(SimpleElfSpec());
  At<Elf64_Ehdr>(image, 0).e_phoff = image.size() - 8;
  ExpectRejected(image, "program headers at");
}

TEST(ElfTest, ProgramHeaderOffsetThatWrapsIsRejected) {
  std::vector<uint8_t> image = MakeElf(SimpleElfSpec());
  At<Elf64_Ehdr>(image, 0).e_phoff = ~uint64_t{0} - 16;
  ExpectRejected(image, "program headers at");
}

TEST(ElfTest, WrongProgramHeaderSizeIsRejected) {
  std::vector<uint8_t> image = MakeElf(SimpleElfSpec());
  At<Elf64_Ehdr>(image, 0).e_phentsize = 32;
  ExpectRejected(image, "program header size 32");
}

TEST(ElfTest, NoProgramHeadersIsRejected) {
  std::vector<uint8_t> image = MakeElf(SimpleElfSpec());
  At<Elf64_Ehdr>(image, 0).e_phnum = 0;
  ExpectRejected(image, "program header count 0");
}

TEST(ElfTest, NoLoadableSegmentIsRejected) {
  std::vector<uint8_t> image = MakeElf(SimpleElfSpec());
  Phdr(image, 0).p_type = PT_NULL;
  ExpectRejected(image, "no loadable segments");
}

TEST(ElfTest, SegmentDataOutsideFileIsRejected) {
  std::vector<uint8_t> image = MakeElf(SimpleElfSpec());
  Phdr(image, 0).p_offset = image.size() - 0x100;
  ExpectRejected(image, "segment 0 (");
}

TEST(ElfTest, SegmentOffsetThatWrapsIsRejected) {
  std::vector<uint8_t> image = MakeElf(SimpleElfSpec());
  Phdr(image, 0).p_offset = ~uint64_t{0} - 0x10;
  ExpectRejected(image, "lies outside the");
}

TEST(ElfTest, FileSizeLargerThanMemorySizeIsRejected) {
  std::vector<uint8_t> image = MakeElf(SimpleElfSpec());
  Phdr(image, 0).p_memsz = 0x100;
  ExpectRejected(image, "p_filesz 0x2000 > p_memsz 0x100");
}

TEST(ElfTest, SegmentBeyondGuestRamIsRejected) {
  ElfSpec spec = SimpleElfSpec();
  spec.segments[0].paddr = 64 * kMiB - 0x2800;  // file bytes fit, bss runs past 64 MiB
  spec.entry = spec.segments[0].paddr;
  ExpectRejected(MakeElf(spec), "does not fit in guest RAM above 1 MiB (guest memory is 64 MiB)");
}

TEST(ElfTest, SegmentThatWrapsTheAddressSpaceIsRejected) {
  std::vector<uint8_t> image = MakeElf(SimpleElfSpec());
  Phdr(image, 0).p_paddr = ~uint64_t{0} - 0x1000;
  ExpectRejected(image, "wraps the address space");
}

TEST(ElfTest, SegmentBelowOneMiBIsRejected) {
  ElfSpec spec = SimpleElfSpec();
  spec.segments[0].paddr = 0x7000;  // would be overwritten by the zero page
  spec.entry = 0x7000;
  ExpectRejected(MakeElf(spec), "above 1 MiB");
}

TEST(ElfTest, RejectedFileLoadsNothing) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  ElfSpec spec = SimpleElfSpec();
  spec.segments.push_back({100 * kMiB, {1}, 1});  // second segment outside RAM
  ASSERT_FALSE(LoadElf(mem, MakeElf(spec)).ok());
  EXPECT_EQ(*mem.Read<uint8_t>(GuestAddress(2 * kMiB + 1)), 0);
}

TEST(ElfTest, CorruptedOrTruncatedImagesNeverCrash) {
  GuestMemory mem = MakeGuestMemory(64 * kMiB);
  ElfSpec spec = SimpleElfSpec();
  spec.pvh_entry = 2 * kMiB;
  ElfLayout layout;
  const std::vector<uint8_t> good = MakeElf(spec, &layout);
  const size_t header_bytes = layout.note_offset + layout.note_size;
  ASSERT_LT(header_bytes, good.size());
  // Cut anywhere in its headers, the file is refused, with a reason.
  for (size_t len = 0; len <= header_bytes; ++len) {
    std::vector<uint8_t> image(good.begin(), good.begin() + len);
    EXPECT_TRUE(Refused(LoadElf(mem, image))) << "truncated to " << len << " bytes";
  }
  // A changed header byte may still describe a loadable kernel (padding,
  // flags); otherwise it is refused, with a reason.
  for (size_t off = 0; off < header_bytes; ++off) {
    for (uint8_t value : {0x00, 0x01, 0x7f, 0x80, 0xff}) {
      std::vector<uint8_t> image = good;
      image[off] = value;
      EXPECT_TRUE(LoadedOrRefused(LoadElf(mem, image)))
          << "byte " << off << " = " << static_cast<int>(value);
    }
  }
}

}  // namespace
}  // namespace vmm::x86_64
