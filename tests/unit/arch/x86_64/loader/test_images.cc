#include "tests/unit/arch/x86_64/loader/test_images.h"

#include <unistd.h>

#include <fstream>

#include "arch/x86_64/loader/ram_ranges.h"
#include "gtest/gtest.h"

namespace vmm::x86_64::testing {

GuestMemory MakeGuestMemory(uint64_t size) {
  auto ranges = RamRangesFor(size);
  EXPECT_TRUE(ranges.ok()) << ranges.status();
  auto mem = GuestMemory::Create(*ranges);
  EXPECT_TRUE(mem.ok()) << mem.status();
  return std::move(mem).value();
}

setup_header& HeaderOf(std::vector<uint8_t>& image) { return At<setup_header>(image, 0x1f1); }

std::vector<uint8_t> MakeBzImage(const BzImageSpec& spec) {
  const uint64_t sects = spec.setup_sects == 0 ? 4 : spec.setup_sects;
  const uint64_t setup_size = (sects + 1) * 512;
  std::vector<uint8_t> image(setup_size + spec.kernel_size, 0);
  setup_header& h = HeaderOf(image);
  h.setup_sects = spec.setup_sects;
  h.syssize = static_cast<uint32_t>((spec.kernel_size + 15) / 16);
  h.boot_flag = 0xaa55;
  // A short jump over the whole header: 0x202 + image[0x201] = 0x26c.
  h.jump = 0xeb | (0x6a << 8);
  h.header = 0x53726448;
  h.version = spec.version;
  h.loadflags = spec.loadflags;
  h.xloadflags = spec.xloadflags;
  h.pref_address = spec.pref_address;
  h.init_size = spec.init_size;
  h.cmdline_size = spec.cmdline_size;
  h.initrd_addr_max = spec.initrd_addr_max;
  h.kernel_alignment = 0x200000;
  h.relocatable_kernel = 1;
  for (uint64_t i = 0; i < spec.kernel_size; ++i) image[setup_size + i] = KernelByte(i);
  return image;
}

std::vector<uint8_t> MakeElf(const ElfSpec& spec, ElfLayout* layout_out) {
  ElfLayout layout;
  const size_t phnum = spec.segments.size() + (spec.pvh_entry ? 1 : 0);
  uint64_t offset = layout.phoff + phnum * sizeof(Elf64_Phdr);

  // Notes: an unrelated GNU note first, then Xen's PVH entry, laid out as the
  // gABI says for the segment's alignment: the value starts at
  // AlignUp(header + name, align) from the note's start, the next note at
  // AlignUp(value's end, align).
  std::vector<uint8_t> notes;
  if (spec.pvh_entry) {
    const size_t align = spec.note_align;
    auto pad = [&notes, align](size_t to) { notes.resize((to + align - 1) / align * align, 0); };
    auto add_note = [&](const char* name, uint32_t type, const std::vector<uint8_t>& desc) {
      Elf64_Nhdr n{static_cast<Elf64_Word>(std::strlen(name) + 1),
                   static_cast<Elf64_Word>(desc.size()), type};
      const uint8_t* p = reinterpret_cast<const uint8_t*>(&n);
      notes.insert(notes.end(), p, p + sizeof(n));
      notes.insert(notes.end(), name, name + n.n_namesz);
      pad(notes.size());  // notes start aligned: relative and absolute padding agree
      notes.insert(notes.end(), desc.begin(), desc.end());
      pad(notes.size());
    };
    if (spec.note_align == 8) {
      add_note("GNU", 5, std::vector<uint8_t>(16, 0xcd));  // NT_GNU_PROPERTY_TYPE_0 (CET)
    } else {
      add_note("GNU", 3, std::vector<uint8_t>(20, 0xab));  // NT_GNU_BUILD_ID
    }
    std::vector<uint8_t> desc(spec.pvh_note_size, 0);
    std::memcpy(desc.data(), &*spec.pvh_entry, std::min<size_t>(desc.size(), 8));
    add_note("Xen", 18, desc);
    layout.note_offset = offset;
    layout.note_size = notes.size();
    offset += notes.size();
  }
  std::vector<uint64_t> data_offsets;
  for (const ElfSegment& s : spec.segments) {
    data_offsets.push_back(offset);
    offset += s.data.size();
  }

  std::vector<uint8_t> image(offset, 0);
  Elf64_Ehdr& e = At<Elf64_Ehdr>(image, 0);
  std::memcpy(e.e_ident, ELFMAG, SELFMAG);
  e.e_ident[EI_CLASS] = ELFCLASS64;
  e.e_ident[EI_DATA] = ELFDATA2LSB;
  e.e_ident[EI_VERSION] = EV_CURRENT;
  e.e_type = ET_EXEC;
  e.e_machine = EM_X86_64;
  e.e_version = EV_CURRENT;
  e.e_entry = spec.entry;
  e.e_phoff = layout.phoff;
  e.e_ehsize = sizeof(Elf64_Ehdr);
  e.e_phentsize = sizeof(Elf64_Phdr);
  e.e_phnum = static_cast<Elf64_Half>(phnum);

  size_t ph = 0;
  for (size_t i = 0; i < spec.segments.size(); ++i, ++ph) {
    const ElfSegment& s = spec.segments[i];
    Elf64_Phdr& p = At<Elf64_Phdr>(image, layout.phoff + ph * sizeof(Elf64_Phdr));
    p.p_type = PT_LOAD;
    p.p_offset = data_offsets[i];
    p.p_vaddr = 0xffffffff80000000ull + s.paddr;  // like vmlinux: virtual != physical
    p.p_paddr = s.paddr;
    p.p_filesz = s.data.size();
    p.p_memsz = s.memsz;
    p.p_align = 0x1000;
    std::copy(s.data.begin(), s.data.end(), image.begin() + data_offsets[i]);
  }
  if (spec.pvh_entry) {
    Elf64_Phdr& p = At<Elf64_Phdr>(image, layout.phoff + ph * sizeof(Elf64_Phdr));
    p.p_type = PT_NOTE;
    p.p_offset = layout.note_offset;
    p.p_filesz = notes.size();
    p.p_align = spec.note_align;
    std::copy(notes.begin(), notes.end(), image.begin() + layout.note_offset);
  }
  if (layout_out) *layout_out = layout;
  return image;
}

ElfSpec SimpleElfSpec() {
  ElfSpec spec;
  std::vector<uint8_t> data(0x2000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = KernelByte(i);
  spec.segments.push_back({2 * kMiB, data, 0x3000});
  return spec;
}

TempFile::TempFile(const std::string& name, const std::vector<uint8_t>& bytes) {
  // Unique per process: other test binaries share the temp dir.
  path_ = ::testing::TempDir() + "/vmm_loader_test_" + std::to_string(::getpid()) + "_" + name;
  std::ofstream out(path_, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  EXPECT_TRUE(out.good()) << "writing " << path_;
}

TempFile::~TempFile() { ::unlink(path_.c_str()); }

}  // namespace vmm::x86_64::testing
