// Synthetic kernels for the loader tests: bzImages and ELFs built in memory,
// so no host kernel is needed.
#ifndef VMM_TESTS_UNIT_ARCH_X86_64_LOADER_TEST_IMAGES_H_
#define VMM_TESTS_UNIT_ARCH_X86_64_LOADER_TEST_IMAGES_H_

#include <asm/bootparam.h>
#include <elf.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "arch/x86_64/layout.h"
#include "arch/x86_64/loader/boot_info.h"
#include "arch/x86_64/loader/e820_entry.h"
#include "absl/status/statusor.h"
#include "base/guest_memory.h"
#include "gtest/gtest.h"

namespace vmm::x86_64::testing {

inline constexpr uint64_t kMiB = 1 << 20;

// A GuestMemory of `size` bytes laid out as the VMM would (RamRangesFor).
GuestMemory MakeGuestMemory(uint64_t size);

// The e820 map of a 64 MiB guest, and boot information using it (a 14-byte
// command line, an initrd at 60 MiB), for the boot_params / PVH writers.
inline const std::vector<E820Entry> kTypicalE820Map = {
    {GuestAddress(0), 0x9fc00, E820Type::kRam},
    {GuestAddress(0x9fc00), 0x60400, E820Type::kReserved},
    {GuestAddress(kMiB), 63 * kMiB, E820Type::kRam},
};
inline BootInfo TypicalBootInfo() {
  BootInfo info;
  info.cmdline = {GuestAddress(kCmdlineStart), 14};
  info.initrd = LoadedInitrd{GuestAddress(60 * kMiB), 0x1234};
  info.e820 = kTypicalE820Map;
  return info;
}

struct BzImageSpec {
  uint8_t setup_sects = 4;
  uint16_t version = 0x020f;
  uint8_t loadflags = LOADED_HIGH;
  uint16_t xloadflags = XLF_KERNEL_64;
  uint64_t pref_address = 16 * kMiB;
  uint32_t init_size = 4 * kMiB;
  uint32_t cmdline_size = 2047;
  uint32_t initrd_addr_max = 0x7fff'ffff;
  uint64_t kernel_size = 0x3000;  // protected-mode part; filled with a pattern
};

// A bzImage per `spec`; the protected-mode byte i is KernelByte(i).
std::vector<uint8_t> MakeBzImage(const BzImageSpec& spec = {});
inline uint8_t KernelByte(uint64_t i) { return static_cast<uint8_t>(i * 7 + 3); }

// The setup header inside a bzImage, for tests that corrupt it.
setup_header& HeaderOf(std::vector<uint8_t>& image);

struct ElfSegment {
  uint64_t paddr = 0;
  std::vector<uint8_t> data;
  uint64_t memsz = 0;  // >= data.size(); the rest is bss
};

struct ElfSpec {
  uint64_t entry = 2 * kMiB;
  std::vector<ElfSegment> segments;
  // A PT_NOTE with XEN_ELFNOTE_PHYS32_ENTRY, its value `pvh_note_size`
  // bytes long, after an unrelated note.
  std::optional<uint64_t> pvh_entry;
  uint32_t pvh_note_size = 4;
  // The note segment's alignment (p_align): 4, or 8 as CET-enabled
  // toolchains emit it (a GNU property note first).
  uint32_t note_align = 4;
};

// The offsets of the pieces of a built ELF, for tests that corrupt them.
struct ElfLayout {
  uint64_t phoff = sizeof(Elf64_Ehdr);
  uint64_t note_offset = 0;  // first note; 0 without a PVH note
  uint64_t note_size = 0;
};

std::vector<uint8_t> MakeElf(const ElfSpec& spec, ElfLayout* layout = nullptr);

// One 8 KiB segment of pattern bytes plus 4 KiB of bss at 2 MiB.
ElfSpec SimpleElfSpec();

template <typename T>
T& At(std::vector<uint8_t>& bytes, uint64_t offset) {
  return *reinterpret_cast<T*>(bytes.data() + offset);
}

// A file under the test temp dir holding `bytes`, removed on destruction.
class TempFile {
 public:
  TempFile(const std::string& name, const std::vector<uint8_t>& bytes);
  ~TempFile();
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// What a hostile image may give a loader: a loaded kernel, or a refusal
// (InvalidArgument) whose message is one line saying what is wrong. Any
// other kind of error, an empty or multi-line message, fails.
template <typename T>
::testing::AssertionResult LoadedOrRefused(const absl::StatusOr<T>& result) {
  if (result.ok()) return ::testing::AssertionSuccess();
  const absl::Status& status = result.status();
  if (status.code() != absl::StatusCode::kInvalidArgument || status.message().empty() ||
      status.message().find('\n') != absl::string_view::npos) {
    return ::testing::AssertionFailure() << "not a one-line refusal: " << status;
  }
  return ::testing::AssertionSuccess();
}

// A refusal, as above, and not a load.
template <typename T>
::testing::AssertionResult Refused(const absl::StatusOr<T>& result) {
  if (result.ok()) return ::testing::AssertionFailure() << "loaded";
  return LoadedOrRefused(result);
}

}  // namespace vmm::x86_64::testing

#endif  // VMM_TESTS_UNIT_ARCH_X86_64_LOADER_TEST_IMAGES_H_
