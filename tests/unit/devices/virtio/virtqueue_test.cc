// Split virtqueue behaviour with a well-behaved driver: configuration checks,
// popping chains (direct, multi-buffer, indirect), the used ring, and
// notification suppression in both directions.
#include "devices/virtio/virtqueue.h"

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_virtqueue_driver.h"
#include "tests/fakes/test_guest_memory.h"

namespace vmm {
namespace {

using ::testing::ElementsAre;
using ::vmm::testing::FakeVirtqueueDriver;
using ::vmm::testing::TestGuestMemory;

std::vector<uint8_t> Bytes(std::initializer_list<uint8_t> b) { return b; }

class VirtqueueTest : public ::testing::Test {
 protected:
  Virtqueue MakeQueue(FakeVirtqueueDriver& driver) {
    auto q = Virtqueue::Create(driver.config(), mem_);
    EXPECT_TRUE(q.ok()) << q.status();
    return std::move(q).value();
  }
  DescriptorChain Pop(Virtqueue& q) {
    auto c = q.PopChain(mem_);
    EXPECT_TRUE(c.ok()) << c.status();
    EXPECT_TRUE(c.ok() && c->has_value()) << "no chain available";
    if (!c.ok() || !c->has_value()) return DescriptorChain(0xffff, {}, {});
    return std::move(**c);
  }
  std::vector<uint8_t> ReadAll(const DescriptorChain& c) {
    std::vector<uint8_t> out(c.readable_bytes());
    EXPECT_EQ(c.ReadFrom(mem_, 0, absl::MakeSpan(out)), out.size());
    return out;
  }

  GuestMemory mem_ = TestGuestMemory(4 << 20);
};

TEST_F(VirtqueueTest, CreateAcceptsLinuxLayoutForEveryPowerOfTwoSize) {
  for (uint32_t size = 1; size <= kVirtqMaxSize; size *= 2) {
    FakeVirtqueueDriver driver(mem_, {.size = static_cast<uint16_t>(size)});
    EXPECT_TRUE(Virtqueue::Create(driver.config(), mem_).ok()) << "size " << size;
  }
}

TEST_F(VirtqueueTest, PopOnEmptyQueueReturnsNothing) {
  FakeVirtqueueDriver driver(mem_);
  Virtqueue q = MakeQueue(driver);
  auto c = q.PopChain(mem_);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->has_value());
  EXPECT_EQ(q.next_avail(), 0);
}

TEST_F(VirtqueueTest, UnpublishedChainIsNotPopped) {
  FakeVirtqueueDriver driver(mem_);
  Virtqueue q = MakeQueue(driver);
  driver.AddChainBytes({{1, 2, 3}}, {}, /*publish=*/false);
  auto c = q.PopChain(mem_);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->has_value());
  driver.Publish();
  EXPECT_TRUE(q.PopChain(mem_).value().has_value());
}

TEST_F(VirtqueueTest, SingleReadableBufferIsPoppedWithItsBytes) {
  FakeVirtqueueDriver driver(mem_);
  Virtqueue q = MakeQueue(driver);
  const uint16_t head = driver.AddChainBytes({{0xde, 0xad, 0xbe, 0xef}}, {});
  DescriptorChain c = Pop(q);
  EXPECT_EQ(c.head(), head);
  EXPECT_EQ(c.readable().size(), 1u);
  EXPECT_TRUE(c.writable().empty());
  EXPECT_EQ(ReadAll(c), Bytes({0xde, 0xad, 0xbe, 0xef}));
  EXPECT_EQ(q.next_avail(), 1);
}

