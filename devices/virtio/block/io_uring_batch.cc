#include "devices/virtio/block/io_uring_batch.h"

#include <errno.h>
#include <limits.h>
#include <liburing.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace vmm {

IoUringBatch::IoUringBatch(unsigned entries) : entries_(entries) {}

absl::StatusOr<std::unique_ptr<IoUringBatch>> IoUringBatch::Create(unsigned entries) {
  auto ring = std::make_unique<io_uring>();
  std::memset(ring.get(), 0, sizeof(io_uring));
  if (int r = io_uring_queue_init(entries, ring.get(), 0); r < 0) {
    return absl::ErrnoToStatus(-r, "io_uring_queue_init");
  }
  auto batch = std::unique_ptr<IoUringBatch>(new IoUringBatch(entries));
  batch->ring_ = std::move(ring);
  batch->ops_.reserve(entries);
  batch->iovs_.reserve(entries);
  return batch;
}

IoUringBatch::~IoUringBatch() {
  if (ring_ != nullptr) io_uring_queue_exit(ring_.get());
}

void IoUringBatch::Queue(int fd, bool write, absl::Span<const iovec> iov, uint64_t offset,
                         uint64_t tag) {
  Op op;
  op.write = write;
  op.fd = fd;
  op.offset = offset;
  op.tag = tag;
  op.iov_begin = iovs_.size();
  op.iov_count = iov.size();
  for (const iovec& v : iov) op.len += v.iov_len;
  iovs_.insert(iovs_.end(), iov.begin(), iov.end());
  ops_.push_back(op);
}

void IoUringBatch::Clear() {
  ops_.clear();
  iovs_.clear();
}

absl::Status IoUringBatch::Run() {
  // SQEs are prepared only now: iovs_ no longer grows, so the iovec
  // pointers stay valid until every op has completed.
  size_t prepared = 0;
  for (Op& op : ops_) {
    io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
    if (sqe == nullptr) break;  // cannot happen: at most `entries_` ops
    const iovec* v = iovs_.data() + op.iov_begin;
    const unsigned n = static_cast<unsigned>(op.iov_count);
    if (op.write) {
      io_uring_prep_writev(sqe, op.fd, v, n, op.offset);
    } else {
      io_uring_prep_readv(sqe, op.fd, v, n, op.offset);
    }
    io_uring_sqe_set_data64(sqe, prepared);
    op.result = -ECANCELED;
    ++prepared;
  }
  size_t submitted = 0;
  size_t completed = 0;
  absl::Status error;
  int stalls = 0;  // submissions that took nothing with nothing in flight
  while (completed < submitted || (submitted < prepared && error.ok())) {
    if (submitted < prepared && error.ok()) {
      // Waits for one completion in the same system call once something
      // is in flight.
      int r = io_uring_submit_and_wait(ring_.get(), completed < submitted ? 1 : 0);
      if (r > 0) {
        submitted += static_cast<size_t>(r);
      } else if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
        error = absl::ErrnoToStatus(-r, "io_uring_submit");
      } else if (completed == submitted && ++stalls > 100) {
        error = absl::ResourceExhaustedError("io_uring_submit keeps taking nothing");
      }
    }
    if (completed == submitted) continue;
    io_uring_cqe* cqe = nullptr;
    int r = io_uring_wait_cqe(ring_.get(), &cqe);
    if (r == -EINTR || r == -EAGAIN) continue;
    if (r < 0) {
      // Nothing more can be learnt from this ring; what is still in flight
      // is cancelled when the owner destroys it.
      return absl::ErrnoToStatus(-r, "io_uring_wait_cqe");
    }
    const uint64_t index = io_uring_cqe_get_data64(cqe);
    if (index < prepared) ops_[index].result = cqe->res;
    io_uring_cqe_seen(ring_.get(), cqe);
    ++completed;
  }
  return error;
}

}  // namespace vmm
