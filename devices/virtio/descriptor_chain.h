// One descriptor chain popped from a virtqueue: its buffers, validated when
// popped, and move-only so it is completed exactly once with
// Virtqueue::AddUsed (Fuchsia's VirtioChain).
//
// Validation at pop (virtqueue.cc): every buffer inside one guest RAM region
// (addr+len does not wrap), chain length bounded by the queue size, no loops,
// an indirect table only when negotiated, its length a non-zero multiple of
// 16, inside RAM, at most kVirtqMaxIndirectDescriptors (1024) entries
// whatever the queue size, not nested and not combined with
// VIRTQ_DESC_F_NEXT; device-readable buffers before device-writable ones.
// Zero-length buffers are dropped, so readable()/writable() never hold one.
#ifndef VMM_DEVICES_VIRTIO_DESCRIPTOR_CHAIN_H_
#define VMM_DEVICES_VIRTIO_DESCRIPTOR_CHAIN_H_

#include <sys/uio.h>

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/guest_address.h"
#include "base/guest_memory.h"

namespace vmm {

struct VirtioBuffer {
  GuestAddress addr;
  uint32_t len = 0;
};

class DescriptorChain {
 public:
  DescriptorChain(uint16_t head, std::vector<VirtioBuffer> readable,
                  std::vector<VirtioBuffer> writable)
      : head_(head), readable_(std::move(readable)), writable_(std::move(writable)) {}
  DescriptorChain(DescriptorChain&&) = default;
  DescriptorChain& operator=(DescriptorChain&&) = default;
  DescriptorChain(const DescriptorChain&) = delete;
  DescriptorChain& operator=(const DescriptorChain&) = delete;

  uint16_t head() const { return head_; }
  // Driver-to-device buffers, then device-to-driver buffers, in chain order.
  absl::Span<const VirtioBuffer> readable() const { return readable_; }
  absl::Span<const VirtioBuffer> writable() const { return writable_; }
  uint64_t readable_bytes() const;
  uint64_t writable_bytes() const;

  // Copies up to out.size() bytes starting `offset` bytes into the readable
  // part; returns how many were copied.
  size_t ReadFrom(const GuestMemory& memory, uint64_t offset, absl::Span<uint8_t> out) const;
  // Copies `data` starting `offset` bytes into the writable part; returns how
  // many bytes fitted.
  size_t WriteTo(const GuestMemory& memory, uint64_t offset, absl::Span<const uint8_t> data) const;
  // Host iovecs for [offset, offset + len) of the readable or writable part
  // (for preadv/pwritev straight from guest memory). Fails if the range is
  // not inside that part.
  absl::StatusOr<std::vector<iovec>> ReadableIovecs(const GuestMemory& memory, uint64_t offset,
                                                    uint64_t len) const;
  absl::StatusOr<std::vector<iovec>> WritableIovecs(const GuestMemory& memory, uint64_t offset,
                                                    uint64_t len) const;

 private:
  uint16_t head_;
  std::vector<VirtioBuffer> readable_;
  std::vector<VirtioBuffer> writable_;
};

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_DESCRIPTOR_CHAIN_H_
