#include "devices/virtio/block/raw_file_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace vmm {
namespace {

// Walks a list of iovecs byte by byte-range (for the bounce buffer).
class IovecCursor {
 public:
  explicit IovecCursor(absl::Span<const iovec> iov) : iov_(iov) {}
  // Copies `len` bytes between the iovecs and `buf`, advancing.
  void Copy(uint8_t* buf, size_t len, bool to_iovecs) {
    while (len > 0 && index_ < iov_.size()) {
      size_t take = std::min(len, iov_[index_].iov_len - within_);
      uint8_t* at = static_cast<uint8_t*>(iov_[index_].iov_base) + within_;
      if (to_iovecs) {
        std::memcpy(at, buf, take);
      } else {
        std::memcpy(buf, at, take);
      }
      buf += take;
      len -= take;
      within_ += take;
      if (within_ == iov_[index_].iov_len) {
        ++index_;
        within_ = 0;
      }
    }
  }

 private:
  absl::Span<const iovec> iov_;
  size_t index_ = 0;
  size_t within_ = 0;
};

uint64_t TotalLength(absl::Span<const iovec> iov) {
  uint64_t total = 0;
  for (const iovec& v : iov) total += v.iov_len;
  return total;
}

}  // namespace

bool RawFileBackend::EnsureBuffer(AlignedBuffer& buffer) {
  if (buffer == nullptr) {
    void* p = nullptr;
    if (posix_memalign(&p, kDirectAlignment, kBounceSize) != 0) return false;
    std::memset(p, 0, kBounceSize);
    buffer.reset(static_cast<uint8_t*>(p));
  }
  return true;
}

