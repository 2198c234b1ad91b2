// virtio-blk polling (QueuePoller): after a pass the device watches its ring
// with kicks off, so a request published meanwhile is served without a kick;
// the interrupt for the earlier work is not held back by the poll, and kicks
// are always on again when ProcessQueue returns.
#include <linux/virtio_blk.h>

#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "devices/virtio/block/virtio_block.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_block_backend.h"
#include "tests/unit/devices/virtio/block/virtio_block_test_util.h"

namespace vmm::testing {
namespace {

class VirtioBlockPollTest : public VirtioBlockTest {
 protected:
  void StartPolling(absl::Duration max) {
    auto backend = std::make_unique<FakeBlockBackend>(kDiskSize, false, 512);
    fake_ = backend.get();
    for (uint64_t i = 0; i < kDiskSize; ++i) fake_->disk()[i] = Pattern(i);
    Start(std::make_unique<VirtioBlock>(std::move(backend), "", max));
  }
  uint64_t Counter(const std::string& name) {
    for (const DeviceCounter& c : dev_->counters()) {
      if (c.name == name) return c.value;
    }
    ADD_FAILURE() << "no counter " << name;
    return 0;
  }
  // Kicks are on: with EVENT_IDX (negotiated here), the device asks for a
  // kick when the driver publishes its next request: avail_event is the
  // index that request will take.
  bool KicksOn() { return driver_->avail_event() == driver_->avail_idx(); }
};

TEST_F(VirtioBlockPollTest, ARequestPublishedDuringThePollIsServedWithoutAKick) {
  StartPolling(absl::Seconds(1));
  // Kicks that follow the ring running dry closely open the window, which
  // doubles from 4 µs each time: after 17 empty passes the next one polls
  // 262 ms, time enough for the guest thread below to be scheduled.
  for (int i = 0; i < 17; ++i) dev_->ProcessQueue(0);
  const uint64_t hits = Counter("poll_hits");
  EXPECT_GT(Counter("poll_misses"), 0u) << "the empty passes polled";

  Submitted first = Submit({.type = VIRTIO_BLK_T_IN, .sector = 1, .in = {512}});
  const size_t interrupts = ctx_.notify_count(0);
  Submitted second;
  bool published_in_time = false;
  // The guest: once the interrupt for `first` came (the poll does not hold
  // it back), it publishes `second` and does not kick.
  std::thread guest([&] {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (ctx_.notify_count(0) == interrupts && absl::Now() < deadline) {
      std::this_thread::yield();
    }
    published_in_time = ctx_.notify_count(0) > interrupts;
    second = Submit({.type = VIRTIO_BLK_T_IN, .sector = 2, .in = {512}});
  });
  dev_->ProcessQueue(0);  // serves `first`, polls, serves `second`, polls, arms
  guest.join();
  ASSERT_TRUE(published_in_time) << "no interrupt for the first request while polling";

  std::optional<FakeVirtqueueDriver::UsedEntry> used1 = driver_->PopUsed();
  std::optional<FakeVirtqueueDriver::UsedEntry> used2 = driver_->PopUsed();
  ASSERT_TRUE(used1.has_value());
  ASSERT_TRUE(used2.has_value()) << "the request published during the poll was not served";
  Reply r1 = Collect(first, *used1);
  Reply r2 = Collect(second, *used2);
  EXPECT_EQ(r2.status, VIRTIO_BLK_S_OK);
  ASSERT_EQ(r2.data.size(), 512u);
  EXPECT_EQ(r2.data[0], Pattern(2 * 512));
  EXPECT_EQ(r1.data[0], Pattern(512));
  EXPECT_GT(Counter("poll_hits"), hits);
  EXPECT_TRUE(KicksOn()) << "kicks must be on when ProcessQueue returns";
}

TEST_F(VirtioBlockPollTest, ZeroMaxNeverPollsAndKicksStayOn) {
  StartPolling(absl::ZeroDuration());
  for (uint64_t sector = 0; sector < 8; ++sector) {
    EXPECT_EQ(Status({.type = VIRTIO_BLK_T_IN, .sector = sector, .in = {512}}), VIRTIO_BLK_S_OK);
  }
  EXPECT_EQ(Counter("poll_hits"), 0u);
  EXPECT_EQ(Counter("poll_misses"), 0u);
  EXPECT_TRUE(KicksOn());
}

TEST_F(VirtioBlockPollTest, AfterAPollThatFoundNothingKicksAreOnAgain) {
  StartPolling(absl::Microseconds(50));
  // Requests back to back: from the second on the window is open, each pass
  // ends in a poll that finds nothing, and kicks must go back on after it,
  // past the request just served.
  for (uint64_t sector = 0; sector < 6; ++sector) {
    EXPECT_EQ(Status({.type = VIRTIO_BLK_T_IN, .sector = sector, .in = {512}}), VIRTIO_BLK_S_OK);
    EXPECT_TRUE(KicksOn()) << "after request " << sector;
  }
  EXPECT_GT(Counter("poll_misses"), 0u);
}

}  // namespace
}  // namespace vmm::testing
