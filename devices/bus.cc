#include "devices/bus.h"

#include <cstring>

#include "absl/strings/str_format.h"

namespace vmm {

absl::Status Bus::Insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t size) {
  uint64_t last;
  if (size == 0 || __builtin_add_overflow(base, size - 1, &last)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("bus range 0x%x+0x%x is empty or wraps", base, size));
  }
  absl::MutexLock lock(&mu_);
  auto next = ranges_.lower_bound(base);
  if (next != ranges_.end() && next->first <= last) {
    return absl::AlreadyExistsError(absl::StrFormat(
        "bus range 0x%x+0x%x overlaps 0x%x+0x%x", base, size, next->first, next->second.size));
  }
  if (next != ranges_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + (prev->second.size - 1) >= base) {
      return absl::AlreadyExistsError(absl::StrFormat(
          "bus range 0x%x+0x%x overlaps 0x%x+0x%x", base, size, prev->first, prev->second.size));
    }
  }
  ranges_.emplace(base, Range{size, std::move(device)});
  return absl::OkStatus();
}

absl::Status Bus::Remove(uint64_t base) {
  absl::MutexLock lock(&mu_);
  if (ranges_.erase(base) == 0) {
    return absl::NotFoundError(absl::StrFormat("no bus range at 0x%x", base));
  }
  return absl::OkStatus();
}

std::shared_ptr<BusDevice> Bus::Find(uint64_t addr, uint64_t len, uint64_t* offset) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = ranges_.upper_bound(addr);
  if (it == ranges_.begin()) return nullptr;
  --it;
  uint64_t off = addr - it->first;
  if (off >= it->second.size || len > it->second.size - off) return nullptr;
  *offset = off;
  return it->second.device;
}

bool Bus::Read(uint64_t addr, absl::Span<uint8_t> data) const {
  uint64_t offset;
  std::shared_ptr<BusDevice> device = Find(addr, data.size(), &offset);
  if (!device) {
    std::memset(data.data(), 0xff, data.size());
    return false;
  }
  device->Read(offset, data);
  return true;
}

bool Bus::Write(uint64_t addr, absl::Span<const uint8_t> data) const {
  uint64_t offset;
  std::shared_ptr<BusDevice> device = Find(addr, data.size(), &offset);
  if (!device) return false;
  device->Write(offset, data);
  return true;
}

}  // namespace vmm
