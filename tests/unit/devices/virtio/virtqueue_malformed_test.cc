// A hostile driver: every malformed queue configuration and descriptor chain
// is refused with an error (never a crash, never unbounded work), and the
// queue does not consume the offending entry.
#include <vector>

#include "devices/virtio/virtqueue.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_virtqueue_driver.h"
#include "tests/fakes/test_guest_memory.h"

namespace vmm {
namespace {

using ::testing::HasSubstr;
using ::vmm::testing::FakeVirtqueueDriver;
using ::vmm::testing::TestGuestMemory;

constexpr uint64_t kRamSize = 4 << 20;

// --- Queue configuration ------------------------------------------------------

class VirtqueueConfigTest : public ::testing::Test {
 protected:
  VirtqueueConfig Good() const {
    return VirtqueueConfig{.size = 16,
                           .desc = GuestAddress(0x10000),
                           .avail = GuestAddress(0x11000),
                           .used = GuestAddress(0x12000)};
  }
  absl::Status CreateWith(const VirtqueueConfig& c) {
    return Virtqueue::Create(c, mem_).status();
  }
  GuestMemory mem_ = TestGuestMemory(kRamSize);
};

TEST_F(VirtqueueConfigTest, WellFormedConfigIsAccepted) { EXPECT_TRUE(CreateWith(Good()).ok()); }

TEST_F(VirtqueueConfigTest, SizeZeroIsRefused) {
  VirtqueueConfig c = Good();
  c.size = 0;
  EXPECT_EQ(CreateWith(c).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(VirtqueueConfigTest, SizeNotAPowerOfTwoIsRefused) {
  for (uint16_t size : {3, 6, 100, 255, 32767, 65535}) {
    VirtqueueConfig c = Good();
    c.size = size;
    EXPECT_THAT(CreateWith(c).message(), HasSubstr("power of two")) << size;
  }
}

TEST_F(VirtqueueConfigTest, MisalignedDescriptorTableIsRefused) {
  VirtqueueConfig c = Good();
  c.desc = GuestAddress(0x10008);
  EXPECT_THAT(CreateWith(c).message(), HasSubstr("descriptor table"));
}

TEST_F(VirtqueueConfigTest, MisalignedAvailRingIsRefused) {
  VirtqueueConfig c = Good();
  c.avail = GuestAddress(0x11001);
  EXPECT_THAT(CreateWith(c).message(), HasSubstr("available ring"));
}

TEST_F(VirtqueueConfigTest, MisalignedUsedRingIsRefused) {
  VirtqueueConfig c = Good();
  c.used = GuestAddress(0x12002);
  EXPECT_THAT(CreateWith(c).message(), HasSubstr("used ring"));
}

TEST_F(VirtqueueConfigTest, DescriptorTableOutsideRamIsRefused) {
  VirtqueueConfig c = Good();
  c.desc = GuestAddress(kRamSize - 16 * 16 + 16);  // last entry hangs over the end
  EXPECT_THAT(CreateWith(c).message(), HasSubstr("not inside guest RAM"));
}

TEST_F(VirtqueueConfigTest, AvailRingOutsideRamIsRefused) {
  VirtqueueConfig c = Good();
  c.avail = GuestAddress(kRamSize - VirtqAvailRingBytes(16) + 2);  // used_event outside
  EXPECT_THAT(CreateWith(c).message(), HasSubstr("available ring"));
}

TEST_F(VirtqueueConfigTest, UsedRingOutsideRamIsRefused) {
  VirtqueueConfig c = Good();
  c.used = GuestAddress(kRamSize - VirtqUsedRingBytes(16) + 4);  // avail_event outside
  EXPECT_THAT(CreateWith(c).message(), HasSubstr("used ring"));
}

TEST_F(VirtqueueConfigTest, RingAddressNearTopOfAddressSpaceIsRefusedNotWrapped) {
  VirtqueueConfig c = Good();
  c.used = GuestAddress(~uint64_t{0} - 7);
  EXPECT_FALSE(CreateWith(c).ok());
}

TEST_F(VirtqueueConfigTest, RingStraddlingTwoRamRegionsIsRefused) {
  // Adjacent regions are separate mappings: a ring must sit in one.
  GuestMemory mem = TestGuestMemory({RamRange{GuestAddress(0), 0x10000},
                                     RamRange{GuestAddress(0x10000), 0x10000}});
  VirtqueueConfig c = Good();
  c.desc = GuestAddress(0x10000 - 0x80);  // 16 entries = 0x100 bytes
  c.avail = GuestAddress(0x11000);
  c.used = GuestAddress(0x12000);
  EXPECT_THAT(Virtqueue::Create(c, mem).status().message(), HasSubstr("descriptor table"));
}

// --- Descriptor chains -----------------------------------------------------------

class MalformedChainTest : public ::testing::Test {
 protected:
  // A queue of 8 whose driver writes raw descriptors.
  void Start(bool indirect = false, uint16_t size = 8) {
    driver_.emplace(mem_, FakeVirtqueueDriver::Options{.size = size, .indirect = indirect});
    auto q = Virtqueue::Create(driver_->config(), mem_);
    ASSERT_TRUE(q.ok()) << q.status();
    queue_.emplace(std::move(*q));
  }
  FakeVirtqueueDriver& driver() { return *driver_; }
  // Pops, expecting an error mentioning `what`; the entry stays unconsumed.
  void ExpectPopFails(absl::string_view what) {
    const uint16_t before = queue_->next_avail();
    auto c = queue_->PopChain(mem_);
    ASSERT_FALSE(c.ok()) << "popped a malformed chain";
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(c.status().message(), HasSubstr(what));
    EXPECT_EQ(queue_->next_avail(), before);
  }
  uint64_t Buf() { return driver_->Alloc(64).value(); }

  GuestMemory mem_ = TestGuestMemory(kRamSize);
  std::optional<FakeVirtqueueDriver> driver_;
  std::optional<Virtqueue> queue_;
};

TEST_F(MalformedChainTest, MalformedChainDescriptorOutsideRamIsAnError) {
  Start();
  driver().AddChain({VirtioBuffer{GuestAddress(kRamSize - 8), 16}}, {});
  ExpectPopFails("not in guest RAM");
}

TEST_F(MalformedChainTest, MalformedChainDescriptorFarBeyondRamIsAnError) {
  Start();
  driver().AddChain({}, {VirtioBuffer{GuestAddress(1ull << 40), 4096}});
  ExpectPopFails("not in guest RAM");
}

TEST_F(MalformedChainTest, MalformedChainAddressPlusLengthWrapping64BitsIsAnError) {
  Start();
  driver().AddChain({VirtioBuffer{GuestAddress(~uint64_t{0} - 0xff), 0x1000}}, {});
  ExpectPopFails("not in guest RAM");
}

TEST_F(MalformedChainTest, MalformedChainHugeLengthIsAnErrorWithoutAllocating) {
  Start();
  driver().AddChain({VirtioBuffer{GuestAddress(0), 0xffffffff}}, {});
  ExpectPopFails("not in guest RAM");
}

TEST_F(MalformedChainTest, MalformedChainLoopIsAnError) {
  Start();
  driver().WriteDesc(0, Buf(), 8, kVirtqDescFNext, 1);
  driver().WriteDesc(1, Buf(), 8, kVirtqDescFNext, 0);
  driver().PushAvail(0);
  ExpectPopFails("loop");
}

TEST_F(MalformedChainTest, MalformedChainSelfLoopIsAnError) {
  Start();
  driver().WriteDesc(3, Buf(), 8, kVirtqDescFNext, 3);
  driver().PushAvail(3);
  ExpectPopFails("loop");
}

TEST_F(MalformedChainTest, MalformedChainLongerThanTheQueueIsAnError) {
  // Every descriptor of the biggest queue is linked into a cycle: the walk
  // stops after size + 1 steps.
  Start(/*indirect=*/false, /*size=*/kVirtqMaxSize);
  const uint64_t buf = Buf();
  for (uint32_t i = 0; i < kVirtqMaxSize; ++i) {
    driver().WriteDesc(static_cast<uint16_t>(i), buf, 1, kVirtqDescFNext,
                       static_cast<uint16_t>((i + 1) % kVirtqMaxSize));
  }
  driver().PushAvail(0);
  ExpectPopFails("longer than");
}

TEST_F(MalformedChainTest, MalformedChainNextIndexOutsideTheTableIsAnError) {
  Start();
  driver().WriteDesc(0, Buf(), 8, kVirtqDescFNext, 8);
  driver().PushAvail(0);
  ExpectPopFails("outside its 8-entry table");
}

TEST_F(MalformedChainTest, MalformedChainHeadIndexNotBelowQueueSizeIsAnError) {
  Start();
  driver().PushAvail(8);
  ExpectPopFails("head 8");
}

TEST_F(MalformedChainTest, MalformedChainAvailIdxJumpingByMoreThanQueueSizeIsAnError) {
  Start();
  driver().SetAvailIdx(9);
  ExpectPopFails("more than the queue size");
}

TEST_F(MalformedChainTest, MalformedChainAvailIdxMovingBackwardsIsAnError) {
  Start();
  driver().AddChainBytes({{1}}, {});
  ASSERT_TRUE(queue_->PopChain(mem_).value().has_value());
  driver().SetAvailIdx(0);  // 0 - 1 = 65535 entries "pending"
  ExpectPopFails("more than the queue size");
}

TEST_F(MalformedChainTest, AvailIdxJumpingByExactlyQueueSizeIsAccepted) {
  Start();
  for (uint16_t i = 0; i < 8; ++i) driver().AddChainBytes({{1}}, {}, /*publish=*/false);
  driver().Publish();
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(queue_->PopChain(mem_).value().has_value());
}

TEST_F(MalformedChainTest, MalformedChainReadableAfterWritableIsAnError) {
  Start();
  driver().WriteDesc(0, Buf(), 8, kVirtqDescFWrite | kVirtqDescFNext, 1);
  driver().WriteDesc(1, Buf(), 8, 0, 0);
  driver().PushAvail(0);
  ExpectPopFails("readable after a writable");
}

TEST_F(MalformedChainTest, MalformedChainIndirectNotNegotiatedIsAnError) {
  Start(/*indirect=*/false);
  const uint64_t table = driver().Alloc(16).value();
  driver().WriteDescAt(GuestAddress(table), 0, Buf(), 8, 0, 0);
  driver().WriteDesc(0, table, 16, kVirtqDescFIndirect, 0);
  driver().PushAvail(0);
  ExpectPopFails("not negotiated");
}

TEST_F(MalformedChainTest, MalformedChainNestedIndirectIsAnError) {
  Start(/*indirect=*/true);
  const GuestAddress inner = driver().Alloc(16);
  driver().WriteDescAt(inner, 0, Buf(), 8, 0, 0);
  const GuestAddress outer = driver().Alloc(16);
  driver().WriteDescAt(outer, 0, inner.value(), 16, kVirtqDescFIndirect, 0);
  driver().WriteDesc(0, outer.value(), 16, kVirtqDescFIndirect, 0);
  driver().PushAvail(0);
  ExpectPopFails("nested");
}

TEST_F(MalformedChainTest, MalformedChainIndirectWithNextIsAnError) {
  Start(/*indirect=*/true);
  const GuestAddress table = driver().Alloc(16);
  driver().WriteDescAt(table, 0, Buf(), 8, 0, 0);
  driver().WriteDesc(0, table.value(), 16, kVirtqDescFIndirect | kVirtqDescFNext, 1);
  driver().WriteDesc(1, Buf(), 8, 0, 0);
  driver().PushAvail(0);
  ExpectPopFails("NEXT");
}

TEST_F(MalformedChainTest, MalformedChainIndirectLengthNotMultipleOf16IsAnError) {
  Start(/*indirect=*/true);
  const GuestAddress table = driver().Alloc(32);
  driver().WriteDescAt(table, 0, Buf(), 8, 0, 0);
  driver().WriteDesc(0, table.value(), 24, kVirtqDescFIndirect, 0);
  driver().PushAvail(0);
  ExpectPopFails("multiple of 16");
}

TEST_F(MalformedChainTest, MalformedChainIndirectLengthZeroIsAnError) {
  Start(/*indirect=*/true);
  driver().WriteDesc(0, driver().Alloc(16).value(), 0, kVirtqDescFIndirect, 0);
  driver().PushAvail(0);
  ExpectPopFails("multiple of 16");
}

TEST_F(MalformedChainTest, MalformedChainIndirectTableOutsideRamIsAnError) {
  Start(/*indirect=*/true);
  driver().WriteDesc(0, kRamSize - 16, 32, kVirtqDescFIndirect, 0);
  driver().PushAvail(0);
  ExpectPopFails("indirect table");
}

TEST_F(MalformedChainTest, MalformedChainIndirectTableWrapping64BitsIsAnError) {
  Start(/*indirect=*/true);
  driver().WriteDesc(0, ~uint64_t{0} - 15, 32, kVirtqDescFIndirect, 0);
  driver().PushAvail(0);
  ExpectPopFails("indirect table");
}

TEST_F(MalformedChainTest, MalformedChainIndirectTableOver1024EntriesIsAnError) {
  Start(/*indirect=*/true);
  const uint32_t entries = kVirtqMaxIndirectDescriptors + 1;
  const GuestAddress table = driver().Alloc(16ull * entries);
  for (uint32_t i = 0; i < entries; ++i) {
    const bool last = i + 1 == entries;
    driver().WriteDescAt(table, static_cast<uint16_t>(i), Buf(), 1, last ? 0 : kVirtqDescFNext,
                         static_cast<uint16_t>(i + 1));
  }
  driver().WriteDesc(0, table.value(), 16 * entries, kVirtqDescFIndirect, 0);
  driver().PushAvail(0);
  ExpectPopFails("exceeds 1024");
}

TEST_F(MalformedChainTest, IndirectTableOfExactly1024EntriesIsAccepted) {
  Start(/*indirect=*/true);
  std::vector<VirtioBuffer> readable(kVirtqMaxIndirectDescriptors,
                                     VirtioBuffer{GuestAddress(Buf()), 1});
  driver().AddIndirectChain(readable, {});
  auto c = queue_->PopChain(mem_);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->readable().size(), kVirtqMaxIndirectDescriptors);
}

TEST_F(MalformedChainTest, MalformedChainLoopInsideIndirectTableIsAnError) {
  Start(/*indirect=*/true);
  const GuestAddress table = driver().Alloc(32);
  driver().WriteDescAt(table, 0, Buf(), 8, kVirtqDescFNext, 1);
  driver().WriteDescAt(table, 1, Buf(), 8, kVirtqDescFNext, 0);
  driver().WriteDesc(0, table.value(), 32, kVirtqDescFIndirect, 0);
  driver().PushAvail(0);
  ExpectPopFails("loop");
}

TEST_F(MalformedChainTest, MalformedChainIndirectNextOutsideItsTableIsAnError) {
  Start(/*indirect=*/true);
  const GuestAddress table = driver().Alloc(32);
  driver().WriteDescAt(table, 0, Buf(), 8, kVirtqDescFNext, 2);  // table has 2 entries
  driver().WriteDesc(0, table.value(), 32, kVirtqDescFIndirect, 0);
  driver().PushAvail(0);
  ExpectPopFails("outside its 2-entry table");
}

TEST_F(MalformedChainTest, MalformedChainBufferInsideIndirectTableOutsideRamIsAnError) {
  Start(/*indirect=*/true);
  driver().AddIndirectChain({}, {VirtioBuffer{GuestAddress(kRamSize), 1}});
  ExpectPopFails("not in guest RAM");
}

TEST_F(MalformedChainTest, MalformedChainReadableAfterWritableAcrossIndirectIsAnError) {
  Start(/*indirect=*/true);
  const GuestAddress table = driver().Alloc(16);
  driver().WriteDescAt(table, 0, Buf(), 8, 0, 0);  // readable
  driver().WriteDesc(0, Buf(), 8, kVirtqDescFWrite | kVirtqDescFNext, 1);
  driver().WriteDesc(1, table.value(), 16, kVirtqDescFIndirect, 0);
  driver().PushAvail(0);
  ExpectPopFails("readable after a writable");
}

TEST_F(MalformedChainTest, MalformedChainStaysAnErrorAndDoesNotAdvanceTheQueue) {
  Start();
  driver().AddChain({VirtioBuffer{GuestAddress(kRamSize), 1}}, {});
  ExpectPopFails("not in guest RAM");
  ExpectPopFails("not in guest RAM");
}

}  // namespace
}  // namespace vmm