TEST_F(VirtqueueTest, ChainOfSeveralBuffersKeepsOrderAndDirection) {
  FakeVirtqueueDriver driver(mem_);
  Virtqueue q = MakeQueue(driver);
  driver.AddChainBytes({{1, 2}, {3}, {4, 5, 6}}, {7, 9});
  DescriptorChain c = Pop(q);
  ASSERT_EQ(c.readable().size(), 3u);
  ASSERT_EQ(c.writable().size(), 2u);
  EXPECT_EQ(c.readable_bytes(), 6u);
  EXPECT_EQ(c.writable_bytes(), 16u);
  EXPECT_EQ(c.writable()[0].len, 7u);
  EXPECT_EQ(c.writable()[1].len, 9u);
  EXPECT_EQ(ReadAll(c), Bytes({1, 2, 3, 4, 5, 6}));
}

TEST_F(VirtqueueTest, ChainsArePoppedInAvailOrder) {
  FakeVirtqueueDriver driver(mem_);
  Virtqueue q = MakeQueue(driver);
  const uint16_t a = driver.AddChainBytes({{1}}, {});
  const uint16_t b = driver.AddChainBytes({{2}, {3}}, {});
  const uint16_t c = driver.AddChainBytes({{4}}, {});
  EXPECT_EQ(Pop(q).head(), a);
  EXPECT_EQ(Pop(q).head(), b);
  EXPECT_EQ(Pop(q).head(), c);
  EXPECT_FALSE(q.PopChain(mem_).value().has_value());
}

