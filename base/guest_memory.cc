#include "base/guest_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_format.h"
#include "base/status_macros.h"

namespace vmm {
namespace {

constexpr uint64_t kPageSize = 4096;

}  // namespace

absl::StatusOr<GuestMemory> GuestMemory::Create(absl::Span<const RamRange> ranges,
                                                Options options) {
  if (ranges.empty()) return absl::InvalidArgumentError("guest memory needs at least one range");
  std::vector<RamRange> sorted(ranges.begin(), ranges.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const RamRange& a, const RamRange& b) { return a.start < b.start; });
  uint64_t total = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    const RamRange& r = sorted[i];
    if (r.size == 0 || r.size % kPageSize != 0 || r.start.value() % kPageSize != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "RAM range 0x%x+0x%x is empty or not page-aligned", r.start.value(), r.size));
    }
    if (!r.start.CheckedAdd(r.size)) {
      return absl::InvalidArgumentError("RAM range wraps the address space");
    }
    if (i > 0 && sorted[i - 1].start + sorted[i - 1].size > r.start) {
      return absl::InvalidArgumentError("RAM ranges overlap");
    }
    if (__builtin_add_overflow(total, r.size, &total)) {
      return absl::InvalidArgumentError("RAM size overflows");
    }
  }

  GuestMemory mem;
  if (options.memfd) {
    int fd = ::memfd_create("vmm-guest-ram", MFD_CLOEXEC);
    if (fd < 0) return ErrnoStatus("memfd_create");
    mem.memfd_.Reset(fd);
    if (::ftruncate(fd, static_cast<off_t>(total)) != 0) {
      return ErrnoStatus(absl::StrFormat("ftruncate guest RAM memfd to %d bytes", total));
    }
  }
  uint64_t fd_offset = 0;
  for (const RamRange& r : sorted) {
    void* host;
    if (options.memfd) {
      host = ::mmap(nullptr, r.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                    mem.memfd_.get(), static_cast<off_t>(fd_offset));
    } else {
      host = ::mmap(nullptr, r.size, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    }
    if (host == MAP_FAILED) {
      return ErrnoStatus(absl::StrFormat("mmap %d bytes of guest RAM", r.size));
    }
    mem.regions_.push_back(Region{r.start, r.size, static_cast<uint8_t*>(host),
                                  options.memfd ? mem.memfd_.get() : -1, fd_offset});
    fd_offset += r.size;
  }
  return mem;
}

GuestMemory::GuestMemory(GuestMemory&& other) noexcept
    : regions_(std::move(other.regions_)), memfd_(std::move(other.memfd_)) {
  other.regions_.clear();
}

GuestMemory& GuestMemory::operator=(GuestMemory&& other) noexcept {
  if (this != &other) {
    Unmap();
    regions_ = std::move(other.regions_);
    other.regions_.clear();
    memfd_ = std::move(other.memfd_);
  }
  return *this;
}

GuestMemory::~GuestMemory() { Unmap(); }

void GuestMemory::Unmap() {
  for (const Region& r : regions_) ::munmap(r.host, r.size);
  regions_.clear();
}

uint64_t GuestMemory::total_size() const {
  uint64_t total = 0;
  for (const Region& r : regions_) total += r.size;
  return total;
}

GuestAddress GuestMemory::end() const {
  return regions_.empty() ? GuestAddress(0) : regions_.back().end();
}

const GuestMemory::Region* GuestMemory::Find(GuestAddress addr, uint64_t size) const {
  auto last = addr.CheckedAdd(size);
  if (!last) return nullptr;
  for (const Region& r : regions_) {
    if (addr >= r.start && *last <= r.end()) return &r;
  }
  return nullptr;
}

bool GuestMemory::Contains(GuestAddress addr, uint64_t size) const {
  return Find(addr, size) != nullptr;
}

absl::StatusOr<absl::Span<uint8_t>> GuestMemory::Slice(GuestAddress addr, uint64_t size) const {
  const Region* r = Find(addr, size);
  if (r == nullptr) {
    return absl::OutOfRangeError(absl::StrFormat(
        "guest range 0x%x+0x%x is not inside guest RAM", addr.value(), size));
  }
  return absl::Span<uint8_t>(r->host + (addr - r->start), size);
}

absl::Status GuestMemory::ReadBytes(GuestAddress addr, absl::Span<uint8_t> out) const {
  ASSIGN_OR_RETURN(absl::Span<uint8_t> src, Slice(addr, out.size()));
  if (!out.empty()) std::memcpy(out.data(), src.data(), out.size());
  return absl::OkStatus();
}

absl::Status GuestMemory::WriteBytes(GuestAddress addr, absl::Span<const uint8_t> data) const {
  ASSIGN_OR_RETURN(absl::Span<uint8_t> dst, Slice(addr, data.size()));
  if (!data.empty()) std::memcpy(dst.data(), data.data(), data.size());
  return absl::OkStatus();
}

}  // namespace vmm
