// DescriptorChain: copies across buffer boundaries, offsets, byte counts and
// host iovecs over sub-ranges.
#include "devices/virtio/descriptor_chain.h"

#include <cstring>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/test_guest_memory.h"

namespace vmm {
namespace {

using ::vmm::testing::TestGuestMemory;

class DescriptorChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<uint8_t> pattern(0x3000);
    for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<uint8_t>(i * 7 + 1);
    ASSERT_TRUE(mem_.WriteBytes(GuestAddress(0x1000), pattern).ok());
  }
  std::vector<uint8_t> Guest(uint64_t addr, size_t len) {
    std::vector<uint8_t> out(len);
    EXPECT_TRUE(mem_.ReadBytes(GuestAddress(addr), absl::MakeSpan(out)).ok());
    return out;
  }
  // Readable: 3 bytes at 0x1000, 5 at 0x2000, 2 at 0x3000.
  // Writable: 4 bytes at 0x8000, 4 at 0x9000.
  DescriptorChain Chain() {
    return DescriptorChain(
        3,
        {{GuestAddress(0x1000), 3}, {GuestAddress(0x2000), 5}, {GuestAddress(0x3000), 2}},
        {{GuestAddress(0x8000), 4}, {GuestAddress(0x9000), 4}});
  }
  std::vector<uint8_t> Readable() {
    std::vector<uint8_t> out = Guest(0x1000, 3);
    for (auto [a, n] : {std::pair<uint64_t, size_t>{0x2000, 5}, {0x3000, 2}}) {
      auto part = Guest(a, n);
      out.insert(out.end(), part.begin(), part.end());
    }
    return out;
  }

  GuestMemory mem_ = TestGuestMemory(1 << 20);
};

TEST_F(DescriptorChainTest, ByteCountsSumEachDirection) {
  DescriptorChain c = Chain();
  EXPECT_EQ(c.readable_bytes(), 10u);
  EXPECT_EQ(c.writable_bytes(), 8u);
}

TEST_F(DescriptorChainTest, ByteCountsDoNotOverflow32Bits) {
  DescriptorChain c(0, {{GuestAddress(0), 0xffffffff}, {GuestAddress(0), 0xffffffff}},
                    {{GuestAddress(0), 0xffffffff}, {GuestAddress(0), 2}});
  EXPECT_EQ(c.readable_bytes(), 2 * 0xffffffffull);
  EXPECT_EQ(c.writable_bytes(), 0xffffffffull + 2);
}

TEST_F(DescriptorChainTest, ReadFromCopiesAcrossBufferBoundaries) {
  DescriptorChain c = Chain();
  std::vector<uint8_t> out(10);
  EXPECT_EQ(c.ReadFrom(mem_, 0, absl::MakeSpan(out)), 10u);
  EXPECT_EQ(out, Readable());
}

TEST_F(DescriptorChainTest, ReadFromAtOffsetStartsInsideALaterBuffer) {
  DescriptorChain c = Chain();
  std::vector<uint8_t> out(4);
  EXPECT_EQ(c.ReadFrom(mem_, 5, absl::MakeSpan(out)), 4u);
  const std::vector<uint8_t> all = Readable();
  EXPECT_EQ(out, std::vector<uint8_t>(all.begin() + 5, all.begin() + 9));
}

TEST_F(DescriptorChainTest, ReadFromStopsAtTheEndOfTheReadablePart) {
  DescriptorChain c = Chain();
  std::vector<uint8_t> out(100, 0xee);
  EXPECT_EQ(c.ReadFrom(mem_, 7, absl::MakeSpan(out)), 3u);
  EXPECT_EQ(out[3], 0xee);
  EXPECT_EQ(c.ReadFrom(mem_, 10, absl::MakeSpan(out)), 0u);
  EXPECT_EQ(c.ReadFrom(mem_, ~uint64_t{0}, absl::MakeSpan(out)), 0u);
}

TEST_F(DescriptorChainTest, WriteToFillsWritableBuffersInOrder) {
  DescriptorChain c = Chain();
  const std::vector<uint8_t> data = {1, 2, 3, 4, 5, 6};
  EXPECT_EQ(c.WriteTo(mem_, 1, data), 6u);
  EXPECT_EQ(Guest(0x8000, 4), (std::vector<uint8_t>{0, 1, 2, 3}));
  EXPECT_EQ(Guest(0x9000, 4), (std::vector<uint8_t>{4, 5, 6, 0}));
}

