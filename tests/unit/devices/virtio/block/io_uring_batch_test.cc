#include "devices/virtio/block/io_uring_batch.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/devices/virtio/block/virtio_block_test_util.h"

namespace vmm::testing {
namespace {

TEST(IoUringBatchTest, RunCompletesEveryQueuedOpWithItsOwnResult) {
  auto batch = IoUringBatch::Create(8);
  if (!batch.ok()) GTEST_SKIP() << "io_uring unavailable here: " << batch.status();
  TempImage image = TempImage::WithPattern(8192);
  int fd = open(image.path().c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  std::vector<uint8_t> out(100, 0x5a), in(4096), past(512);
  iovec w{out.data(), out.size()}, r{in.data(), in.size()}, p{past.data(), past.size()};
  (*batch)->Queue(fd, /*write=*/true, absl::MakeConstSpan(&w, 1), 10, 1);
  (*batch)->Queue(fd, /*write=*/false, absl::MakeConstSpan(&r, 1), 4096, 2);
  (*batch)->Queue(fd, /*write=*/false, absl::MakeConstSpan(&p, 1), 8192, 3);  // at EOF
  (*batch)->Queue(-1, /*write=*/false, absl::MakeConstSpan(&r, 1), 0, 4);     // bad fd
  ASSERT_TRUE((*batch)->Run().ok());
  const auto& ops = (*batch)->ops();
  ASSERT_EQ(ops.size(), 4u);
  EXPECT_EQ(ops[0].tag, 1u);
  EXPECT_EQ(ops[0].result, 100);
  EXPECT_EQ(ops[1].result, 4096);
  EXPECT_EQ(in[0], Pattern(4096));
  EXPECT_EQ(ops[2].result, 0);
  EXPECT_EQ(ops[3].result, -EBADF);
  EXPECT_EQ(image.Contents()[10], 0x5a);
  (*batch)->Clear();
  EXPECT_TRUE((*batch)->empty());
  close(fd);
}

TEST(IoUringBatchTest, IsFullAtItsEntryCount) {
  auto batch = IoUringBatch::Create(2);
  if (!batch.ok()) GTEST_SKIP() << "io_uring unavailable here: " << batch.status();
  uint8_t b[1];
  iovec v{b, 1};
  EXPECT_FALSE((*batch)->full());
  (*batch)->Queue(0, false, absl::MakeConstSpan(&v, 1), 0, 0);
  (*batch)->Queue(0, false, absl::MakeConstSpan(&v, 1), 0, 1);
  EXPECT_TRUE((*batch)->full());
}

}  // namespace
}  // namespace vmm::testing
