#include "arch/x86_64/loader/elf.h"

#include <elf.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "arch/x86_64/layout.h"
#include "base/status_macros.h"

namespace vmm::x86_64 {
namespace {

absl::Status Corrupt(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("corrupt ELF: ", why));
}

// True if [offset, offset + size) lies inside a file of `file_size` bytes.
bool InFile(uint64_t offset, uint64_t size, uint64_t file_size) {
  uint64_t end;
  return !__builtin_add_overflow(offset, size, &end) && end <= file_size;
}

template <typename T>
T ReadAt(absl::Span<const uint8_t> image, uint64_t offset) {
  T value;
  std::memcpy(&value, image.data() + offset, sizeof(T));
  return value;
}

uint64_t AlignUp(uint64_t n, uint64_t align) { return (n + align - 1) & ~(align - 1); }

absl::StatusOr<Elf64_Ehdr> ReadHeader(absl::Span<const uint8_t> image) {
  if (image.size() < sizeof(Elf64_Ehdr)) {
    return Corrupt(absl::StrFormat("%d bytes is too short for the ELF header", image.size()));
  }
  Elf64_Ehdr ehdr = ReadAt<Elf64_Ehdr>(image, 0);
  if (ehdr.e_ident[EI_CLASS] != ELFCLASS64) {
    return absl::InvalidArgumentError("only 64-bit ELF kernels are supported");
  }
  if (ehdr.e_ident[EI_DATA] != ELFDATA2LSB || ehdr.e_machine != EM_X86_64) {
    return absl::InvalidArgumentError(
        absl::StrFormat("not an x86-64 ELF (e_machine %d)", ehdr.e_machine));
  }
  if (ehdr.e_type != ET_EXEC && ehdr.e_type != ET_DYN) {
    return absl::InvalidArgumentError(
        absl::StrFormat("ELF type %d is not an executable", ehdr.e_type));
  }
  if (ehdr.e_phnum == 0 || ehdr.e_phnum == PN_XNUM) {
    return Corrupt(absl::StrFormat("unsupported program header count %d", ehdr.e_phnum));
  }
  if (ehdr.e_phentsize != sizeof(Elf64_Phdr)) {
    return Corrupt(absl::StrFormat("program header size %d (expected %d)", ehdr.e_phentsize,
                                   sizeof(Elf64_Phdr)));
  }
  if (!InFile(ehdr.e_phoff, uint64_t{ehdr.e_phnum} * sizeof(Elf64_Phdr), image.size())) {
    return Corrupt(absl::StrFormat("program headers at 0x%x lie outside the %d-byte file",
                                   ehdr.e_phoff, image.size()));
  }
  return ehdr;
}

std::vector<Elf64_Phdr> ReadProgramHeaders(absl::Span<const uint8_t> image,
                                           const Elf64_Ehdr& ehdr) {
  std::vector<Elf64_Phdr> phdrs(ehdr.e_phnum);
  for (size_t i = 0; i < phdrs.size(); ++i) {
    phdrs[i] = ReadAt<Elf64_Phdr>(image, ehdr.e_phoff + i * sizeof(Elf64_Phdr));
  }
  return phdrs;
}

// Scans one PT_NOTE segment's notes for the PVH entry. The segment's
// alignment (4, what Linux emits, or 8, as CET-enabled toolchains emit with a
// GNU property note first) places each part as the gABI and glibc do: the
// value at AlignUp(header + name, align) from the note's start, the next note
// at AlignUp(the value's end, align).
absl::StatusOr<std::optional<GuestAddress>> ScanNotes(absl::Span<const uint8_t> notes,
                                                      uint64_t align) {
  uint64_t pos = 0;
  while (notes.size() - pos >= sizeof(Elf64_Nhdr)) {
    const Elf64_Nhdr nhdr = ReadAt<Elf64_Nhdr>(notes, pos);
    const uint64_t name_pos = pos + sizeof(Elf64_Nhdr);
    const uint64_t desc_pos = pos + AlignUp(sizeof(Elf64_Nhdr) + nhdr.n_namesz, align);
    // 32-bit sizes in 64-bit arithmetic: no wrap.
    const uint64_t next = pos + AlignUp(desc_pos - pos + nhdr.n_descsz, align);
    if (next > notes.size()) return Corrupt("an ELF note runs past the end of its segment");
    static constexpr char kXen[] = "Xen";  // with its NUL, namesz 4
    if (nhdr.n_type == kXenElfNotePhys32Entry && nhdr.n_namesz == sizeof(kXen) &&
        std::memcmp(notes.data() + name_pos, kXen, sizeof(kXen)) == 0) {
      // Linux emits an 8-byte value (_ASM_PTR), other guests 4 bytes.
      uint64_t entry;
      if (nhdr.n_descsz == 4) {
        entry = ReadAt<uint32_t>(notes, desc_pos);
      } else if (nhdr.n_descsz == 8) {
        entry = ReadAt<uint64_t>(notes, desc_pos);
      } else {
        return Corrupt(absl::StrFormat("PVH entry note has a %d-byte value", nhdr.n_descsz));
      }
      if (entry > 0xffff'ffff) {
        return Corrupt(absl::StrFormat("PVH entry 0x%x is above 4 GiB", entry));
      }
      return std::optional<GuestAddress>(GuestAddress(entry));
    }
    pos = next;
  }
  return std::optional<GuestAddress>();
}

absl::StatusOr<std::optional<GuestAddress>> FindPvhEntryIn(absl::Span<const uint8_t> image,
                                                           absl::Span<const Elf64_Phdr> phdrs) {
  for (const Elf64_Phdr& ph : phdrs) {
    if (ph.p_type != PT_NOTE) continue;
    if (!InFile(ph.p_offset, ph.p_filesz, image.size())) {
      return Corrupt(absl::StrFormat("note segment at 0x%x+0x%x lies outside the file",
                                     ph.p_offset, ph.p_filesz));
    }
    ASSIGN_OR_RETURN(std::optional<GuestAddress> entry,
                     ScanNotes(image.subspan(ph.p_offset, ph.p_filesz), ph.p_align == 8 ? 8 : 4));
    if (entry) return entry;
  }
  return std::optional<GuestAddress>();
}

}  // namespace

