#include "devices/virtio/queue_pass.h"

#include <optional>
#include <utility>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_virtio_context.h"
#include "tests/fakes/fake_virtqueue_driver.h"
#include "tests/fakes/test_guest_memory.h"

namespace vmm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::vmm::testing::FakeVirtioContext;
using ::vmm::testing::FakeVirtqueueDriver;
using ::vmm::testing::TestGuestMemory;

// Two queues whose rings the fake drivers own, activated as a transport
// would hand them to a device.
class QueuePassTest : public ::testing::Test {
 protected:
  void Activate(bool event_idx = false) {
    drivers_.reserve(2);
    for (uint64_t q = 0; q < 2; ++q) {
      drivers_.emplace_back(mem_, FakeVirtqueueDriver::Options{
                                      .size = 16,
                                      .ring_base = GuestAddress(0x10000 + 0x1000 * q),
                                      .data_base = GuestAddress(0x100000 + 0x100000 * q),
                                      .data_size = 0x100000,
                                      .event_idx = event_idx});
      active_.queues.push_back(Virtqueue::Create(drivers_.back().config(), mem_).value());
      active_.queue_enabled.push_back(true);
    }
    active_.memory = &mem_;
    active_.context = &context_;
  }

  GuestMemory mem_ = TestGuestMemory(4 << 20);
  std::vector<FakeVirtqueueDriver> drivers_;
  VirtioActiveQueues active_;
  FakeVirtioContext context_;
};

TEST_F(QueuePassTest, ChainsComeBackUsedAndEachUsedQueueIsNotifiedOnce) {
  Activate();
  drivers_[1].AddChainBytes({{1}}, {});
  drivers_[1].AddChainBytes({{2}}, {});
  QueuePass pass("virtio-test");
  pass.Begin(active_);
  int handled = 0;
  while (std::optional<DescriptorChain> chain = pass.Pop(1)) {
    ASSERT_TRUE(pass.AddUsed(1, std::move(*chain), 0));
    ++handled;
  }
  EXPECT_EQ(handled, 2);
  EXPECT_FALSE(pass.Pop(0).has_value());  // nothing on queue 0
  pass.Settle();
  pass.Deliver();
  EXPECT_THAT(context_.notified_queues(), ElementsAre(1));
  EXPECT_FALSE(context_.needs_reset());
  EXPECT_EQ(drivers_[1].PopAllUsed().size(), 2u);
  // Both queues ran dry: the driver's next chain must kick.
  drivers_[0].AddChainBytes({{3}}, {});
  EXPECT_TRUE(drivers_[0].KickNeeded());
}

TEST_F(QueuePassTest, DrainingWithKicksOffTurnsThemBackOnOnlyWhenEmpty) {
  Activate();
  drivers_[0].AddChainBytes({{1}}, {});
  QueuePass pass("virtio-test");
  pass.Begin(active_);
  ASSERT_TRUE(pass.SetNotificationsEnabled(0, false));
  std::optional<DescriptorChain> chain = pass.PopKicksOff(0);
  ASSERT_TRUE(chain.has_value());
  drivers_[0].AddChainBytes({{2}}, {});
  EXPECT_FALSE(drivers_[0].KickNeeded()) << "busy: no kick wanted";
  ASSERT_TRUE(pass.AddUsed(0, std::move(*chain), 0));
  chain = pass.PopKicksOff(0);
  ASSERT_TRUE(chain.has_value());
  ASSERT_TRUE(pass.AddUsed(0, std::move(*chain), 0));
  EXPECT_FALSE(pass.PopKicksOff(0).has_value());
  drivers_[0].AddChainBytes({{3}}, {});
  EXPECT_TRUE(drivers_[0].KickNeeded()) << "drained: the next chain must kick";
  EXPECT_FALSE(pass.failed());
}

TEST_F(QueuePassTest, NoInterruptWhenTheDriverAsksForNone) {
  Activate();
  drivers_[0].SetAvailFlags(kVirtqAvailFNoInterrupt);
  drivers_[0].AddChainBytes({{1}}, {});
  QueuePass pass("virtio-test");
  pass.Begin(active_);
  std::optional<DescriptorChain> chain = pass.Pop(0);
  ASSERT_TRUE(chain.has_value());
  ASSERT_TRUE(pass.AddUsed(0, std::move(*chain), 0));
  pass.Settle();
  pass.Deliver();
  EXPECT_THAT(context_.notified_queues(), IsEmpty());
  EXPECT_EQ(drivers_[0].PopAllUsed().size(), 1u);
}

