#include "devices/virtio/block/virtio_block.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/state_file.h"
#include "base/status_macros.h"
#include "devices/virtio/block/raw_file_backend.h"

namespace vmm {
namespace {

// virtio 1.x fields are little-endian; so is every host this VMM runs on,
// which lets config and request structs be copied as they are.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__);
static_assert(sizeof(virtio_blk_outhdr) == 16);
static_assert(sizeof(virtio_blk_discard_write_zeroes) == 16);

constexpr uint64_t Bit(unsigned n) { return 1ull << n; }

uint64_t OfferedFeatures(bool read_only) {
  uint64_t f = kVirtioFVersion1 | kVirtioFEventIdx | kVirtioFIndirectDesc |
               Bit(VIRTIO_BLK_F_SIZE_MAX) | Bit(VIRTIO_BLK_F_SEG_MAX) | Bit(VIRTIO_BLK_F_BLK_SIZE);
  if (read_only) return f | Bit(VIRTIO_BLK_F_RO);
  return f | Bit(VIRTIO_BLK_F_FLUSH) | Bit(VIRTIO_BLK_F_DISCARD) | Bit(VIRTIO_BLK_F_WRITE_ZEROES);
}

virtio_blk_config MakeConfig(const BlockBackend& backend) {
  virtio_blk_config c;
  std::memset(&c, 0, sizeof(c));
  c.capacity = backend.size_bytes() / VirtioBlock::kSectorSize;
  c.size_max = VirtioBlock::kSizeMax;
  c.seg_max = VirtioBlock::kSegMax;
  c.blk_size = backend.block_size();
  if (!backend.read_only()) {
    c.max_discard_sectors = VirtioBlock::kMaxDiscardSectors;
    c.max_discard_seg = VirtioBlock::kMaxDiscardSegments;
    c.discard_sector_alignment = VirtioBlock::kDiscardSectorAlignment;
    c.max_write_zeroes_sectors = VirtioBlock::kMaxWriteZeroesSectors;
    c.max_write_zeroes_seg = VirtioBlock::kMaxWriteZeroesSegments;
    c.write_zeroes_may_unmap = 1;
  }
  return c;
}

}  // namespace

absl::StatusOr<std::unique_ptr<VirtioBlock>> VirtioBlock::Open(const VirtioBlockOptions& options,
                                                               std::string* warning) {
  if (warning != nullptr) warning->clear();
  if (options.serial.size() > VIRTIO_BLK_ID_BYTES) {
    return absl::InvalidArgumentError(absl::StrCat("disk image ", options.path, ": serial \"",
                                                   options.serial, "\" is longer than ",
                                                   VIRTIO_BLK_ID_BYTES, " bytes"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<RawFileBackend> backend,
                   RawFileBackend::Open(RawFileOptions{.path = options.path,
                                                       .read_only = options.read_only,
                                                       .direct = options.direct}));
  if (warning != nullptr && backend->ignored_tail_bytes() != 0) {
    *warning = absl::StrCat("disk image ", options.path, ": size is not a multiple of ",
                            backend->block_size(), " bytes; the last ",
                            backend->ignored_tail_bytes(), " bytes are not visible to the guest");
  }
  const absl::Duration poll_max =
      options.poll_us ? absl::Microseconds(*options.poll_us) : QueuePoller::DefaultMax();
  return std::make_unique<VirtioBlock>(std::move(backend), options.serial, poll_max);
}

VirtioBlock::VirtioBlock(std::unique_ptr<BlockBackend> backend, std::string serial,
                         absl::Duration poll_max)
    : backend_(std::move(backend)),
      serial_(serial.substr(0, VIRTIO_BLK_ID_BYTES)),
      features_(OfferedFeatures(backend_->read_only())),
      config_(MakeConfig(*backend_)),
      poller_(poll_max) {}

void VirtioBlock::ReadConfig(uint64_t offset, absl::Span<uint8_t> data) {
  ReadConfigBytes(config_, offset, data);
}

// Every field is read-only (CONFIG_WCE is not offered).
void VirtioBlock::WriteConfig(uint64_t /*offset*/, absl::Span<const uint8_t> /*data*/) {}

absl::Status VirtioBlock::Activate(VirtioActivation activation) {
  Active a;
  RETURN_IF_ERROR(TakeActivation("virtio-blk", std::move(activation), a));
  absl::MutexLock lock(&mu_);
  active_ = std::move(a);
  return absl::OkStatus();
}

absl::StatusOr<VirtioDeviceSnapshot> VirtioBlock::Snapshot() const {
  absl::MutexLock lock(&mu_);
  if (!active_) return absl::FailedPreconditionError("virtio-blk: not active");
  // Every request completes within its pass (batch_ is empty between
  // passes): nothing is in flight.
  StateWriter out;
  out.Put<uint64_t>(config_.capacity);
  return VirtioDeviceSnapshot{SnapshotPositions(*active_), out.Take()};
}

absl::Status VirtioBlock::RestoreSnapshot(absl::string_view state) {
  StateReader in("virtio-blk", state);
  uint64_t capacity = 0;
  RETURN_IF_ERROR(in.Get("capacity", &capacity));
  RETURN_IF_ERROR(in.Finish());
  if (capacity != config_.capacity) {
    return absl::FailedPreconditionError(
        absl::StrCat("the disk has ", config_.capacity, " sectors, the snapshot's had ", capacity));
  }
  return absl::OkStatus();
}

void VirtioBlock::Reset() {
  absl::MutexLock lock(&mu_);
  active_.reset();
}

VirtioBlockStats VirtioBlock::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

std::vector<DeviceCounter> VirtioBlock::counters() const {
  const VirtioBlockStats s = stats();
  return {
      {"requests", s.requests},
      {"io_errors", s.io_errors},
      {"unsupported", s.unsupported},
      {"no_status", s.no_status},
      {"poll_hits", s.poll_hits},
      {"poll_misses", s.poll_misses},
  };
}

void VirtioBlock::ProcessQueue(uint16_t queue) {
  // Each round drains the ring with kicks off. While the poll window is
  // open the ring is then watched with kicks still off (the interrupt for
  // what was done goes first); the round that finds it dry at the end of
  // the window, or with no window, turns kicks back on.
  bool arm = false;
  bool missed = false;
  for (bool first = true;; first = false) {
    QueuePass pass("virtio-blk");
    absl::Duration window;
    {
      absl::MutexLock lock(&mu_);
      if (first) poller_.PassStarted(absl::Now());
      if (!active_ || !active_->QueueUsable(queue)) return;
      window = poller_.window();
      if (window == absl::ZeroDuration()) arm = true;
      pass.Begin(*active_);
      ProcessLocked(queue, pass, arm);
      pass.Settle();
      // The ring ran dry when this round ended, or, after a miss, when the
      // round before the poll did (the poll's time counts as waiting).
      if (!missed) poller_.PassEnded(absl::Now());
      if (arm) poller_.Armed();
    }
    pass.Deliver();
    // Failed, or out of budget (the loop runs the queue again): done.
    if (arm || pass.failed() || pass.budget_spent(queue)) return;
    const bool hit = QueuePoller::Spin(window, [&] { return HasAvailable(queue); });
    absl::MutexLock lock(&mu_);
    ++(hit ? stats_.poll_hits : stats_.poll_misses);
    if (!hit) arm = missed = true;
  }
}

bool VirtioBlock::HasAvailable(uint16_t queue) {
  absl::MutexLock lock(&mu_);
  if (!active_ || !active_->QueueUsable(queue)) return true;  // the next round returns
  absl::StatusOr<bool> has = active_->queues[queue].HasAvailable(*active_->memory);
  return !has.ok() || *has;  // a broken ring: the next round's pop reports it
}

void VirtioBlock::ProcessLocked(uint16_t index, QueuePass& pass, bool arm) {
  const GuestMemory& memory = *active_->memory;
  // Kicks are off while draining. When the ring runs dry, what this pass
  // queued on the backend runs first: its completions are the used entries
  // the driver is waiting for (and may be answered with more requests).
  // Only then are kicks turned back on.
  if (!pass.SetNotificationsEnabled(index, false)) return;
  for (;;) {
    std::optional<DescriptorChain> chain = pass.PopKicksOff(index, arm && batch_.empty());
    if (!chain) {
      if (pass.failed() || batch_.empty()) break;
      CompleteBatch(index, pass);
      continue;
    }
    Deferred deferred;
    std::optional<uint32_t> used = HandleRequest(*chain, memory, active_->features, &deferred);
    if (!used) {
      batch_.push_back(Queued{std::move(*chain), deferred});
      continue;
    }
    if (!pass.AddUsed(index, std::move(*chain), *used)) break;
  }
  if (!batch_.empty()) {
    // Left by a failure above: the I/O still has to finish before the pass
    // ends; the broken queue gets no used entries.
    backend_->CompleteQueued([](uint64_t, const absl::Status&) {});
    batch_.clear();
  }
}

void VirtioBlock::CompleteBatch(uint16_t index, QueuePass& pass) {
  const GuestMemory& memory = *active_->memory;
  backend_->CompleteQueued([&](uint64_t tag, const absl::Status& status) {
    if (tag >= batch_.size()) return;  // not a tag we gave: cannot happen
    Queued& q = batch_[tag];
    const uint8_t byte = status.ok() ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
    if (!status.ok()) {
      ++stats_.io_errors;
      q.deferred.used = 1;  // the status byte only
    }
    q.chain.WriteTo(memory, q.deferred.status_at, absl::MakeConstSpan(&byte, 1));
  });
  for (Queued& q : batch_) {
    if (!pass.AddUsed(index, std::move(q.chain), q.deferred.used)) break;
  }
  batch_.clear();
}

std::optional<uint32_t> VirtioBlock::HandleRequest(const DescriptorChain& chain,
                                                   const GuestMemory& memory, uint64_t features,
                                                   Deferred* deferred) {
  ++stats_.requests;
  const uint64_t writable = chain.writable_bytes();
  if (writable == 0) {
    // Nowhere to put a status: the request cannot be answered, only returned.
    ++stats_.no_status;
    return 0;
  }
  const uint64_t data_len = writable - 1;  // writable bytes before the status byte
  Result result = kIoError;
  virtio_blk_outhdr header;  // read once: the guest may change it under us
  if (chain.ReadFrom(memory, 0, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&header),
                                                    sizeof(header))) == sizeof(header)) {
    result = Execute(header, chain, data_len, memory, features);
  }
  if (result.queued) {
    deferred->status_at = data_len;
    deferred->used = result.data_written + 1;
    return std::nullopt;
  }
  if (result.status == VIRTIO_BLK_S_IOERR) ++stats_.io_errors;
  if (result.status == VIRTIO_BLK_S_UNSUPP) ++stats_.unsupported;
  chain.WriteTo(memory, data_len, absl::MakeConstSpan(&result.status, 1));
  return result.data_written + 1;
}

VirtioBlock::Result VirtioBlock::Execute(const virtio_blk_outhdr& header,
                                         const DescriptorChain& chain, uint64_t data_len,
                                         const GuestMemory& memory, uint64_t features) {
  switch (header.type) {
    case VIRTIO_BLK_T_IN:
      return ReadData(header.sector, chain, data_len, memory);
    case VIRTIO_BLK_T_OUT:
      return WriteData(header.sector, chain, memory, features);
    case VIRTIO_BLK_T_FLUSH:
      if (!(features & Bit(VIRTIO_BLK_F_FLUSH))) return kUnsupported;
      return backend_->Flush().ok() ? kOk : kIoError;
    case VIRTIO_BLK_T_GET_ID:
      return GetId(chain, data_len, memory);
    case VIRTIO_BLK_T_DISCARD:
      return DiscardOrWriteZeroes(/*write_zeroes=*/false, chain, memory, features);
    case VIRTIO_BLK_T_WRITE_ZEROES:
      return DiscardOrWriteZeroes(/*write_zeroes=*/true, chain, memory, features);
    default:
      return kUnsupported;
  }
}

std::optional<uint64_t> VirtioBlock::CheckedRange(uint64_t sector, uint64_t len) const {
  const uint64_t size = backend_->size_bytes();
  if (sector > size / kSectorSize) return std::nullopt;  // also keeps sector * 512 from wrapping
  const uint64_t offset = sector * kSectorSize;
  if (len > size - offset) return std::nullopt;
  const uint32_t block = backend_->block_size();
  if (offset % block != 0 || len % block != 0) return std::nullopt;
  return offset;
}

VirtioBlock::Result VirtioBlock::ReadData(uint64_t sector, const DescriptorChain& chain,
                                          uint64_t data_len, const GuestMemory& memory) {
  // The used length is 32 bits; no real driver comes close (seg_max * size_max).
  if (data_len >= UINT32_MAX) return kIoError;
  std::optional<uint64_t> offset = CheckedRange(sector, data_len);
  if (!offset) return kIoError;
  absl::StatusOr<std::vector<iovec>> iov = chain.WritableIovecs(memory, 0, data_len);
  if (!iov.ok()) return kIoError;
  const Result ok{VIRTIO_BLK_S_OK, static_cast<uint32_t>(data_len)};
  if (TryQueue(/*write=*/false, *iov, *offset)) return {ok.status, ok.data_written, true};
  if (!backend_->ReadV(*iov, *offset).ok()) return kIoError;
  return ok;
}

VirtioBlock::Result VirtioBlock::WriteData(uint64_t sector, const DescriptorChain& chain,
                                           const GuestMemory& memory, uint64_t features) {
  // The spec: a write to a read-only device fails with IOERR, nothing written.
  if (backend_->read_only()) return kIoError;
  const uint64_t data_len = chain.readable_bytes() - sizeof(virtio_blk_outhdr);
  std::optional<uint64_t> offset = CheckedRange(sector, data_len);
  if (!offset) return kIoError;
  absl::StatusOr<std::vector<iovec>> iov =
      chain.ReadableIovecs(memory, sizeof(virtio_blk_outhdr), data_len);
  if (!iov.ok()) return kIoError;
  // Write-through (no FLUSH negotiated) needs the fdatasync before the
  // status, so only a driver that flushes gets its writes batched.
  if ((features & Bit(VIRTIO_BLK_F_FLUSH)) && TryQueue(/*write=*/true, *iov, *offset)) {
    return {VIRTIO_BLK_S_OK, 0, true};
  }
  if (!backend_->WriteV(*iov, *offset).ok()) return kIoError;
  return {WriteThrough(features), 0};
}

bool VirtioBlock::TryQueue(bool write, absl::Span<const iovec> iov, uint64_t offset) {
  // A zero-length transfer needs no I/O (and io_uring would not take it).
  if (iov.empty()) return false;
  return backend_->QueueV(write, iov, offset, batch_.size());
}

VirtioBlock::Result VirtioBlock::GetId(const DescriptorChain& chain, uint64_t data_len,
                                       const GuestMemory& memory) {
  uint8_t id[VIRTIO_BLK_ID_BYTES] = {};
  std::memcpy(id, serial_.data(), serial_.size());
  // Never past the buffer: a short buffer gets a prefix.
  size_t len = static_cast<size_t>(std::min<uint64_t>(data_len, sizeof(id)));
  size_t written = chain.WriteTo(memory, 0, absl::MakeConstSpan(id, len));
  return {VIRTIO_BLK_S_OK, static_cast<uint32_t>(written)};
}

VirtioBlock::Result VirtioBlock::DiscardOrWriteZeroes(bool write_zeroes,
                                                      const DescriptorChain& chain,
                                                      const GuestMemory& memory,
                                                      uint64_t features) {
  const uint64_t feature = Bit(write_zeroes ? VIRTIO_BLK_F_WRITE_ZEROES : VIRTIO_BLK_F_DISCARD);
  if (!(features & feature)) return kUnsupported;
  if (backend_->read_only()) return kIoError;
  const uint32_t max_segments = write_zeroes ? kMaxWriteZeroesSegments : kMaxDiscardSegments;
  const uint32_t max_sectors = write_zeroes ? kMaxWriteZeroesSectors : kMaxDiscardSectors;

  const uint64_t bytes = chain.readable_bytes() - sizeof(virtio_blk_outhdr);
  constexpr uint64_t kSegmentSize = sizeof(virtio_blk_discard_write_zeroes);
  if (bytes == 0 || bytes % kSegmentSize != 0) return kIoError;
  // One segment is all we offer (as QEMU); more is a request we do not support.
  if (bytes / kSegmentSize > max_segments) return kUnsupported;
  const size_t count = static_cast<size_t>(bytes / kSegmentSize);

  struct Range {
    uint64_t offset;
    uint64_t len;
    bool unmap;
  };
  Range ranges[std::max(kMaxDiscardSegments, kMaxWriteZeroesSegments)];
  // Validate every segment before touching the image.
  for (size_t i = 0; i < count; ++i) {
    virtio_blk_discard_write_zeroes seg;
    chain.ReadFrom(memory, sizeof(virtio_blk_outhdr) + i * kSegmentSize,
                   absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&seg), sizeof(seg)));
    const uint32_t allowed_flags = write_zeroes ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0;
    if ((seg.flags & ~allowed_flags) != 0) return kUnsupported;  // spec: MUST be UNSUPP
    if (seg.num_sectors > max_sectors) return kIoError;
    std::optional<uint64_t> offset = CheckedRange(seg.sector, uint64_t{seg.num_sectors} * kSectorSize);
    if (!offset) return kIoError;
    ranges[i] = {*offset, uint64_t{seg.num_sectors} * kSectorSize,
                 (seg.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) != 0};
  }
  for (size_t i = 0; i < count; ++i) {
    absl::Status s = write_zeroes ? backend_->WriteZeroes(ranges[i].offset, ranges[i].len, ranges[i].unmap)
                                  : backend_->Discard(ranges[i].offset, ranges[i].len);
    if (!s.ok()) return kIoError;
  }
  return {WriteThrough(features), 0};
}

uint8_t VirtioBlock::WriteThrough(uint64_t features) {
  if (features & Bit(VIRTIO_BLK_F_FLUSH)) return VIRTIO_BLK_S_OK;
  return backend_->Flush().ok() ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
}

}  // namespace vmm
