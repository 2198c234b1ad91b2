// An in-memory BlockBackend for virtio-blk tests: the disk is a byte vector,
// every call is logged in order ("read 1024+512", "write 0+4096", "flush",
// "discard 0+4096", "zeroes 0+4096 unmap"), a hook runs inside Flush (to
// observe what the guest can see at that moment), and failures can be
// injected. With set_batch_capacity(n > 0) it also batches like
// RawFileBackend: QueueV logs "queue read 0+512" and holds up to n
// transfers; CompleteQueued ("complete N") and Flush run them first.
#ifndef VMM_TESTS_FAKES_FAKE_BLOCK_BACKEND_H_
#define VMM_TESTS_FAKES_FAKE_BLOCK_BACKEND_H_

#include <sys/uio.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "devices/virtio/block/block_backend.h"

namespace vmm::testing {

class FakeBlockBackend : public BlockBackend {
 public:
  explicit FakeBlockBackend(uint64_t size_bytes, bool read_only = false,
                            uint32_t block_size = 512)
      : disk_(size_bytes), read_only_(read_only), block_size_(block_size) {}

  uint64_t size_bytes() const override { return disk_.size(); }
  uint32_t block_size() const override { return block_size_; }
  bool read_only() const override { return read_only_; }

  absl::Status ReadV(absl::Span<const iovec> iov, uint64_t offset) override {
    uint64_t len = Total(iov);
    calls_.push_back(absl::StrCat("read ", offset, "+", len));
    if (!fail_.ok()) return fail_;
    if (offset + len > disk_.size()) return absl::OutOfRangeError("fake disk: read past end");
    for (const iovec& v : iov) {
      std::memcpy(v.iov_base, disk_.data() + offset, v.iov_len);
      offset += v.iov_len;
    }
    return absl::OkStatus();
  }
  absl::Status WriteV(absl::Span<const iovec> iov, uint64_t offset) override {
    uint64_t len = Total(iov);
    calls_.push_back(absl::StrCat("write ", offset, "+", len));
    if (!fail_.ok()) return fail_;
    if (offset + len > disk_.size()) return absl::OutOfRangeError("fake disk: write past end");
    for (const iovec& v : iov) {
      std::memcpy(disk_.data() + offset, v.iov_base, v.iov_len);
      offset += v.iov_len;
    }
    return absl::OkStatus();
  }
  bool QueueV(bool write, absl::Span<const iovec> iov, uint64_t offset, uint64_t tag) override {
    if (queued_.size() >= batch_capacity_) return false;
    calls_.push_back(absl::StrCat("queue ", write ? "write " : "read ", offset, "+", Total(iov)));
    queued_.push_back({write, {iov.begin(), iov.end()}, offset, tag});
    return true;
  }
  void CompleteQueued(
      absl::FunctionRef<void(uint64_t tag, const absl::Status& status)> done) override {
    RunQueued();
    for (auto& [tag, status] : completed_) done(tag, status);
    completed_.clear();
  }
  absl::Status Flush() override {
    RunQueued();
    calls_.push_back("flush");
    if (on_flush) on_flush();
    return fail_;
  }
  absl::Status Discard(uint64_t offset, uint64_t len) override {
    calls_.push_back(absl::StrCat("discard ", offset, "+", len));
    if (!fail_.ok()) return fail_;
    std::memset(disk_.data() + offset, 0, len);
    return absl::OkStatus();
  }
  absl::Status WriteZeroes(uint64_t offset, uint64_t len, bool may_unmap) override {
    calls_.push_back(absl::StrCat("zeroes ", offset, "+", len, may_unmap ? " unmap" : ""));
    if (!fail_.ok()) return fail_;
    std::memset(disk_.data() + offset, 0, len);
    return absl::OkStatus();
  }

  // The disk's bytes (tests fill and inspect them directly).
  std::vector<uint8_t>& disk() { return disk_; }
  // Every call so far, in order.
  const std::vector<std::string>& calls() const { return calls_; }
  // Every later call fails with `status` (OK to stop failing).
  void FailWith(absl::Status status) { fail_ = std::move(status); }
  // Runs inside Flush, before it returns.
  std::function<void()> on_flush;
  // How many transfers QueueV holds (0, the default: no batching).
  void set_batch_capacity(size_t n) { batch_capacity_ = n; }

 private:
  struct Queued {
    bool write;
    std::vector<iovec> iov;
    uint64_t offset;
    uint64_t tag;
  };
  void RunQueued() {
    if (queued_.empty()) return;
    calls_.push_back(absl::StrCat("complete ", queued_.size()));
    for (const Queued& q : queued_) {
      // Logged again as the plain call it becomes.
      completed_.emplace_back(q.tag, q.write ? WriteV(q.iov, q.offset) : ReadV(q.iov, q.offset));
    }
    queued_.clear();
  }

  static uint64_t Total(absl::Span<const iovec> iov) {
    uint64_t total = 0;
    for (const iovec& v : iov) total += v.iov_len;
    return total;
  }

  std::vector<uint8_t> disk_;
  bool read_only_;
  uint32_t block_size_;
  std::vector<std::string> calls_;
  absl::Status fail_;
  size_t batch_capacity_ = 0;
  std::vector<Queued> queued_;
  std::vector<std::pair<uint64_t, absl::Status>> completed_;
};

}  // namespace vmm::testing

#endif  // VMM_TESTS_FAKES_FAKE_BLOCK_BACKEND_H_
