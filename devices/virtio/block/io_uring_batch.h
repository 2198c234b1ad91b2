// Reads and writes a block backend queued during one pass over a virtqueue,
// started together with one io_uring submission and waited for together.
// The requests overlap in the kernel (an O_DIRECT disk sees them all at
// once) and the pass costs one io_uring_enter instead of a preadv/pwritev
// per request.
//
// Not thread-safe: its owner (RawFileBackend, under the device's lock)
// serialises every call.
#ifndef VMM_DEVICES_VIRTIO_BLOCK_IO_URING_BATCH_H_
#define VMM_DEVICES_VIRTIO_BLOCK_IO_URING_BATCH_H_

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

struct io_uring;  // liburing.h stays out of this header

namespace vmm {

class IoUringBatch {
 public:
  // One queued transfer. `result` after Run(): bytes moved, or -errno
  // (-ECANCELED for an op the kernel never ran because the ring failed).
  struct Op {
    bool write = false;
    int fd = -1;
    uint64_t offset = 0;
    uint64_t len = 0;  // total of the iovecs
    uint64_t tag = 0;  // the caller's
    size_t iov_begin = 0;
    size_t iov_count = 0;
    int64_t result = 0;
  };

  // A ring of `entries` (the most one batch holds). Fails where io_uring is
  // unavailable (ENOSYS on old kernels, EPERM under seccomp or
  // kernel.io_uring_disabled): the caller keeps to synchronous I/O.
  static absl::StatusOr<std::unique_ptr<IoUringBatch>> Create(unsigned entries);
  ~IoUringBatch();
  IoUringBatch(const IoUringBatch&) = delete;
  IoUringBatch& operator=(const IoUringBatch&) = delete;

  bool full() const { return ops_.size() >= entries_; }
  bool empty() const { return ops_.empty(); }

  // Queues a transfer (the iovecs are copied). Requires !full() and a
  // non-empty `iov` of at most IOV_MAX entries.
  void Queue(int fd, bool write, absl::Span<const iovec> iov, uint64_t offset, uint64_t tag);

  // Submits every queued op (one io_uring_enter unless the kernel takes
  // fewer) and waits until all have completed, filling each op's result.
  // An error means the ring is unusable: ops it did not run have -ECANCELED,
  // and the owner should drop this object and go synchronous.
  absl::Status Run();

  const std::vector<Op>& ops() const { return ops_; }
  absl::Span<const iovec> iov(const Op& op) const {
    return absl::MakeConstSpan(iovs_).subspan(op.iov_begin, op.iov_count);
  }
  // Forgets the ops (after their results were used).
  void Clear();

 private:
  explicit IoUringBatch(unsigned entries);

  const unsigned entries_;
  std::unique_ptr<io_uring> ring_;  // initialised (queue_init succeeded) once Create returns
  std::vector<Op> ops_;
  std::vector<iovec> iovs_;
};

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_BLOCK_IO_URING_BATCH_H_
