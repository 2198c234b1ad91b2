// virtio-rng: filling requests, hostile chains, and the rate limit (with an
// injected clock and entropy source), plus the real timerfd retry.
#include "devices/virtio/rng/virtio_rng.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "base/event_loop.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_virtio_context.h"
#include "tests/fakes/fake_virtqueue_driver.h"
#include "tests/fakes/test_guest_memory.h"

namespace vmm::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::Each;
using ::testing::IsEmpty;

class VirtioRngTest : public ::testing::Test {
 protected:
  // A device with a counting entropy source (byte i is i & 0xff), a clock
  // the test moves and a recorded retry schedule.
  void Start(uint64_t rate = 0, FakeVirtqueueDriverOptions queue_options = {}) {
    VirtioRngOptions options;
    options.rate_limit_bytes_per_second = rate;
    options.entropy = [this](absl::Span<uint8_t> out) {
      if (entropy_fails_) return false;
      for (uint8_t& b : out) b = static_cast<uint8_t>(next_byte_++);
      return true;
    };
    options.clock = [this] { return now_; };
    options.schedule_retry = [this](absl::Duration d) { retries_.push_back(d); };
    dev_ = std::make_unique<VirtioRng>(std::move(options));
    driver_.emplace(memory_, queue_options);
    VirtioActivation a;
    a.memory = &memory_;
    a.features = kVirtioFVersion1;
    auto queue = Virtqueue::Create(driver_->config(), memory_);
    ASSERT_TRUE(queue.ok()) << queue.status();
    a.queues.push_back(std::move(*queue));
    a.queue_enabled = {true};
    a.context = &context_;
    ASSERT_TRUE(dev_->Activate(std::move(a)).ok());
  }

  GuestMemory memory_ = TestGuestMemory(4 << 20);
  FakeVirtioContext context_;
  std::optional<FakeVirtqueueDriver> driver_;
  std::unique_ptr<VirtioRng> dev_;
  absl::Time now_ = absl::FromUnixSeconds(1000);
  uint32_t next_byte_ = 0;
  bool entropy_fails_ = false;
  std::vector<absl::Duration> retries_;
};

TEST_F(VirtioRngTest, IsDeviceTypeFourWithOneQueueAndNoConfig) {
  Start();
  EXPECT_EQ(dev_->device_type(), 4u);
  EXPECT_THAT(dev_->queue_max_sizes(), ElementsAre(VirtioRng::kQueueSize));
  EXPECT_NE(dev_->device_features() & kVirtioFVersion1, 0u);
  uint8_t bytes[4] = {1, 2, 3, 4};
  dev_->ReadConfig(0, absl::MakeSpan(bytes));
  EXPECT_THAT(bytes, Each(0));
}

TEST_F(VirtioRngTest, FillsScatteredWritableBuffersAndNotifies) {
  Start();
  driver_->AddChainBytes({}, {3, 5});
  dev_->ProcessQueue(0);
  auto used = driver_->PopAllUsed();
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(used[0].len, 8u);
  EXPECT_THAT(used[0].written, ElementsAre(0, 1, 2, 3, 4, 5, 6, 7));
  EXPECT_EQ(context_.notify_count(0), 1u);
  EXPECT_EQ(dev_->stats().bytes, 8u);
}

TEST_F(VirtioRngTest, DrainsEveryAvailableChainInOneKick) {
  Start();
  for (int i = 0; i < 5; ++i) driver_->AddChainBytes({}, {16});
  dev_->ProcessQueue(0);
  EXPECT_EQ(driver_->PopAllUsed().size(), 5u);
  EXPECT_EQ(dev_->stats().requests, 5u);
}

TEST_F(VirtioRngTest, HugeBufferGetsAtMostTheRequestCap) {
  Start(0, {.data_size = 0x200000});
  driver_->AddChainBytes({}, {VirtioRng::kMaxBytesPerRequest + 4096});
  dev_->ProcessQueue(0);
  auto used = driver_->PopUsed();
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(used->len, VirtioRng::kMaxBytesPerRequest);
}

