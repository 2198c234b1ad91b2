#include "arch/x86_64/gdt.h"

#include "arch/x86_64/layout.h"
#include "base/status_macros.h"

namespace vmm::x86_64 {

static_assert(kBootGdtStart + kBootGdtEntries * sizeof(uint64_t) <= kPvhInfoStart,
              "boot GDT overlaps the PVH start info");

std::array<uint64_t, kBootGdtEntries> BootGdt() {
  // The accessed bit is set in every code/data type so the CPU never needs
  // to write the descriptor back.
  return {
      GdtEntry(0, 0, 0),
      GdtEntry(0xc09b, 0, 0xfffff),  // P, S, code exec/read; G, D=1
      GdtEntry(0xa09b, 0, 0xfffff),  // P, S, code exec/read; G, L=1, D=0
      GdtEntry(0xc093, 0, 0xfffff),  // P, S, data read/write; G, B=1
      GdtEntry(0x008b, 0, 0x67),     // P, system, busy TSS; byte granular
      0,                             // upper half of the 64-bit TSS descriptor
  };
}

absl::Status WriteBootGdt(const GuestMemory& memory) {
  return Annotate(memory.Write(GuestAddress(kBootGdtStart), BootGdt()), "writing the boot GDT");
}

kvm_segment SegmentFromGdtEntry(uint64_t entry, uint16_t selector) {
  kvm_segment seg = {};
  seg.base = ((entry >> 16) & 0x00ff'ffff) | ((entry >> 32) & 0xff00'0000);
  uint32_t limit = static_cast<uint32_t>((entry & 0xffff) | ((entry >> 32) & 0x000f'0000));
  seg.g = (entry >> 55) & 1;
  // With G set the limit counts 4 KiB pages; the low 12 bits read as ones.
  seg.limit = seg.g ? (limit << 12) | 0xfff : limit;
  seg.selector = selector;
  seg.type = (entry >> 40) & 0xf;
  seg.s = (entry >> 44) & 1;
  seg.dpl = (entry >> 45) & 3;
  seg.present = (entry >> 47) & 1;
  seg.avl = (entry >> 52) & 1;
  seg.l = (entry >> 53) & 1;
  seg.db = (entry >> 54) & 1;
  seg.unusable = seg.present ? 0 : 1;
  return seg;
}

kvm_segment BootSegment(uint16_t selector) {
  const auto gdt = BootGdt();
  const size_t index = selector >> 3;
  // A selector past the table reads as a null (unusable) segment.
  return SegmentFromGdtEntry(index < gdt.size() ? gdt[index] : 0, selector);
}

}  // namespace vmm::x86_64