bool LooksLikeElf(absl::Span<const uint8_t> image) {
  return image.size() >= SELFMAG && std::memcmp(image.data(), ELFMAG, SELFMAG) == 0;
}

absl::StatusOr<std::optional<GuestAddress>> FindPvhEntry(absl::Span<const uint8_t> image) {
  if (!LooksLikeElf(image)) return absl::InvalidArgumentError("not an ELF file");
  ASSIGN_OR_RETURN(Elf64_Ehdr ehdr, ReadHeader(image));
  return FindPvhEntryIn(image, ReadProgramHeaders(image, ehdr));
}

absl::StatusOr<LoadedKernel> LoadElf(const GuestMemory& mem, absl::Span<const uint8_t> image) {
  if (!LooksLikeElf(image)) return absl::InvalidArgumentError("not an ELF file");
  ASSIGN_OR_RETURN(Elf64_Ehdr ehdr, ReadHeader(image));
  const std::vector<Elf64_Phdr> phdrs = ReadProgramHeaders(image, ehdr);
  ASSIGN_OR_RETURN(std::optional<GuestAddress> pvh_entry, FindPvhEntryIn(image, phdrs));

  // Validate every segment before writing any, so a bad file loads nothing.
  GuestAddress lowest(~uint64_t{0});
  GuestAddress highest(0);
  for (size_t i = 0; i < phdrs.size(); ++i) {
    const Elf64_Phdr& ph = phdrs[i];
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    if (ph.p_filesz > ph.p_memsz) {
      return Corrupt(absl::StrFormat("segment %d has p_filesz 0x%x > p_memsz 0x%x", i,
                                     ph.p_filesz, ph.p_memsz));
    }
    if (!InFile(ph.p_offset, ph.p_filesz, image.size())) {
      return Corrupt(absl::StrFormat("segment %d (0x%x+0x%x) lies outside the %d-byte file", i,
                                     ph.p_offset, ph.p_filesz, image.size()));
    }
    std::optional<GuestAddress> end = GuestAddress(ph.p_paddr).CheckedAdd(ph.p_memsz);
    if (!end) {
      return Corrupt(absl::StrFormat("segment %d at 0x%x+0x%x wraps the address space", i,
                                     ph.p_paddr, ph.p_memsz));
    }
    if (ph.p_paddr < kHighMemStart || !mem.Contains(GuestAddress(ph.p_paddr), ph.p_memsz)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "ELF segment %d at 0x%x-0x%x does not fit in guest RAM above 1 MiB (guest memory is "
          "%d MiB)",
          i, ph.p_paddr, end->value(), mem.total_size() >> 20));
    }
    lowest = std::min(lowest, GuestAddress(ph.p_paddr));
    highest = std::max(highest, *end);
  }
  if (highest == GuestAddress(0)) return Corrupt("no loadable segments");
  // The entry the VMM will jump to must be in RAM.
  const GuestAddress entry = pvh_entry ? *pvh_entry : GuestAddress(ehdr.e_entry);
  if (!mem.Contains(entry, 1)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("ELF entry point 0x%x is outside guest RAM", entry.value()));
  }

  for (const Elf64_Phdr& ph : phdrs) {
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    ASSIGN_OR_RETURN(absl::Span<uint8_t> dst, mem.Slice(GuestAddress(ph.p_paddr), ph.p_memsz));
    if (ph.p_filesz > 0) std::memcpy(dst.data(), image.data() + ph.p_offset, ph.p_filesz);
    std::memset(dst.data() + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
  }

  LoadedKernel kernel;
  kernel.kind = pvh_entry ? KernelKind::kElfPvh : KernelKind::kElf;
  kernel.entry64 = GuestAddress(ehdr.e_entry);
  kernel.pvh_entry = pvh_entry;
  kernel.start = lowest;
  kernel.end = highest;
  return kernel;
}

}  // namespace vmm::x86_64