TEST_F(VirtioRngTest, ChainWithDeviceReadableBuffersIsReturnedUnusedAndCounted) {
  Start();
  driver_->AddChainBytes({{9, 9, 9}}, {8});
  driver_->AddChainBytes({{9}}, {});
  dev_->ProcessQueue(0);
  auto used = driver_->PopAllUsed();
  ASSERT_EQ(used.size(), 2u);
  EXPECT_EQ(used[0].len, 0u);
  EXPECT_EQ(used[1].len, 0u);
  EXPECT_EQ(dev_->stats().malformed, 2u);
  EXPECT_EQ(next_byte_, 0u) << "no entropy spent on a malformed request";
  EXPECT_FALSE(context_.needs_reset());
}

TEST_F(VirtioRngTest, ZeroLengthChainIsReturnedWithLengthZero) {
  Start();
  VirtioBuffer empty{driver_->Alloc(16), 0};
  driver_->AddChain({}, {&empty, 1});
  dev_->ProcessQueue(0);
  auto used = driver_->PopUsed();
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(used->len, 0u);
  EXPECT_FALSE(context_.needs_reset());
}

TEST_F(VirtioRngTest, EntropyFailureReturnsTheChainEmpty) {
  Start();
  entropy_fails_ = true;
  driver_->AddChainBytes({}, {8});
  dev_->ProcessQueue(0);
  auto used = driver_->PopUsed();
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(used->len, 0u);
  EXPECT_EQ(dev_->stats().entropy_failures, 1u);
}

TEST_F(VirtioRngTest, BufferOutsideGuestMemoryAsksForReset) {
  Start();
  VirtioBuffer outside{GuestAddress(64ull << 20), 16};
  driver_->AddChain({}, {&outside, 1});
  dev_->ProcessQueue(0);
  EXPECT_TRUE(context_.needs_reset());
  EXPECT_EQ(driver_->pending_used(), 0u);
}

TEST_F(VirtioRngTest, KicksBeforeActivationOrOnOtherQueuesAreIgnored) {
  VirtioRng dev(VirtioRngOptions{});
  dev.ProcessQueue(0);  // not active: nothing happens
  Start();
  driver_->AddChainBytes({}, {8});
  dev_->ProcessQueue(1);
  EXPECT_EQ(driver_->pending_used(), 0u);
  dev_->Reset();
  dev_->ProcessQueue(0);
  EXPECT_EQ(driver_->pending_used(), 0u);
}

// --- Rate limit ------------------------------------------------------------

TEST_F(VirtioRngTest, RateLimitGivesABurstOfOneSecondThenWaitsWithoutPolling) {
  Start(/*rate=*/100);
  driver_->AddChainBytes({}, {64});
  driver_->AddChainBytes({}, {64});
  driver_->AddChainBytes({}, {64});
  dev_->ProcessQueue(0);
  auto used = driver_->PopAllUsed();
  ASSERT_EQ(used.size(), 2u);
  EXPECT_EQ(used[0].len, 64u);
  EXPECT_EQ(used[1].len, 36u) << "a short fill uses what the bucket holds";
  // The third chain waits; one retry, timed for when 64 bytes are there.
  ASSERT_EQ(retries_.size(), 1u);
  EXPECT_EQ(retries_[0], absl::Milliseconds(640));
  EXPECT_EQ(dev_->stats().throttled, 1u);
  // More kicks while the retry is pending neither spin nor re-arm.
  dev_->ProcessQueue(0);
  dev_->ProcessQueue(0);
  EXPECT_EQ(retries_.size(), 1u);
  EXPECT_EQ(driver_->pending_used(), 0u);

  now_ += absl::Milliseconds(640);
  dev_->OnRetryTimer();
  used = driver_->PopAllUsed();
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(used[0].len, 64u);
  EXPECT_EQ(retries_.size(), 1u);
}

