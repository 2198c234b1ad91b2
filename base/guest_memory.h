// Guest RAM: one owner of the host mappings, bounds-checked access for
// everyone else.
#ifndef VMM_BASE_GUEST_MEMORY_H_
#define VMM_BASE_GUEST_MEMORY_H_

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/guest_address.h"
#include "base/unique_fd.h"

namespace vmm {

// A guest-physical range to back with RAM.
struct RamRange {
  GuestAddress start;
  uint64_t size = 0;
};

struct GuestMemoryOptions {
  // Back RAM with a memfd (shareable with another process) instead of an
  // anonymous private mapping.
  bool memfd = false;
};

class GuestMemory {
 public:
  using Options = GuestMemoryOptions;

  // One mapped region. `host` stays valid for the GuestMemory's lifetime.
  struct Region {
    GuestAddress start;
    uint64_t size = 0;
    uint8_t* host = nullptr;
    int fd = -1;             // the memfd, when memfd-backed; else -1
    uint64_t fd_offset = 0;  // offset of this region within the memfd
    GuestAddress end() const { return start + size; }
  };

  // Maps each range (page-aligned, non-overlapping, non-empty) with
  // MAP_NORESERVE; nothing is touched, so a large guest costs nothing until
  // it uses its memory.
  static absl::StatusOr<GuestMemory> Create(absl::Span<const RamRange> ranges,
                                            Options options = {});

  GuestMemory(GuestMemory&& other) noexcept;
  GuestMemory& operator=(GuestMemory&& other) noexcept;
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;
  ~GuestMemory();

  absl::Span<const Region> regions() const { return regions_; }
  uint64_t total_size() const;
  // The highest guest-physical address + 1 backed by RAM.
  GuestAddress end() const;

  // True if [addr, addr + size) lies inside one region (size 0 included).
  bool Contains(GuestAddress addr, uint64_t size) const;

  // A host view of [addr, addr + size), which must sit inside one region and
  // must not wrap. The view is valid for the GuestMemory's lifetime.
  absl::StatusOr<absl::Span<uint8_t>> Slice(GuestAddress addr, uint64_t size) const;

  absl::Status ReadBytes(GuestAddress addr, absl::Span<uint8_t> out) const;
  absl::Status WriteBytes(GuestAddress addr, absl::Span<const uint8_t> data) const;

  // Reads a T with one copy (no double fetch of guest-controlled data).
  template <typename T>
  absl::StatusOr<T> Read(GuestAddress addr) const {
    static_assert(std::is_trivially_copyable_v<T>);
    T value;
    absl::Status s = ReadBytes(addr, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&value), sizeof(T)));
    if (!s.ok()) return s;
    return value;
  }

  template <typename T>
  absl::Status Write(GuestAddress addr, const T& value) const {
    static_assert(std::is_trivially_copyable_v<T>);
    return WriteBytes(addr, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(&value), sizeof(T)));
  }

 private:
  GuestMemory() = default;
  const Region* Find(GuestAddress addr, uint64_t size) const;
  void Unmap();

  std::vector<Region> regions_;
  UniqueFd memfd_;
};

}  // namespace vmm

#endif  // VMM_BASE_GUEST_MEMORY_H_