TEST_F(VirtqueueTest, ChainUsingEveryDescriptorOfTheQueueIsAccepted) {
  FakeVirtqueueDriver driver(mem_, {.size = 8});
  Virtqueue q = MakeQueue(driver);
  driver.AddChainBytes({{1}, {2}, {3}, {4}, {5}, {6}, {7}, {8}}, {});
  EXPECT_EQ(ReadAll(Pop(q)), Bytes({1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST_F(VirtqueueTest, IndirectTableIsWalkedWhenNegotiated) {
  FakeVirtqueueDriver driver(mem_, {.indirect = true});
  Virtqueue q = MakeQueue(driver);
  const VirtioBuffer r1 = driver.PlaceBytes(Bytes({1, 2, 3}));
  const VirtioBuffer r2 = driver.PlaceBytes(Bytes({4}));
  const VirtioBuffer w = driver.PlaceFilled(32);
  const uint16_t head = driver.AddIndirectChain({r1, r2}, {w});
  DescriptorChain c = Pop(q);
  EXPECT_EQ(c.head(), head);
  EXPECT_EQ(ReadAll(c), Bytes({1, 2, 3, 4}));
  ASSERT_EQ(c.writable().size(), 1u);
  EXPECT_EQ(c.writable()[0].addr, w.addr);
  EXPECT_EQ(c.writable_bytes(), 32u);
}

TEST_F(VirtqueueTest, IndirectTableLongerThanTheQueueIsAccepted) {
  // Linux builds indirect tables longer than a small queue; only the 1024
  // cap applies.
  FakeVirtqueueDriver driver(mem_, {.size = 4, .indirect = true});
  Virtqueue q = MakeQueue(driver);
  std::vector<VirtioBuffer> readable;
  for (uint8_t i = 0; i < 20; ++i) readable.push_back(driver.PlaceBytes(Bytes({i})));
  driver.AddIndirectChain(readable, {});
  EXPECT_EQ(Pop(q).readable().size(), 20u);
}

TEST_F(VirtqueueTest, DirectDescriptorsMayPrecedeAnIndirectOne) {
  FakeVirtqueueDriver driver(mem_, {.indirect = true});
  Virtqueue q = MakeQueue(driver);
  const VirtioBuffer hdr = driver.PlaceBytes(Bytes({9}));
  const VirtioBuffer data = driver.PlaceBytes(Bytes({8, 7}));
  const GuestAddress table = driver.Alloc(16);
  driver.WriteDescAt(table, 0, data.addr.value(), data.len, 0, 0);
  driver.WriteDesc(0, hdr.addr.value(), hdr.len, kVirtqDescFNext, 1);
  driver.WriteDesc(1, table.value(), 16, kVirtqDescFIndirect, 0);
  driver.PushAvail(0);
  EXPECT_EQ(ReadAll(Pop(q)), Bytes({9, 8, 7}));
}

TEST_F(VirtqueueTest, ZeroLengthBuffersAreDropped) {
  FakeVirtqueueDriver driver(mem_);
  Virtqueue q = MakeQueue(driver);
  const VirtioBuffer r = driver.PlaceBytes(Bytes({5}));
  // A zero-length descriptor is dropped, whatever its address.
  driver.AddChain({VirtioBuffer{GuestAddress(~0ull), 0}, r}, {VirtioBuffer{GuestAddress(0), 0}});
  DescriptorChain c = Pop(q);
  EXPECT_EQ(c.readable().size(), 1u);
  EXPECT_TRUE(c.writable().empty());
}

TEST_F(VirtqueueTest, AddUsedPublishesHeadLengthAndWrittenBytes) {
  FakeVirtqueueDriver driver(mem_);
  Virtqueue q = MakeQueue(driver);
  const uint16_t head = driver.AddChainBytes({{1}}, {4, 4});
  DescriptorChain c = Pop(q);
  const std::vector<uint8_t> reply = {10, 11, 12, 13, 14, 15};
  ASSERT_EQ(c.WriteTo(mem_, 0, reply), reply.size());
  ASSERT_TRUE(q.AddUsed(std::move(c), 6, mem_).ok());
  EXPECT_EQ(q.next_used(), 1);
  EXPECT_EQ(driver.used_idx(), 1);
  auto used = driver.PopUsed();
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(used->head, head);
  EXPECT_EQ(used->len, 6u);
  EXPECT_EQ(used->written, reply);
}

TEST_F(VirtqueueTest, AddUsedRefusesMoreBytesThanTheChainCanHold) {
  FakeVirtqueueDriver driver(mem_);
  Virtqueue q = MakeQueue(driver);
  driver.AddChainBytes({{1}}, {4});
  EXPECT_FALSE(q.AddUsed(Pop(q), 5, mem_).ok());
  EXPECT_EQ(driver.used_idx(), 0);
}

TEST_F(VirtqueueTest, AddUsedRefusesAHeadFromALargerQueue) {
  FakeVirtqueueDriver driver(mem_, {.size = 4});
  Virtqueue q = MakeQueue(driver);
  EXPECT_FALSE(q.AddUsed(DescriptorChain(4, {}, {}), 0, mem_).ok());
  EXPECT_EQ(driver.used_idx(), 0);
}

TEST_F(VirtqueueTest, IndicesWrapAt65536AcrossManyRoundTrips) {
  FakeVirtqueueDriver driver(mem_, {.size = 4});
  Virtqueue q = MakeQueue(driver);
  for (uint32_t i = 0; i < 70000; ++i) {
    const uint8_t tag = static_cast<uint8_t>(i);
    const uint16_t head = driver.AddChainBytes({{tag}}, {1});
    DescriptorChain c = Pop(q);
    ASSERT_EQ(c.head(), head) << "round " << i;
    std::vector<uint8_t> in(1);
    ASSERT_EQ(c.ReadFrom(mem_, 0, absl::MakeSpan(in)), 1u);
    const uint8_t out = in[0] ^ 0xff;
    ASSERT_EQ(c.WriteTo(mem_, 0, absl::MakeConstSpan(&out, 1)), 1u);
    ASSERT_TRUE(q.AddUsed(std::move(c), 1, mem_).ok());
    auto used = driver.PopUsed();
    ASSERT_TRUE(used.has_value());
    ASSERT_EQ(used->written, std::vector<uint8_t>{static_cast<uint8_t>(tag ^ 0xff)});
  }
  EXPECT_EQ(q.next_avail(), static_cast<uint16_t>(70000));
  EXPECT_EQ(q.next_used(), static_cast<uint16_t>(70000));
}

TEST_F(VirtqueueTest, DriverOnAnotherThreadSeesEveryRequestCompleted) {
  // The driver publishes from its own thread; acquire/release on the ring
  // indices must make every descriptor visible (run under TSan too).
  FakeVirtqueueDriver driver(mem_, {.size = 16, .event_idx = true});
  Virtqueue q = MakeQueue(driver);
  constexpr uint32_t kRequests = 5000;
  std::atomic<bool> mismatch{false};
  std::atomic<bool> stop{false};
  // A broken queue must fail the test, not hang it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  auto running = [&] { return !stop && std::chrono::steady_clock::now() < deadline; };
  std::thread guest([&] {
    uint32_t sent = 0, completed = 0;
    while (completed < kRequests && running()) {
      if (sent < kRequests && driver.free_descriptors() >= 2) {
        const uint8_t tag = static_cast<uint8_t>(sent++);
        driver.AddChainBytes({{tag}}, {1});
      }
      while (auto used = driver.PopUsed()) {
        if (used->written != std::vector<uint8_t>{static_cast<uint8_t>(completed)}) mismatch = true;
        ++completed;
      }
    }
  });
  uint32_t done = 0;
  std::string error;
  while (done < kRequests && running()) {
    auto c = q.PopChain(mem_);
    if (!c.ok()) {
      error = c.status().ToString();
      break;
    }
    if (!c->has_value()) {
      std::this_thread::yield();
      continue;
    }
    std::vector<uint8_t> in(1);
    (*c)->ReadFrom(mem_, 0, absl::MakeSpan(in));
    (*c)->WriteTo(mem_, 0, in);
    if (absl::Status s = q.AddUsed(std::move(**c), 1, mem_); !s.ok()) {
      error = s.ToString();
      break;
    }
    ++done;
  }
  if (!error.empty()) stop = true;
  guest.join();
  EXPECT_EQ(error, "");
  EXPECT_EQ(done, kRequests);
  EXPECT_FALSE(mismatch);
}

// --- Device -> driver notifications ------------------------------------------

TEST_F(VirtqueueTest, WithoutEventIdxNotifiesUnlessDriverSetsNoInterrupt) {
  FakeVirtqueueDriver driver(mem_);
  Virtqueue q = MakeQueue(driver);
  driver.AddChainBytes({{1}}, {});
  ASSERT_TRUE(q.AddUsed(Pop(q), 0, mem_).ok());
  EXPECT_TRUE(q.ShouldNotify(mem_).value());
  driver.SetAvailFlags(kVirtqAvailFNoInterrupt);
  EXPECT_FALSE(q.ShouldNotify(mem_).value());
}

TEST_F(VirtqueueTest, WithEventIdxFirstCompletionAlwaysNotifies) {
  FakeVirtqueueDriver driver(mem_, {.event_idx = true});
  Virtqueue q = MakeQueue(driver);
  driver.SetUsedEvent(100);  // far away, but the first check has no history
  driver.AddChainBytes({{1}}, {});
  ASSERT_TRUE(q.AddUsed(Pop(q), 0, mem_).ok());
  EXPECT_TRUE(q.ShouldNotify(mem_).value());
}

TEST_F(VirtqueueTest, WithEventIdxNotifiesOnlyWhenUsedIdxCrossesUsedEvent) {
  FakeVirtqueueDriver driver(mem_, {.event_idx = true});
  Virtqueue q = MakeQueue(driver);
  auto complete_one = [&] {
    driver.AddChainBytes({{1}}, {});
    ASSERT_TRUE(q.AddUsed(Pop(q), 0, mem_).ok());
    driver.PopUsed();
  };
  complete_one();  // used idx 1
  ASSERT_TRUE(q.ShouldNotify(mem_).value());
  driver.SetUsedEvent(2);  // interrupt me when entry 2 is used (idx becomes 3)
  complete_one();          // used idx 2: entry 1 used
  EXPECT_FALSE(q.ShouldNotify(mem_).value());
  complete_one();          // used idx 3: entry 2 used
  EXPECT_TRUE(q.ShouldNotify(mem_).value());
  complete_one();          // used idx 4: event already passed
  EXPECT_FALSE(q.ShouldNotify(mem_).value());
}

TEST_F(VirtqueueTest, WithEventIdxBatchCrossingUsedEventNotifiesOnce) {
  FakeVirtqueueDriver driver(mem_, {.event_idx = true});
  Virtqueue q = MakeQueue(driver);
  driver.AddChainBytes({{1}}, {});
  ASSERT_TRUE(q.AddUsed(Pop(q), 0, mem_).ok());
  ASSERT_TRUE(q.ShouldNotify(mem_).value());  // used idx 1
  driver.SetUsedEvent(2);
  for (int i = 0; i < 3; ++i) driver.AddChainBytes({{1}}, {});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(q.AddUsed(Pop(q), 0, mem_).ok());  // idx 4
  EXPECT_TRUE(q.ShouldNotify(mem_).value());
  EXPECT_FALSE(q.ShouldNotify(mem_).value());  // nothing new since
}

TEST_F(VirtqueueTest, WithEventIdxNotificationMathWrapsAt65535) {
  FakeVirtqueueDriver driver(mem_, {.size = 2, .event_idx = true});
  Virtqueue q = MakeQueue(driver);
  // Run both indices up to 65534.
  for (uint32_t i = 0; i < 65534; ++i) {
    driver.AddChainBytes({{1}}, {});
    ASSERT_TRUE(q.AddUsed(Pop(q), 0, mem_).ok());
    driver.PopUsed();
  }
  ASSERT_TRUE(q.ShouldNotify(mem_).value());  // first check: 0 -> 65534
  driver.SetUsedEvent(1);  // entry 1 of the next lap: used idx must reach 2
  for (int i = 0; i < 3; ++i) {  // 65535, 0, 1: event not reached yet
    driver.AddChainBytes({{1}}, {});
    ASSERT_TRUE(q.AddUsed(Pop(q), 0, mem_).ok());
    driver.PopUsed();
    EXPECT_FALSE(q.ShouldNotify(mem_).value()) << "used idx " << q.next_used();
  }
  driver.AddChainBytes({{1}}, {});
  ASSERT_TRUE(q.AddUsed(Pop(q), 0, mem_).ok());
  EXPECT_EQ(q.next_used(), 2);
  EXPECT_TRUE(q.ShouldNotify(mem_).value());
}

TEST_F(VirtqueueTest, WithEventIdxUsedEvent65535NotifiesWhenIdxWrapsToZero) {
  FakeVirtqueueDriver driver(mem_, {.size = 2, .event_idx = true});
  Virtqueue q = MakeQueue(driver);
  for (uint32_t i = 0; i < 65535; ++i) {
    driver.AddChainBytes({{1}}, {});
    ASSERT_TRUE(q.AddUsed(Pop(q), 0, mem_).ok());
    driver.PopUsed();
  }
  ASSERT_TRUE(q.ShouldNotify(mem_).value());
  driver.SetUsedEvent(65535);
  driver.AddChainBytes({{1}}, {});
  ASSERT_TRUE(q.AddUsed(Pop(q), 0, mem_).ok());
  EXPECT_EQ(q.next_used(), 0);
  EXPECT_TRUE(q.ShouldNotify(mem_).value());
}

// --- Driver -> device notifications ------------------------------------------

TEST_F(VirtqueueTest, WithoutEventIdxDisablingSetsNoNotifyAndEnablingClearsIt) {
  FakeVirtqueueDriver driver(mem_);
  Virtqueue q = MakeQueue(driver);
  ASSERT_TRUE(q.SetNotificationsEnabled(false, mem_).ok());
  EXPECT_EQ(driver.used_flags(), kVirtqUsedFNoNotify);
  driver.AddChainBytes({{1}}, {});
  EXPECT_FALSE(driver.KickNeeded());
  ASSERT_TRUE(q.SetNotificationsEnabled(true, mem_).ok());
  EXPECT_EQ(driver.used_flags(), 0);
  driver.AddChainBytes({{1}}, {});
  EXPECT_TRUE(driver.KickNeeded());
}

TEST_F(VirtqueueTest, WithEventIdxEnablingAsksForAKickAtTheNextAvailEntry) {
  FakeVirtqueueDriver driver(mem_, {.event_idx = true});
  Virtqueue q = MakeQueue(driver);
  driver.AddChainBytes({{1}}, {});
  driver.AddChainBytes({{1}}, {});
  Pop(q);
  Pop(q);
  ASSERT_TRUE(q.SetNotificationsEnabled(true, mem_).ok());
  EXPECT_EQ(driver.avail_event(), 2);
  EXPECT_EQ(driver.used_flags(), 0);  // flags are not used with EVENT_IDX
  driver.AddChainBytes({{1}}, {});    // avail idx 2 -> 3 crosses avail_event
  EXPECT_TRUE(driver.KickNeeded());
  driver.AddChainBytes({{1}}, {});    // 3 -> 4: already kicked for this one
  EXPECT_FALSE(driver.KickNeeded());
}

TEST_F(VirtqueueTest, WithEventIdxDisablingLeavesAvailEventAlone) {
  FakeVirtqueueDriver driver(mem_, {.event_idx = true});
  Virtqueue q = MakeQueue(driver);
  ASSERT_TRUE(q.SetNotificationsEnabled(true, mem_).ok());
  driver.AddChainBytes({{1}}, {});
  Pop(q);
  ASSERT_TRUE(q.SetNotificationsEnabled(false, mem_).ok());
  EXPECT_EQ(driver.avail_event(), 0);
  driver.AddChainBytes({{1}}, {});  // 1 -> 2 does not cross 0
  EXPECT_FALSE(driver.KickNeeded());
}

TEST_F(VirtqueueTest, PopOrEnableNotificationPopsWithoutTouchingNotifications) {
  FakeVirtqueueDriver driver(mem_);
  Virtqueue q = MakeQueue(driver);
  ASSERT_TRUE(q.SetNotificationsEnabled(false, mem_).ok());
  driver.AddChainBytes({{7}}, {});
  auto c = q.PopOrEnableNotification(mem_);
  ASSERT_TRUE(c.ok() && c->has_value());
  EXPECT_EQ(ReadAll(**c), Bytes({7}));
  EXPECT_EQ(driver.used_flags(), kVirtqUsedFNoNotify);  // still draining: no kicks
}

TEST_F(VirtqueueTest, PopOrEnableNotificationOnEmptyAsksForAKick) {
  for (bool event_idx : {false, true}) {
    SCOPED_TRACE(event_idx ? "EVENT_IDX" : "flags");
    FakeVirtqueueDriver driver(mem_, {.event_idx = event_idx});
    Virtqueue q = MakeQueue(driver);
    ASSERT_TRUE(q.SetNotificationsEnabled(false, mem_).ok());
    driver.AddChainBytes({{1}}, {});
    Pop(q);
    auto c = q.PopOrEnableNotification(mem_);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_FALSE(c->has_value());
    driver.AddChainBytes({{2}}, {});
    EXPECT_TRUE(driver.KickNeeded()) << "the next chain must kick the device";
  }
}

TEST_F(VirtqueueTest, PopOrEnableNotificationPassesOnABrokenRing) {
  FakeVirtqueueDriver driver(mem_);
  Virtqueue q = MakeQueue(driver);
  driver.PushAvail(0x7fff);  // a head outside the table
  EXPECT_FALSE(q.PopOrEnableNotification(mem_).ok());
}

}  // namespace
}  // namespace vmm
