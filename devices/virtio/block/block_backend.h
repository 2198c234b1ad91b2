// Where a virtio-blk device's sectors live. The device validates every
// request (ranges inside size_bytes(), offsets and lengths multiples of
// block_size(), no writes when read_only()) before calling a backend, so a
// backend only has to move bytes. Synchronous today; an io_uring backend can
// implement the same calls.
#ifndef VMM_DEVICES_VIRTIO_BLOCK_BLOCK_BACKEND_H_
#define VMM_DEVICES_VIRTIO_BLOCK_BLOCK_BACKEND_H_

#include <sys/uio.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace vmm {

class BlockBackend {
 public:
  virtual ~BlockBackend() = default;

  // Addressable size in bytes, a multiple of block_size().
  virtual uint64_t size_bytes() const = 0;
  // The unit every offset and length must be a multiple of: 512, or the
  // O_DIRECT alignment.
  virtual uint32_t block_size() const = 0;
  virtual bool read_only() const = 0;

  // Transfer exactly the iovecs' total length at `offset` (short transfers
  // are retried; reaching end of file is an error).
  virtual absl::Status ReadV(absl::Span<const iovec> iov, uint64_t offset) = 0;
  virtual absl::Status WriteV(absl::Span<const iovec> iov, uint64_t offset) = 0;
  // Makes completed writes durable (fdatasync).
  virtual absl::Status Flush() = 0;
  // Advisory: the range may be deallocated; later reads return zeros or the
  // old data. A backend that cannot deallocate returns OK.
  virtual absl::Status Discard(uint64_t offset, uint64_t len) = 0;
  // Later reads of the range return zeros. `may_unmap`: the range may also
  // be deallocated (otherwise it stays allocated).
  virtual absl::Status WriteZeroes(uint64_t offset, uint64_t len, bool may_unmap) = 0;
};

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_BLOCK_BLOCK_BACKEND_H_
