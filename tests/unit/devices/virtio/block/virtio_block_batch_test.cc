// virtio-blk batching: the reads and writes of one ProcessQueue pass are
// queued on the backend and completed together (BlockBackend::QueueV /
// CompleteQueued), through a batching FakeBlockBackend and through
// RawFileBackend's io_uring path on a real file.
#include <linux/virtio_blk.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "devices/virtio/block/raw_file_backend.h"
#include "devices/virtio/block/virtio_block.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/devices/virtio/block/virtio_block_test_util.h"

namespace vmm::testing {
namespace {

using ::testing::ElementsAre;

constexpr uint64_t Bit(unsigned n) { return 1ull << n; }

class VirtioBlockBatchTest : public VirtioBlockTest {
 protected:
  // Pops every used entry and matches it to its submission by head.
  std::vector<Reply> CollectAll(const std::vector<Submitted>& submitted) {
    std::vector<Reply> replies(submitted.size());
    for (const FakeVirtqueueDriver::UsedEntry& used : driver_->PopAllUsed()) {
      for (size_t i = 0; i < submitted.size(); ++i) {
        if (submitted[i].head == used.head) replies[i] = Collect(submitted[i], used);
      }
    }
    return replies;
  }
};

TEST_F(VirtioBlockBatchTest, ReadsAndWritesOfOnePassAreQueuedThenCompletedTogether) {
  StartFake();
  fake_->set_batch_capacity(8);
  std::vector<Submitted> s;
  s.push_back(Submit({.type = VIRTIO_BLK_T_IN, .sector = 1, .in = {512}}));
  s.push_back(Submit({.type = VIRTIO_BLK_T_OUT, .sector = 2, .out = {Bytes(512, 0x42)}}));
  s.push_back(Submit({.type = VIRTIO_BLK_T_IN, .sector = 3, .in = {1024}}));
  dev_->ProcessQueue(0);
  EXPECT_THAT(fake_->calls(), ElementsAre("queue read 512+512", "queue write 1024+512",
                                          "queue read 1536+1024", "complete 3", "read 512+512",
                                          "write 1024+512", "read 1536+1024"));
  std::vector<Reply> r = CollectAll(s);
  EXPECT_EQ(r[0].status, VIRTIO_BLK_S_OK);
  EXPECT_EQ(r[0].used_len, 513u);
  EXPECT_EQ(r[0].data[0], Pattern(512));
  EXPECT_EQ(r[1].status, VIRTIO_BLK_S_OK);
  EXPECT_EQ(r[1].used_len, 1u);
  EXPECT_EQ(fake_->disk()[1024], 0x42);
  EXPECT_EQ(r[2].status, VIRTIO_BLK_S_OK);
  EXPECT_EQ(r[2].used_len, 1025u);
  EXPECT_EQ(r[2].data[1023], Pattern(1536 + 1023));
  // One interrupt for the whole pass.
  EXPECT_EQ(ctx_.notify_count(0), 1u);
  EXPECT_EQ(dev_->stats().requests, 3u);
}

TEST_F(VirtioBlockBatchTest, FlushCoversTheWritesQueuedBeforeItInTheSamePass) {
  StartFake();
  fake_->set_batch_capacity(8);
  std::vector<Submitted> s;
  s.push_back(Submit({.type = VIRTIO_BLK_T_OUT, .sector = 0, .out = {Bytes(512, 0x11)}}));
  s.push_back(Submit({.type = VIRTIO_BLK_T_OUT, .sector = 5, .out = {Bytes(512, 0x22)}}));
  s.push_back(Submit({.type = VIRTIO_BLK_T_FLUSH}));
  std::vector<uint8_t> disk_at_flush;
  fake_->on_flush = [&] { disk_at_flush = fake_->disk(); };
  dev_->ProcessQueue(0);
  ASSERT_EQ(disk_at_flush.size(), kDiskSize);
  EXPECT_EQ(disk_at_flush[0], 0x11);
  EXPECT_EQ(disk_at_flush[5 * 512 + 511], 0x22);
  EXPECT_THAT(fake_->calls(), ElementsAre("queue write 0+512", "queue write 2560+512",
                                          "complete 2", "write 0+512", "write 2560+512", "flush"));
  for (const Reply& r : CollectAll(s)) EXPECT_EQ(r.status, VIRTIO_BLK_S_OK);
}

TEST_F(VirtioBlockBatchTest, AFailedQueuedTransferIsIoErrorWithOnlyTheStatusWritten) {
  StartFake();
  fake_->set_batch_capacity(8);
  std::vector<Submitted> s;
  s.push_back(Submit({.type = VIRTIO_BLK_T_IN, .sector = 1, .in = {512}}));
  s.push_back(Submit({.type = VIRTIO_BLK_T_IN, .sector = 2, .in = {512}}));
  fake_->FailWith(absl::InternalError("EIO"));
  dev_->ProcessQueue(0);
  for (const Reply& r : CollectAll(s)) {
    EXPECT_EQ(r.status, VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(r.used_len, 1u);
  }
  EXPECT_EQ(dev_->stats().io_errors, 2u);
}

TEST_F(VirtioBlockBatchTest, WithoutNegotiatedFlushWritesStaySynchronousAndWriteThrough) {
  auto backend = std::make_unique<FakeBlockBackend>(kDiskSize);
  fake_ = backend.get();
  fake_->set_batch_capacity(8);
  auto dev = std::make_unique<VirtioBlock>(std::move(backend), "");
  const uint64_t features = dev->device_features() & ~Bit(VIRTIO_BLK_F_FLUSH);
  Start(std::move(dev), features);
  EXPECT_EQ(Status({.type = VIRTIO_BLK_T_OUT, .sector = 0, .out = {Bytes(512, 1)}}),
            VIRTIO_BLK_S_OK);
  EXPECT_THAT(fake_->calls(), ElementsAre("write 0+512", "flush"));
}

TEST_F(VirtioBlockBatchTest, RequestsBeyondTheBatchCapacityRunSynchronously) {
  StartFake();
  fake_->set_batch_capacity(1);
  std::vector<Submitted> s;
  s.push_back(Submit({.type = VIRTIO_BLK_T_IN, .sector = 1, .in = {512}}));
  s.push_back(Submit({.type = VIRTIO_BLK_T_IN, .sector = 2, .in = {512}}));
  dev_->ProcessQueue(0);
  EXPECT_THAT(fake_->calls(),
              ElementsAre("queue read 512+512", "read 1024+512", "complete 1", "read 512+512"));
  std::vector<Reply> r = CollectAll(s);
  EXPECT_EQ(r[0].data[0], Pattern(512));
  EXPECT_EQ(r[1].data[0], Pattern(1024));
}

TEST_F(VirtioBlockBatchTest, RealImageThroughIoUringRoundTripsAWholePass) {
  TempImage image = TempImage::WithPattern(kDiskSize);
  auto backend = RawFileBackend::Open(
      {.path = image.path(), .io_uring = RawFileOptions::IoUring::kAlways});
  ASSERT_TRUE(backend.ok()) << backend.status();
  Start(std::make_unique<VirtioBlock>(std::move(*backend), ""));
  std::vector<Submitted> writes;
  for (uint64_t i = 0; i < 4; ++i) {
    writes.push_back(Submit({.type = VIRTIO_BLK_T_OUT, .sector = 8 * i,
                             .out = {Bytes(300, static_cast<uint8_t>(i + 1)), Bytes(212, 0x77)}}));
  }
  dev_->ProcessQueue(0);
  for (const Reply& r : CollectAll(writes)) EXPECT_EQ(r.status, VIRTIO_BLK_S_OK);
  std::vector<Submitted> reads;
  for (uint64_t i = 0; i < 4; ++i) {
    reads.push_back(Submit({.type = VIRTIO_BLK_T_IN, .sector = 8 * i, .in = {100, 924}}));
  }
  dev_->ProcessQueue(0);
  std::vector<Reply> r = CollectAll(reads);
  for (uint64_t i = 0; i < 4; ++i) {
    EXPECT_EQ(r[i].status, VIRTIO_BLK_S_OK);
    EXPECT_EQ(r[i].used_len, 1025u);
    EXPECT_EQ(r[i].data[0], i + 1);
    EXPECT_EQ(r[i].data[299], i + 1);
    EXPECT_EQ(r[i].data[300], 0x77);
    EXPECT_EQ(r[i].data[512], Pattern(8 * i * 512 + 512));  // untouched sector
  }
  std::vector<uint8_t> file = image.Contents();
  EXPECT_EQ(file[3 * 8 * 512 + 299], 4);
}

}  // namespace
}  // namespace vmm::testing