absl::StatusOr<std::unique_ptr<RawFileBackend>> RawFileBackend::Open(
    const RawFileOptions& options) {
  const std::string& path = options.path;
  if (path.empty()) return absl::InvalidArgumentError("disk image: empty path");
  int flags = (options.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
  if (options.direct) flags |= O_DIRECT;
  UniqueFd fd(::open(path.c_str(), flags));
  if (!fd.valid()) {
    int err = errno;
    if (err == EINVAL && options.direct) {
      return absl::InvalidArgumentError(
          absl::StrCat("disk image ", path, ": the file system does not support O_DIRECT (direct=on)"));
    }
    if ((err == EACCES || err == EROFS) && !options.read_only) {
      return absl::PermissionDeniedError(absl::StrCat(
          "disk image ", path, ": cannot open it for writing (", std::strerror(err),
          "); use readonly=on for a read-only image"));
    }
    return absl::ErrnoToStatus(err, absl::StrCat("disk image ", path));
  }

  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(absl::StrCat("disk image ", path, ": fstat"));
  uint64_t size = 0;
  if (S_ISREG(st.st_mode)) {
    size = static_cast<uint64_t>(st.st_size);
  } else if (S_ISBLK(st.st_mode)) {
    if (::ioctl(fd.get(), BLKGETSIZE64, &size) != 0) {
      return ErrnoStatus(absl::StrCat("disk image ", path, ": BLKGETSIZE64"));
    }
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("disk image ", path, " is not a regular file or block device"));
  }

  // flock locks belong to the open file description: a second open, even in
  // this process, conflicts — what keeps two VMMs off one image.
  if (::flock(fd.get(), (options.read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return absl::FailedPreconditionError(absl::StrCat(
          "disk image ", path, " is in use by another process (",
          options.read_only ? "open for writing there" : "already open there", ")"));
    }
    return ErrnoStatus(absl::StrCat("disk image ", path, ": flock"));
  }

  auto backend = std::unique_ptr<RawFileBackend>(new RawFileBackend());
  backend->path_ = path;
  backend->fd_ = std::move(fd);
  backend->read_only_ = options.read_only;
  backend->direct_ = options.direct;
  backend->use_io_uring_ =
      options.io_uring == RawFileOptions::IoUring::kAlways ||
      (options.io_uring == RawFileOptions::IoUring::kDirectOnly && options.direct);
  if (backend->use_io_uring_) {
    // Set up now, while the VMM builds the machine: once the guest runs, the
    // event loop's seccomp filter does not allow io_uring_setup.
    absl::StatusOr<std::unique_ptr<IoUringBatch>> batch = IoUringBatch::Create(kBatchEntries);
    if (batch.ok()) {
      backend->batch_ = std::move(*batch);
    } else {
      backend->use_io_uring_ = false;  // synchronous I/O, as without io_uring
    }
  }
  backend->block_size_ = options.direct ? kDirectAlignment : kSectorSize;
  backend->ignored_tail_bytes_ = size % backend->block_size_;
  backend->size_bytes_ = size - backend->ignored_tail_bytes_;
  return backend;
}

bool RawFileBackend::NeedsBounce(absl::Span<const iovec> iov) const {
  if (!direct_) return false;
  for (const iovec& v : iov) {
    if (reinterpret_cast<uintptr_t>(v.iov_base) % kDirectAlignment != 0 ||
        v.iov_len % kDirectAlignment != 0) {
      return true;
    }
  }
  return false;
}

absl::Status RawFileBackend::TransferAll(bool write, absl::Span<const iovec> iov,
                                         uint64_t offset) {
  // The common case, one call that moves everything, needs no copy of the
  // iovecs (a malloc/free per request in the profile).
  if (!iov.empty() && iov.size() <= IOV_MAX) {
    const uint64_t total = TotalLength(iov);
    const int count = static_cast<int>(iov.size());
    ssize_t n = write ? ::pwritev(fd_.get(), iov.data(), count, static_cast<off_t>(offset))
                      : ::preadv(fd_.get(), iov.data(), count, static_cast<off_t>(offset));
    if (n >= 0 && static_cast<uint64_t>(n) == total) return absl::OkStatus();
    // Short, failed or interrupted: the general loop redoes it from the
    // start (rewriting the same bytes at the same offset is harmless).
  }
  std::vector<iovec> left(iov.begin(), iov.end());
  size_t index = 0;
  while (index < left.size()) {
    if (left[index].iov_len == 0) {
      ++index;
      continue;
    }
    int count = static_cast<int>(std::min<size_t>(left.size() - index, IOV_MAX));
    ssize_t n = write ? ::pwritev(fd_.get(), &left[index], count, static_cast<off_t>(offset))
                      : ::preadv(fd_.get(), &left[index], count, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(absl::StrCat(write ? "pwritev " : "preadv ", path_, " at offset ", offset));
    }
    if (n == 0) {
      return absl::OutOfRangeError(
          absl::StrCat(write ? "pwritev " : "preadv ", path_, " at offset ", offset,
                       ": unexpected end of file (did the image shrink?)"));
    }
    offset += static_cast<uint64_t>(n);
    size_t done = static_cast<size_t>(n);
    while (done > 0) {
      size_t take = std::min(done, left[index].iov_len);
      left[index].iov_base = static_cast<uint8_t*>(left[index].iov_base) + take;
      left[index].iov_len -= take;
      done -= take;
      if (left[index].iov_len == 0) ++index;
    }
  }
  return absl::OkStatus();
}

absl::Status RawFileBackend::TransferBounced(bool write, absl::Span<const iovec> iov,
                                             uint64_t offset) {
  if (!EnsureBuffer(bounce_)) {
    return absl::ResourceExhaustedError("disk bounce buffer: out of memory");
  }
  IovecCursor cursor(iov);
  uint64_t remaining = TotalLength(iov);
  while (remaining > 0) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(remaining, kBounceSize));
    if (write) cursor.Copy(bounce_.get(), chunk, /*to_iovecs=*/false);
    iovec b{bounce_.get(), chunk};
    RETURN_IF_ERROR(TransferAll(write, absl::MakeConstSpan(&b, 1), offset));
    if (!write) cursor.Copy(bounce_.get(), chunk, /*to_iovecs=*/true);
    offset += chunk;
    remaining -= chunk;
  }
  return absl::OkStatus();
}

absl::Status RawFileBackend::ReadV(absl::Span<const iovec> iov, uint64_t offset) {
  if (NeedsBounce(iov)) return TransferBounced(/*write=*/false, iov, offset);
  return TransferAll(/*write=*/false, iov, offset);
}

absl::Status RawFileBackend::WriteV(absl::Span<const iovec> iov, uint64_t offset) {
  if (read_only_) return absl::FailedPreconditionError(absl::StrCat(path_, " is read-only"));
  if (NeedsBounce(iov)) return TransferBounced(/*write=*/true, iov, offset);
  return TransferAll(/*write=*/true, iov, offset);
}