TEST_F(DescriptorChainTest, WriteToReportsOnlyTheBytesThatFitted) {
  DescriptorChain c = Chain();
  const std::vector<uint8_t> data(20, 9);
  EXPECT_EQ(c.WriteTo(mem_, 6, data), 2u);
  EXPECT_EQ(Guest(0x9000, 4), (std::vector<uint8_t>{0, 0, 9, 9}));
  EXPECT_EQ(Guest(0x9004, 1), std::vector<uint8_t>{0});  // nothing past the buffer
}

TEST_F(DescriptorChainTest, WriteToNeverTouchesReadableBuffers) {
  DescriptorChain c(0, {{GuestAddress(0x1000), 3}}, {});
  const std::vector<uint8_t> before = Guest(0x1000, 3);
  EXPECT_EQ(c.WriteTo(mem_, 0, std::vector<uint8_t>(3, 0)), 0u);
  EXPECT_EQ(Guest(0x1000, 3), before);
}

TEST_F(DescriptorChainTest, CopiesAgainstMemoryWithoutTheBufferStopShort) {
  // A chain used with the wrong (smaller) memory copies what it can, no more.
  GuestMemory small = TestGuestMemory(0x2000);
  DescriptorChain c = Chain();
  std::vector<uint8_t> out(10);
  EXPECT_EQ(c.ReadFrom(small, 0, absl::MakeSpan(out)), 3u);
  EXPECT_EQ(c.WriteTo(small, 0, out), 0u);
}

TEST_F(DescriptorChainTest, ReadableIovecsCoverASubRangeAcrossBuffers) {
  DescriptorChain c = Chain();
  auto iov = c.ReadableIovecs(mem_, 2, 7);
  ASSERT_TRUE(iov.ok()) << iov.status();
  ASSERT_EQ(iov->size(), 3u);
  EXPECT_EQ((*iov)[0].iov_len, 1u);
  EXPECT_EQ((*iov)[1].iov_len, 5u);
  EXPECT_EQ((*iov)[2].iov_len, 1u);
  std::vector<uint8_t> gathered;
  for (const iovec& v : *iov) {
    const uint8_t* p = static_cast<const uint8_t*>(v.iov_base);
    gathered.insert(gathered.end(), p, p + v.iov_len);
  }
  const std::vector<uint8_t> all = Readable();
  EXPECT_EQ(gathered, std::vector<uint8_t>(all.begin() + 2, all.begin() + 9));
}

TEST_F(DescriptorChainTest, WritableIovecsPointIntoGuestMemory) {
  DescriptorChain c = Chain();
  auto iov = c.WritableIovecs(mem_, 3, 2);
  ASSERT_TRUE(iov.ok()) << iov.status();
  ASSERT_EQ(iov->size(), 2u);
  std::memset((*iov)[0].iov_base, 0xaa, (*iov)[0].iov_len);
  std::memset((*iov)[1].iov_base, 0xbb, (*iov)[1].iov_len);
  EXPECT_EQ(Guest(0x8000, 4), (std::vector<uint8_t>{0, 0, 0, 0xaa}));
  EXPECT_EQ(Guest(0x9000, 4), (std::vector<uint8_t>{0xbb, 0, 0, 0}));
}

TEST_F(DescriptorChainTest, EmptyIovecRangeIsEmpty) {
  DescriptorChain c = Chain();
  auto iov = c.WritableIovecs(mem_, 8, 0);
  ASSERT_TRUE(iov.ok());
  EXPECT_TRUE(iov->empty());
}

TEST_F(DescriptorChainTest, IovecRangeBeyondThePartIsOutOfRange) {
  DescriptorChain c = Chain();
  EXPECT_EQ(c.ReadableIovecs(mem_, 5, 6).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(c.WritableIovecs(mem_, 9, 0).status().code(), absl::StatusCode::kOutOfRange);
  // offset + len wraps 64 bits.
  EXPECT_EQ(c.ReadableIovecs(mem_, 2, ~uint64_t{0}).status().code(),
            absl::StatusCode::kOutOfRange);
}

TEST_F(DescriptorChainTest, ChainIsMoveOnlyAndKeepsItsBuffersWhenMoved) {
  static_assert(!std::is_copy_constructible_v<DescriptorChain>);
  DescriptorChain a = Chain();
  DescriptorChain b = std::move(a);
  EXPECT_EQ(b.head(), 3);
  EXPECT_EQ(b.readable().size(), 3u);
  EXPECT_EQ(b.writable().size(), 2u);
}

}  // namespace
}  // namespace vmm
