#include "firmware/e820.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "arch/x86_64/layout.h"

namespace vmm::firmware {

using x86_64::E820Entry;
using x86_64::E820Type;

absl::StatusOr<std::vector<E820Entry>> BuildE820Map(absl::Span<const RamRange> ram,
                                                    absl::Span<const E820Entry> extra) {
  std::vector<E820Entry> map;
  auto add = [&map](uint64_t start, uint64_t end, E820Type type) {
    if (end > start) map.push_back({GuestAddress(start), end - start, type});
  };
  // The legacy BIOS area is never RAM, whatever the guest's RAM covers.
  add(x86_64::kEbdaStart, x86_64::kHighMemStart, E820Type::kReserved);
  for (const RamRange& r : ram) {
    std::optional<GuestAddress> end = r.start.CheckedAdd(r.size);
    if (!end) return absl::InvalidArgumentError("e820: RAM range wraps the address space");
    add(r.start.value(), std::min(end->value(), x86_64::kEbdaStart), E820Type::kRam);
    add(std::max(r.start.value(), x86_64::kHighMemStart), end->value(), E820Type::kRam);
  }
  for (const E820Entry& e : extra) {
    if (e.size == 0) continue;
    if (!e.addr.CheckedAdd(e.size)) {
      return absl::InvalidArgumentError("e820: entry wraps the address space");
    }
    map.push_back(e);
  }
  std::sort(map.begin(), map.end(),
            [](const E820Entry& a, const E820Entry& b) { return a.addr < b.addr; });
  for (size_t i = 1; i < map.size(); ++i) {
    const E820Entry& prev = map[i - 1];
    if (prev.addr + prev.size > map[i].addr) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "e820: 0x%x+0x%x overlaps 0x%x+0x%x", prev.addr.value(), prev.size,
          map[i].addr.value(), map[i].size));
    }
  }
  return map;
}

}  // namespace vmm::firmware
