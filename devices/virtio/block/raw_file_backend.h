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
#ifndef VMM_DEVICES_VIRTIO_BLOCK_RAW_FILE_BACKEND_H_
#define VMM_DEVICES_VIRTIO_BLOCK_RAW_FILE_BACKEND_H_

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "devices/virtio/block/block_backend.h"

namespace vmm {

struct RawFileOptions {
  std::string path;
  bool read_only = false;
  bool direct = false;  // O_DIRECT: bypass the host page cache
};

class RawFileBackend : public BlockBackend {
 public:
  static constexpr uint32_t kSectorSize = 512;
  static constexpr uint32_t kDirectAlignment = 4096;
  static constexpr size_t kBounceSize = 1 << 20;

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

  std::string path_;
  UniqueFd fd_;
  bool read_only_ = false;
  bool direct_ = false;
  uint32_t block_size_ = kSectorSize;
  uint64_t size_bytes_ = 0;
  uint64_t ignored_tail_bytes_ = 0;
  AlignedBuffer bounce_;  // kBounceSize bytes, kDirectAlignment-aligned, lazily
  AlignedBuffer zeros_;   // kBounceSize zero bytes, lazily
};

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_BLOCK_RAW_FILE_BACKEND_H_
