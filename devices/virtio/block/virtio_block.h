// virtio-blk (virtio 1.x, 5.2): one request queue over a BlockBackend.
//
// Requests: IN, OUT, FLUSH, GET_ID, DISCARD, WRITE_ZEROES. Data moves with
// preadv/pwritev straight between the image and guest memory (iovecs built
// from the chain). Every guest-controlled field is read once and validated
// before the backend is touched: a request that fails validation is answered
// IOERR/UNSUPP with nothing read or written.
//
// Offered features: VERSION_1, RING_EVENT_IDX, INDIRECT_DESC, SIZE_MAX,
// SEG_MAX, BLK_SIZE, and RO on a read-only disk or FLUSH, DISCARD,
// WRITE_ZEROES on a writable one. A writable disk whose driver did not
// negotiate FLUSH is write-through (fdatasync before each status), as the
// spec asks.
//
// Batching: the reads and writes of one ProcessQueue pass are queued on the
// backend (BlockBackend::QueueV) and completed together before the pass
// ends (one io_uring submission with RawFileBackend); requests the backend
// does not queue run synchronously as before. Writes are batched only when
// FLUSH was negotiated (write-through needs each write's status to follow
// its fdatasync). FLUSH stays exact: the backend completes every queued
// write before fdatasync.
//
// Polling: after a pass the device watches the ring a while with kicks
// still off (QueuePoller: adaptive, up to VirtioBlockOptions::poll_us), so a
// guest that submits its next request soon neither exits to kick nor waits
// for the device thread to wake.
//
// Threads: ProcessQueue (event loop) and Activate/Reset (vCPU threads via the
// transport) are serialised by the device mutex; calls into the
// VirtioDeviceContext happen after it is released, so a transport may hold
// its own lock while calling Activate/Reset.
#ifndef VMM_DEVICES_VIRTIO_BLOCK_VIRTIO_BLOCK_H_
#define VMM_DEVICES_VIRTIO_BLOCK_VIRTIO_BLOCK_H_

#include <linux/virtio_blk.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "devices/virtio/block/block_backend.h"
#include "devices/virtio/block/block_config.h"
#include "devices/virtio/queue_pass.h"
#include "devices/virtio/queue_poller.h"
#include "devices/virtio/virtio_device.h"

namespace vmm {


struct VirtioBlockStats {
  uint64_t requests = 0;
  uint64_t io_errors = 0;      // answered VIRTIO_BLK_S_IOERR
  uint64_t unsupported = 0;    // answered VIRTIO_BLK_S_UNSUPP
  uint64_t no_status = 0;      // chains with no writable byte: returned with len 0
  uint64_t poll_hits = 0;      // passes started by the poll (no kick needed)
  uint64_t poll_misses = 0;    // polls that timed out (kicks turned back on)
};

class VirtioBlock : public VirtioDevice {
 public:
  static constexpr uint32_t kDeviceType = 2;  // VIRTIO_ID_BLOCK
  static constexpr uint16_t kQueueSize = 256;
  static constexpr uint32_t kSectorSize = 512;
  static constexpr uint32_t kSizeMax = 1u << 20;  // per segment; Linux caps its segments
  static constexpr uint32_t kSegMax = kQueueSize - 2;  // header and status take two
  // Per-segment limits bound the work one request does on the event loop
  // (1 GiB; zeroing may fall back to writing zeros).
  static constexpr uint32_t kMaxDiscardSectors = 1u << 21;
  static constexpr uint32_t kMaxWriteZeroesSectors = 1u << 21;
  static constexpr uint32_t kMaxDiscardSegments = 1;
  static constexpr uint32_t kMaxWriteZeroesSegments = 1;
  // A hint for the guest (4 KiB, the usual file system block); any sector
  // range is accepted.
  static constexpr uint32_t kDiscardSectorAlignment = 8;

  // Opens (and locks) the image as a RawFileBackend. Errors name the path.
  // If the image size is not a whole number of blocks, the tail is ignored
  // and `warning` (if given) gets a one-line explanation; else it is cleared.
  static absl::StatusOr<std::unique_ptr<VirtioBlock>> Open(const VirtioBlockOptions& options,
                                                           std::string* warning = nullptr);

  // `serial` longer than VIRTIO_BLK_ID_BYTES is truncated (Open rejects it).
  // `poll_max`: the polling window's maximum (zero: never poll).
  VirtioBlock(std::unique_ptr<BlockBackend> backend, std::string serial,
              absl::Duration poll_max = QueuePoller::DefaultMax());

