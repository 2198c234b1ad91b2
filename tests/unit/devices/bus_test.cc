#include "devices/bus.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace vmm {
namespace {

// Records accesses and answers reads with the low byte of the offset.
class RecordingDevice : public BusDevice {
 public:
  void Read(uint64_t offset, absl::Span<uint8_t> data) override {
    for (auto& b : data) b = static_cast<uint8_t>(offset);
  }
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override {
    writes.push_back({offset, data.size()});
  }
  std::vector<std::pair<uint64_t, size_t>> writes;
};

TEST(BusTest, AccessesReachDeviceWithOffsetRelativeToBase) {
  Bus bus;
  auto dev = std::make_shared<RecordingDevice>();
  ASSERT_TRUE(bus.Insert(dev, 0x3f8, 8).ok());
  uint8_t v = 0;
  EXPECT_TRUE(bus.Read(0x3fd, absl::MakeSpan(&v, 1)));
  EXPECT_EQ(v, 5);
  uint8_t w[2] = {1, 2};
  EXPECT_TRUE(bus.Write(0x3fe, w));
  ASSERT_EQ(dev->writes.size(), 1u);
  EXPECT_EQ(dev->writes[0].first, 6u);
  EXPECT_EQ(dev->writes[0].second, 2u);
}

TEST(BusTest, UnmappedReadsReturnAllOnes) {
  Bus bus;
  uint32_t v = 0;
  EXPECT_FALSE(bus.Read(0x1000, absl::MakeSpan(reinterpret_cast<uint8_t*>(&v), 4)));
  EXPECT_EQ(v, 0xffffffffu);
}

TEST(BusTest, AccessStraddlingTheEndOfARangeIsNotDispatched) {
  Bus bus;
  auto dev = std::make_shared<RecordingDevice>();
  ASSERT_TRUE(bus.Insert(dev, 0x100, 4).ok());
  uint8_t w[4] = {};
  EXPECT_FALSE(bus.Write(0x102, w));
  EXPECT_TRUE(dev->writes.empty());
}

TEST(BusTest, OverlappingRangesAreRejected) {
  Bus bus;
  auto dev = std::make_shared<RecordingDevice>();
  ASSERT_TRUE(bus.Insert(dev, 0x100, 0x10).ok());
  EXPECT_FALSE(bus.Insert(dev, 0x10f, 1).ok());
  EXPECT_FALSE(bus.Insert(dev, 0xf0, 0x11).ok());
  EXPECT_FALSE(bus.Insert(dev, 0x0, 0x1000).ok());
  EXPECT_TRUE(bus.Insert(dev, 0x110, 0x10).ok());
  EXPECT_TRUE(bus.Insert(dev, 0xf0, 0x10).ok());
  EXPECT_FALSE(bus.Insert(dev, 0x200, 0).ok());
  EXPECT_FALSE(bus.Insert(dev, ~0ull, 2).ok()) << "wraps";
  EXPECT_TRUE(bus.Insert(dev, ~0ull, 1).ok()) << "last byte of the space";
}

TEST(BusTest, RemovedRangeNoLongerDispatches) {
  Bus bus;
  auto dev = std::make_shared<RecordingDevice>();
  ASSERT_TRUE(bus.Insert(dev, 0x100, 0x10).ok());
  ASSERT_TRUE(bus.Remove(0x100).ok());
  uint8_t w = 0;
  EXPECT_FALSE(bus.Write(0x100, absl::MakeSpan(&w, 1)));
  EXPECT_FALSE(bus.Remove(0x100).ok());
}

}  // namespace
}  // namespace vmm
