// A raw disk image (or a host block device) as a BlockBackend: preadv /
// pwritev straight from the guest's buffers, fdatasync, fallocate.
//
// Locking: the image is flock()ed when opened — exclusively when writable,
// shared when read-only — so two VMMs cannot both write one image, nor read
// one while another writes it. The lock lives as long as the backend.
//
// Size: capacity is the size rounded down to block_size(); a tail that is
// not a whole block is not addressable (ignored_tail_bytes() says how much,
// for the caller to warn about).
//
// O_DIRECT (`direct`): block_size() becomes 4096, which the device reports
// as blk_size, so Linux sends 4 KiB-aligned offsets and lengths. Guest
// buffers need not be aligned: a request whose buffers are not 4 KiB-aligned
// is bounced through an aligned 1 MiB buffer, in chunks.
//
// Batching: QueueV'd reads and writes run through io_uring (IoUringBatch),
// all of one CompleteQueued in one submission; a batch of one runs
// synchronously (nothing to overlap). By default only with O_DIRECT, where
// the requests really overlap on the disk: a page-cache transfer is a
// memcpy that io_uring either does inline (no gain) or, on file systems
// that cannot promise not to block (tmpfs here), hands to a kernel worker
// thread — measured at twice the CPU per request of preadv (bench/README.md).
// The ring is made on first use; where io_uring is unavailable (old kernel,
// seccomp, kernel.io_uring_disabled) QueueV returns false and everything
// stays synchronous. A short or EAGAIN completion is redone synchronously,
// so results match ReadV/WriteV exactly.
#ifndef VMM_DEVICES_VIRTIO_BLOCK_RAW_FILE_BACKEND_H_
#define VMM_DEVICES_VIRTIO_BLOCK_RAW_FILE_BACKEND_H_

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "devices/virtio/block/block_backend.h"
#include "devices/virtio/block/io_uring_batch.h"

namespace vmm {

struct RawFileOptions {
  std::string path;
  bool read_only = false;
  bool direct = false;  // O_DIRECT: bypass the host page cache
  // When QueueV'd transfers go through io_uring (see the class comment).
  enum class IoUring { kOff, kDirectOnly, kAlways };
  IoUring io_uring = IoUring::kDirectOnly;
};

class RawFileBackend : public BlockBackend {
 public:
  static constexpr uint32_t kSectorSize = 512;
  static constexpr uint32_t kDirectAlignment = 4096;
  static constexpr size_t kBounceSize = 1 << 20;
  // Transfers one CompleteQueued runs at most (the device's queue size).
  static constexpr unsigned kBatchEntries = 256;

  // Opens and locks the image. Errors name the path: NotFound,
  // PermissionDenied, InvalidArgument (not a regular file or block device,
  // O_DIRECT unsupported), FailedPrecondition (locked by another process).
  static absl::StatusOr<std::unique_ptr<RawFileBackend>> Open(const RawFileOptions& options);

  uint64_t size_bytes() const override { return size_bytes_; }
  uint32_t block_size() const override { return block_size_; }
  bool read_only() const override { return read_only_; }
  // Bytes at the end of the file beyond the last whole block.
  uint64_t ignored_tail_bytes() const { return ignored_tail_bytes_; }
  const std::string& path() const { return path_; }

  absl::Status ReadV(absl::Span<const iovec> iov, uint64_t offset) override;
  absl::Status WriteV(absl::Span<const iovec> iov, uint64_t offset) override;
  absl::Status Flush() override;
  absl::Status Discard(uint64_t offset, uint64_t len) override;
  absl::Status WriteZeroes(uint64_t offset, uint64_t len, bool may_unmap) override;
  bool QueueV(bool write, absl::Span<const iovec> iov, uint64_t offset, uint64_t tag) override;
  void CompleteQueued(
      absl::FunctionRef<void(uint64_t tag, const absl::Status& status)> done) override;

  // Whether QueueV may take transfers: io_uring is wanted for this file and
  // has not failed.
  bool batching() const { return use_io_uring_; }

 private:
  struct FreeDeleter {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  using AlignedBuffer = std::unique_ptr<uint8_t[], FreeDeleter>;

  RawFileBackend() = default;
  // Allocates kBounceSize zeroed, kDirectAlignment-aligned bytes once.
  static bool EnsureBuffer(AlignedBuffer& buffer);
  // preadv/pwritev until every byte moved.
  absl::Status TransferAll(bool write, absl::Span<const iovec> iov, uint64_t offset);
  // The same through bounce_ in aligned chunks (O_DIRECT, unaligned buffers).
  absl::Status TransferBounced(bool write, absl::Span<const iovec> iov, uint64_t offset);
  bool NeedsBounce(absl::Span<const iovec> iov) const;
  // fallocate(mode); false with OK status when the file system does not
  // support the mode.
  absl::StatusOr<bool> TryFallocate(int mode, uint64_t offset, uint64_t len);
  absl::Status WriteZeroBuffers(uint64_t offset, uint64_t len);
  // Runs the queued transfers; their statuses wait in completed_.
  void RunQueued();

  struct Completed {
    uint64_t tag;
    absl::Status status;
  };

  std::string path_;
  UniqueFd fd_;
  bool read_only_ = false;
  bool direct_ = false;
  uint32_t block_size_ = kSectorSize;
  uint64_t size_bytes_ = 0;
  uint64_t ignored_tail_bytes_ = 0;
  AlignedBuffer bounce_;  // kBounceSize bytes, kDirectAlignment-aligned, lazily
  AlignedBuffer zeros_;   // kBounceSize zero bytes, lazily
  bool use_io_uring_ = false;
  std::unique_ptr<IoUringBatch> batch_;  // made on the first QueueV
  std::vector<Completed> completed_;     // run, not yet reported
};

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_BLOCK_RAW_FILE_BACKEND_H_
