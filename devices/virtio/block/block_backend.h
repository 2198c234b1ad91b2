// Where a virtio-blk device's sectors live. The device validates every
// request (ranges inside size_bytes(), offsets and lengths multiples of
// block_size(), no writes when read_only()) before calling a backend, so a
// backend only has to move bytes.
//
// Batching (optional): a backend that can overlap transfers accepts reads
// and writes with QueueV and runs everything queued when CompleteQueued is
// called (RawFileBackend does it with one io_uring submission). A backend
// that cannot returns false from QueueV and the caller uses ReadV/WriteV.
#ifndef VMM_DEVICES_VIRTIO_BLOCK_BLOCK_BACKEND_H_
#define VMM_DEVICES_VIRTIO_BLOCK_BLOCK_BACKEND_H_

#include <sys/uio.h>

#include <cstdint>

#include "absl/functional/function_ref.h"
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
  // Makes completed writes durable (fdatasync). A batching backend first
  // completes everything queued (CompleteQueued still reports it), so a
  // flush covers every write accepted before it.
  virtual absl::Status Flush() = 0;

  // Queues a transfer of the iovecs' total length at `offset` (iovecs are
  // copied; the memory they point at must stay valid until CompleteQueued).
  // False: not queued (no batching here, batch full, a buffer the backend
  // cannot use directly); use ReadV/WriteV instead.
  virtual bool QueueV(bool /*write*/, absl::Span<const iovec> /*iov*/, uint64_t /*offset*/,
                      uint64_t /*tag*/) {
    return false;
  }
  // Runs every queued transfer to completion and calls done(tag, status) once
  // for each, in no particular order, with the same meaning as ReadV/WriteV.
  virtual void CompleteQueued(
      absl::FunctionRef<void(uint64_t tag, const absl::Status& status)> /*done*/) {}
  // Advisory: the range may be deallocated; later reads return zeros or the
  // old data. A backend that cannot deallocate returns OK.
  virtual absl::Status Discard(uint64_t offset, uint64_t len) = 0;
  // Later reads of the range return zeros. `may_unmap`: the range may also
  // be deallocated (otherwise it stays allocated).
  virtual absl::Status WriteZeroes(uint64_t offset, uint64_t len, bool may_unmap) = 0;
};

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_BLOCK_BLOCK_BACKEND_H_