  uint32_t device_type() const override { return kDeviceType; }
  uint64_t device_features() const override { return features_; }
  std::vector<uint16_t> queue_max_sizes() const override { return {kQueueSize}; }
  void ReadConfig(uint64_t offset, absl::Span<uint8_t> data) override;
  void WriteConfig(uint64_t offset, absl::Span<const uint8_t> data) override;
  absl::Status Activate(VirtioActivation activation) override;
  void ProcessQueue(uint16_t queue) override;
  void Reset() override;
  // Snapshots: the queues' positions and the disk's size (a restore onto another size is refused).
  absl::StatusOr<VirtioDeviceSnapshot> Snapshot() const override;
  absl::Status RestoreSnapshot(absl::string_view state) override;

  VirtioBlockStats stats() const;
  std::vector<DeviceCounter> counters() const override;
  uint64_t capacity_sectors() const { return config_.capacity; }

 private:
  using Active = VirtioActiveQueues;
  struct Result {
    uint8_t status = VIRTIO_BLK_S_OK;
    uint32_t data_written = 0;  // bytes written before the status byte
    bool queued;  // handed to the backend's batch, status later (omitted: false)
  };
  // A request queued on the backend, waiting for CompleteQueued. Its index
  // in batch_ is the backend tag.
  struct Deferred {
    uint64_t status_at = 0;  // offset of the status byte in the writable bytes
    uint32_t used = 0;       // used length (status byte included) if it succeeds
  };
  struct Queued {
    DescriptorChain chain;
    Deferred deferred;
  };
  static constexpr Result kOk{VIRTIO_BLK_S_OK, 0};
  static constexpr Result kIoError{VIRTIO_BLK_S_IOERR, 0};
  static constexpr Result kUnsupported{VIRTIO_BLK_S_UNSUPP, 0};

  // Drains `queue`; when it runs dry, kicks go back on only if `arm`.
  void ProcessLocked(uint16_t queue, QueuePass& pass, bool arm) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether `queue` has a chain waiting (for the poll).
  bool HasAvailable(uint16_t queue) ABSL_LOCKS_EXCLUDED(mu_);
  // Executes one request; returns the used length, or nullopt when it was
  // queued on the backend (then *deferred says where its status goes, and
  // the caller appends the chain to batch_).
  std::optional<uint32_t> HandleRequest(const DescriptorChain& chain, const GuestMemory& memory,
                                        uint64_t features, Deferred* deferred)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Completes everything in batch_: status bytes, used entries on `queue`
  // (a driver that broke the ring fails the pass).
  void CompleteBatch(uint16_t queue, QueuePass& pass) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Result Execute(const virtio_blk_outhdr& header, const DescriptorChain& chain,
                 uint64_t data_len, const GuestMemory& memory, uint64_t features)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Result ReadData(uint64_t sector, const DescriptorChain& chain, uint64_t data_len,
                  const GuestMemory& memory) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // QueueV on the backend with the next batch_ tag.
  bool TryQueue(bool write, absl::Span<const iovec> iov, uint64_t offset)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Result WriteData(uint64_t sector, const DescriptorChain& chain, const GuestMemory& memory,
                   uint64_t features) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Result GetId(const DescriptorChain& chain, uint64_t data_len, const GuestMemory& memory);
  Result DiscardOrWriteZeroes(bool write_zeroes, const DescriptorChain& chain,
                              const GuestMemory& memory, uint64_t features)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After a successful write when the driver did not negotiate FLUSH.
  uint8_t WriteThrough(uint64_t features) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Byte offset of [sector, sector + len bytes) if it lies inside the disk
  // and is block-aligned; nullopt otherwise (overflow included).
  std::optional<uint64_t> CheckedRange(uint64_t sector, uint64_t len) const;

  const std::unique_ptr<BlockBackend> backend_;
  const std::string serial_;
  const uint64_t features_;
  const virtio_blk_config config_;

  mutable absl::Mutex mu_;
  std::optional<Active> active_ ABSL_GUARDED_BY(mu_);
  VirtioBlockStats stats_ ABSL_GUARDED_BY(mu_);
  QueuePoller poller_ ABSL_GUARDED_BY(mu_);
  // Requests queued during the current ProcessQueue pass; empty between
  // passes (every pass completes what it queued).
  std::vector<Queued> batch_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_BLOCK_VIRTIO_BLOCK_H_