bool RawFileBackend::QueueV(bool write, absl::Span<const iovec> iov, uint64_t offset,
                            uint64_t tag) {
  if (!use_io_uring_ || (write && read_only_) || iov.empty() || iov.size() > IOV_MAX ||
      NeedsBounce(iov)) {
    return false;
  }
  if (batch_ == nullptr || batch_->full()) return false;
  batch_->Queue(fd_.get(), write, iov, offset, tag);
  return true;
}

void RawFileBackend::RunQueued() {
  if (batch_ == nullptr || batch_->empty()) return;
  if (batch_->ops().size() == 1) {
    // Nothing to overlap: the system call is cheaper than a ring round trip.
    const IoUringBatch::Op& op = batch_->ops()[0];
    completed_.push_back({op.tag, TransferAll(op.write, batch_->iov(op), op.offset)});
    batch_->Clear();
    return;
  }
  const absl::Status run = batch_->Run();
  for (const IoUringBatch::Op& op : batch_->ops()) {
    absl::Status status;
    if (op.result >= 0 && static_cast<uint64_t>(op.result) == op.len) {
      status = absl::OkStatus();
    } else if (op.result >= 0 || op.result == -EAGAIN || op.result == -EINTR ||
               op.result == -ECANCELED) {
      // Short (end of file is reported from here, as by ReadV), retryable
      // or never run: the synchronous path gives the exact answer.
      status = TransferAll(op.write, batch_->iov(op), op.offset);
    } else {
      status = absl::ErrnoToStatus(static_cast<int>(-op.result),
                                   absl::StrCat(op.write ? "io_uring write " : "io_uring read ",
                                                path_, " at offset ", op.offset));
    }
    completed_.push_back({op.tag, std::move(status)});
  }
  batch_->Clear();
  if (!run.ok()) {
    batch_.reset();
    use_io_uring_ = false;
  }
}

void RawFileBackend::CompleteQueued(
    absl::FunctionRef<void(uint64_t tag, const absl::Status& status)> done) {
  RunQueued();
  for (const Completed& c : completed_) done(c.tag, c.status);
  completed_.clear();
}

absl::Status RawFileBackend::Flush() {
  // Every write accepted before the flush has completed before fdatasync.
  RunQueued();
  if (::fdatasync(fd_.get()) != 0) return ErrnoStatus(absl::StrCat("fdatasync ", path_));
  return absl::OkStatus();
}

absl::StatusOr<bool> RawFileBackend::TryFallocate(int mode, uint64_t offset, uint64_t len) {
  while (::fallocate(fd_.get(), mode, static_cast<off_t>(offset), static_cast<off_t>(len)) != 0) {
    if (errno == EINTR) continue;
    // Not every file system (or block device) supports every mode; EINVAL
    // also covers a block device whose discard granularity does not fit.
    if (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL) return false;
    return ErrnoStatus(absl::StrCat("fallocate ", path_, " at offset ", offset));
  }
  return true;
}

absl::Status RawFileBackend::Discard(uint64_t offset, uint64_t len) {
  if (read_only_) return absl::FailedPreconditionError(absl::StrCat(path_, " is read-only"));
  if (len == 0) return absl::OkStatus();
  // Advisory: a file system that cannot punch holes keeps the data.
  return TryFallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, len).status();
}

absl::Status RawFileBackend::WriteZeroes(uint64_t offset, uint64_t len, bool may_unmap) {
  if (read_only_) return absl::FailedPreconditionError(absl::StrCat(path_, " is read-only"));
  if (len == 0) return absl::OkStatus();
  if (may_unmap) {
    ASSIGN_OR_RETURN(bool punched,
                     TryFallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, len));
    if (punched) return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(bool zeroed,
                   TryFallocate(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset, len));
  if (zeroed) return absl::OkStatus();
  return WriteZeroBuffers(offset, len);
}

absl::Status RawFileBackend::WriteZeroBuffers(uint64_t offset, uint64_t len) {
  if (!EnsureBuffer(zeros_)) {
    return absl::ResourceExhaustedError("disk zero buffer: out of memory");
  }
  while (len > 0) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(len, kBounceSize));
    iovec z{zeros_.get(), chunk};
    RETURN_IF_ERROR(TransferAll(/*write=*/true, absl::MakeConstSpan(&z, 1), offset));
    offset += chunk;
    len -= chunk;
  }
  return absl::OkStatus();
}

}  // namespace vmm