TEST_F(VirtioRngTest, RateLimitBoundsBytesOverTime) {
  Start(/*rate=*/1000);
  uint64_t delivered = 0;
  for (int step = 0; step < 50; ++step) {
    while (driver_->free_descriptors() > 0) driver_->AddChainBytes({}, {256});
    if (!retries_.empty()) {
      now_ += retries_.back();
      retries_.clear();
      dev_->OnRetryTimer();
    } else {
      dev_->ProcessQueue(0);
    }
    for (const auto& u : driver_->PopAllUsed()) delivered += u.len;
  }
  const double seconds = absl::ToDoubleSeconds(now_ - absl::FromUnixSeconds(1000));
  EXPECT_GT(seconds, 5.0);
  // The burst (one second's worth) plus the rate over the elapsed time.
  EXPECT_LE(delivered, 1000 + 1000 * seconds + 1);
  EXPECT_GE(delivered, 1000 * seconds - 256);
}

TEST_F(VirtioRngTest, SmallRateWaitsForAFullSecondNotTheWholeBuffer) {
  Start(/*rate=*/10);
  driver_->AddChainBytes({}, {64});
  driver_->AddChainBytes({}, {64});
  dev_->ProcessQueue(0);
  auto used = driver_->PopAllUsed();
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(used[0].len, 10u);
  ASSERT_EQ(retries_.size(), 1u);
  EXPECT_EQ(retries_[0], absl::Seconds(1));
}

TEST_F(VirtioRngTest, HeldChainIsDroppedByReset) {
  Start(/*rate=*/1);
  driver_->AddChainBytes({}, {8});
  driver_->AddChainBytes({}, {8});
  dev_->ProcessQueue(0);
  EXPECT_EQ(driver_->PopAllUsed().size(), 1u);
  dev_->Reset();
  now_ += absl::Seconds(10);
  dev_->OnRetryTimer();  // a stale timer after reset is harmless
  EXPECT_EQ(driver_->pending_used(), 0u);
}

// The real retry path: a timerfd on an event loop brings the held chain back.
TEST(VirtioRngLoopTest, TimerOnTheEventLoopCompletesThrottledChains) {
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  VirtioRngOptions options;
  options.rate_limit_bytes_per_second = 2000;
  // The bucket's clock stands still until the test moves it: with the real
  // clock, the microseconds between the second and third chain (more under
  // ASan on a busy host) trickle in a few bytes, and the third chain is
  // short-filled instead of waiting for the timer this test is about.
  std::atomic<int64_t> clock_ns{absl::ToUnixNanos(absl::Now())};
  options.clock = [&clock_ns] { return absl::FromUnixNanos(clock_ns.load()); };
  auto dev = VirtioRng::Create(std::move(options), **loop);
  ASSERT_TRUE(dev.ok()) << dev.status();
  GuestMemory memory = TestGuestMemory(4 << 20);
  FakeVirtqueueDriver driver(memory);
  FakeVirtioContext context;
  VirtioActivation a;
  a.memory = &memory;
  auto queue = Virtqueue::Create(driver.config(), memory);
  ASSERT_TRUE(queue.ok());
  a.queues.push_back(std::move(*queue));
  a.queue_enabled = {true};
  a.context = &context;
  ASSERT_TRUE((*dev)->Activate(std::move(a)).ok());
  std::thread thread([&] { (void)(*loop)->Run(); });

  for (int i = 0; i < 3; ++i) driver.AddChainBytes({}, {1000});
  const absl::Time start = absl::Now();
  (*dev)->ProcessQueue(0);  // 2000 bytes now, the third 1000 after ~0.5 s
  clock_ns += absl::ToInt64Nanoseconds(absl::Seconds(1));  // when the timer fires
  uint64_t got = 0;
  size_t chains = 0;
  while (chains < 3 && absl::Now() - start < absl::Seconds(5)) {
    for (const auto& u : driver.PopAllUsed()) {
      got += u.len;
      ++chains;
      std::vector<uint8_t> zeros(u.len, 0);
      EXPECT_NE(u.written, zeros);
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  const absl::Duration took = absl::Now() - start;
  (*loop)->Stop();
  thread.join();
  EXPECT_EQ(chains, 3u);
  EXPECT_EQ(got, 3000u);
  EXPECT_GE(took, absl::Milliseconds(400));
  EXPECT_EQ((*dev)->stats().throttled, 1u);
}

}  // namespace
}  // namespace vmm::testing