TEST_F(QueuePassTest, BrokenRingFailsThePassAndAsksForAResetOnly) {
  Activate();
  drivers_[0].AddChainBytes({{1}}, {});
  drivers_[1].PushAvail(0x7fff);  // a head outside the descriptor table
  QueuePass pass("virtio-test");
  pass.Begin(active_);
  std::optional<DescriptorChain> chain = pass.Pop(0);
  ASSERT_TRUE(chain.has_value());
  ASSERT_TRUE(pass.AddUsed(0, std::move(*chain), 0));
  EXPECT_FALSE(pass.Pop(1).has_value());
  EXPECT_TRUE(pass.failed());
  EXPECT_TRUE(active_.broken);
  EXPECT_FALSE(pass.Pop(0).has_value()) << "a broken device leaves its queues alone";
  pass.Settle();
  pass.Deliver();
  EXPECT_THAT(context_.notified_queues(), IsEmpty());
  ASSERT_EQ(context_.reset_reasons().size(), 1u);
  EXPECT_THAT(context_.reset_reasons()[0], HasSubstr("virtio-test queue 1: "));
}

TEST_F(QueuePassTest, TheFirstFailureIsTheOneReported) {
  Activate();
  QueuePass pass("virtio-test");
  pass.Begin(active_);
  pass.Fail(0, absl::InvalidArgumentError("first"));
  pass.Fail(1, absl::InvalidArgumentError("second"));
  pass.Deliver();
  EXPECT_THAT(context_.reset_reasons(), ElementsAre("virtio-test queue 0: first"));
}

TEST_F(QueuePassTest, APassNeverBegunDeliversNothing) {
  Activate();
  QueuePass pass("virtio-test");
  EXPECT_FALSE(pass.Pop(0).has_value());
  pass.Settle();
  pass.Deliver();
  EXPECT_THAT(context_.notified_queues(), IsEmpty());
  EXPECT_FALSE(context_.needs_reset());
}

// A driver that refills its ring as fast as the device drains it: the pass
// stops at the budget, and asks for the queue to be run again rather than
// holding the event loop.
TEST_F(QueuePassTest, ARingKeptFullStopsAtTheBudgetAndIsRunAgain) {
  Activate();
  for (int i = 0; i < 8; ++i) drivers_[0].AddChainBytes({{1}}, {});
  drivers_[1].AddChainBytes({{2}}, {});
  auto drain = [&](QueuePass& pass, uint16_t queue) {
    int handled = 0;
    while (std::optional<DescriptorChain> chain = pass.Pop(queue)) {
      EXPECT_TRUE(pass.AddUsed(queue, std::move(*chain), 0));
      ++handled;
      // The driver takes the used entry back and posts another chain.
      drivers_[queue].PopAllUsed();
      drivers_[queue].AddChainBytes({{3}}, {});
    }
    return handled;
  };
  QueuePass pass("virtio-test");
  pass.Begin(active_);
  EXPECT_EQ(drain(pass, 0), QueuePass::kChainBudget);
  EXPECT_TRUE(pass.budget_spent(0));
  // The budget is per queue: the other one is served in the same pass.
  EXPECT_EQ(drain(pass, 1), QueuePass::kChainBudget);
  pass.Settle();
  pass.Deliver();
  EXPECT_THAT(context_.process_again(), ElementsAre(0, 1));
  EXPECT_FALSE(context_.needs_reset());
  // The next pass (what ProcessAgain leads to) picks up where this one
  // stopped.
  context_.clear_process_again();
  QueuePass next("virtio-test");
  next.Begin(active_);
  std::optional<DescriptorChain> chain = next.Pop(0);
  ASSERT_TRUE(chain.has_value());
  ASSERT_TRUE(next.AddUsed(0, std::move(*chain), 0));
  next.Settle();
  next.Deliver();
  EXPECT_THAT(context_.process_again(), IsEmpty()) << "budget left: no rerun";
}

TEST_F(QueuePassTest, AnEmptyOrBrokenRingIsNeverRunAgain) {
  Activate();
  {
    QueuePass pass("virtio-test");
    pass.Begin(active_);
    EXPECT_FALSE(pass.Pop(0).has_value());  // empty: a kick is asked for instead
    pass.Settle();
    pass.Deliver();
    EXPECT_THAT(context_.process_again(), IsEmpty());
  }
  drivers_[0].SetAvailIdx(100);  // jumps by more than the ring holds
  QueuePass pass("virtio-test");
  pass.Begin(active_);
  EXPECT_FALSE(pass.Pop(0).has_value());
  pass.Settle();
  pass.Deliver();
  EXPECT_TRUE(context_.needs_reset());
  EXPECT_THAT(context_.process_again(), IsEmpty());
}

}  // namespace
}  // namespace vmm
