// Copies and host views over a validated chain's buffers. The buffers were
// checked against guest RAM when popped; the GuestMemory calls check again,
// so a chain used with the wrong memory fails instead of overrunning.
#include "devices/virtio/descriptor_chain.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "base/status_macros.h"

namespace vmm {
namespace {

// Each buffer is < 4 GiB and a chain holds at most 32768 + 1024 of them, so
// these sums cannot overflow 64 bits.
uint64_t TotalBytes(absl::Span<const VirtioBuffer> buffers) {
  uint64_t total = 0;
  for (const VirtioBuffer& b : buffers) total += b.len;
  return total;
}

// Calls fn(addr, offset_in_range, n) for each piece of [offset, offset+len)
// of `buffers`, in order, until fn returns false or the range is covered.
template <typename Fn>
void ForEachPiece(absl::Span<const VirtioBuffer> buffers, uint64_t offset, uint64_t len, Fn fn) {
  uint64_t done = 0;
  for (const VirtioBuffer& b : buffers) {
    if (done == len) return;
    if (offset >= b.len) {
      offset -= b.len;
      continue;
    }
    const uint64_t n = std::min<uint64_t>(b.len - offset, len - done);
    if (!fn(b.addr + offset, done, n)) return;
    done += n;
    offset = 0;
  }
}

absl::StatusOr<std::vector<iovec>> Iovecs(absl::Span<const VirtioBuffer> buffers,
                                          const GuestMemory& memory, uint64_t offset,
                                          uint64_t len, absl::string_view part) {
  const uint64_t total = TotalBytes(buffers);
  if (offset > total || len > total - offset) {
    return absl::OutOfRangeError(absl::StrFormat(
        "range [%d, +%d) is outside the chain's %d %s bytes", offset, len, total, part));
  }
  std::vector<iovec> out;
  absl::Status status;
  ForEachPiece(buffers, offset, len, [&](GuestAddress addr, uint64_t, uint64_t n) {
    absl::StatusOr<absl::Span<uint8_t>> s = memory.Slice(addr, n);
    if (!s.ok()) {
      status = s.status();
      return false;
    }
    out.push_back(iovec{s->data(), s->size()});
    return true;
  });
  RETURN_IF_ERROR(status);
  return out;
}

}  // namespace

uint64_t DescriptorChain::readable_bytes() const { return TotalBytes(readable_); }
uint64_t DescriptorChain::writable_bytes() const { return TotalBytes(writable_); }

size_t DescriptorChain::ReadFrom(const GuestMemory& memory, uint64_t offset,
                                 absl::Span<uint8_t> out) const {
  size_t copied = 0;
  ForEachPiece(readable_, offset, out.size(), [&](GuestAddress addr, uint64_t at, uint64_t n) {
    if (!memory.ReadBytes(addr, out.subspan(at, n)).ok()) return false;
    copied += n;
    return true;
  });
  return copied;
}

size_t DescriptorChain::WriteTo(const GuestMemory& memory, uint64_t offset,
                                absl::Span<const uint8_t> data) const {
  size_t copied = 0;
  ForEachPiece(writable_, offset, data.size(), [&](GuestAddress addr, uint64_t at, uint64_t n) {
    if (!memory.WriteBytes(addr, data.subspan(at, n)).ok()) return false;
    copied += n;
    return true;
  });
  return copied;
}

absl::StatusOr<std::vector<iovec>> DescriptorChain::ReadableIovecs(const GuestMemory& memory,
                                                                   uint64_t offset,
                                                                   uint64_t len) const {
  return Iovecs(readable_, memory, offset, len, "readable");
}

absl::StatusOr<std::vector<iovec>> DescriptorChain::WritableIovecs(const GuestMemory& memory,
                                                                   uint64_t offset,
                                                                   uint64_t len) const {
  return Iovecs(writable_, memory, offset, len, "writable");
}

}  // namespace vmm
