// QueuePoller: QEMU's rule for the polling window, and Spin's bounds.
#include "devices/virtio/queue_poller.h"

#include "gtest/gtest.h"

namespace vmm {
namespace {

constexpr absl::Duration kMax = absl::Microseconds(32);
const absl::Time kT0 = absl::FromUnixSeconds(1000);

// The ring ran dry at `dry`, kicks went on, and the next kick came `gap` later.
void MissThenKick(QueuePoller& p, absl::Time dry, absl::Duration gap) {
  p.PassEnded(dry);
  p.Armed();
  p.PassStarted(dry + gap);
}

TEST(QueuePollerTest, StartsClosedAndOpensWhenKicksComeSoonAfterTheRingRanDry) {
  QueuePoller p(kMax);
  EXPECT_EQ(p.window(), absl::ZeroDuration());
  MissThenKick(p, kT0, absl::Microseconds(10));
  EXPECT_EQ(p.window(), QueuePoller::kInitialWindow);
  MissThenKick(p, kT0, absl::Microseconds(10));
  EXPECT_EQ(p.window(), absl::Microseconds(8));
  MissThenKick(p, kT0, absl::Microseconds(10));
  EXPECT_EQ(p.window(), absl::Microseconds(16)) << "doubles while the wait is under the max";
  MissThenKick(p, kT0, absl::Microseconds(10));
  EXPECT_EQ(p.window(), absl::Microseconds(16)) << "a wait inside the window: left alone";
  MissThenKick(p, kT0, absl::Microseconds(30));
  EXPECT_EQ(p.window(), kMax);
  MissThenKick(p, kT0, absl::Microseconds(30));
  EXPECT_EQ(p.window(), kMax) << "never past the max";
}

TEST(QueuePollerTest, AWaitLongerThanTheMaxClosesTheWindow) {
  QueuePoller p(kMax);
  for (int i = 0; i < 4; ++i) MissThenKick(p, kT0, absl::Microseconds(20));
  ASSERT_GT(p.window(), absl::ZeroDuration());
  MissThenKick(p, kT0, absl::Milliseconds(5));
  EXPECT_EQ(p.window(), absl::ZeroDuration()) << "an idle device stops polling";
}

TEST(QueuePollerTest, APassStartedByThePollLeavesTheWindowAlone) {
  QueuePoller p(kMax);
  MissThenKick(p, kT0, absl::Microseconds(10));
  const absl::Duration before = p.window();
  p.PassEnded(kT0);
  p.PassStarted(kT0 + absl::Seconds(1));  // not armed: the poll found work
  EXPECT_EQ(p.window(), before);
}

TEST(QueuePollerTest, AZeroMaxNeverPolls) {
  QueuePoller p(absl::ZeroDuration());
  for (int i = 0; i < 5; ++i) MissThenKick(p, kT0, absl::Nanoseconds(1));
  EXPECT_EQ(p.window(), absl::ZeroDuration());
}

TEST(QueuePollerTest, SpinStopsAtWorkOrAtTheWindowsEnd) {
  int looks = 0;
  EXPECT_FALSE(QueuePoller::Spin(absl::ZeroDuration(), [&] { return ++looks, true; }));
  EXPECT_EQ(looks, 0) << "a closed window does not look";

  looks = 0;
  EXPECT_TRUE(QueuePoller::Spin(absl::Seconds(10), [&] { return ++looks == 3; }));
  EXPECT_EQ(looks, 3);

  const absl::Time start = absl::Now();
  looks = 0;
  EXPECT_FALSE(QueuePoller::Spin(absl::Milliseconds(2), [&] { return ++looks, false; }));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(2));
  EXPECT_GE(looks, 2);
}

}  // namespace
}  // namespace vmm
