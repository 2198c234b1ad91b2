#include "devices/legacy/pvpanic.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace vmm {
namespace {

class PvpanicTest : public ::testing::Test {
 protected:
  void WriteByte(uint8_t value, uint64_t offset = 0) {
    const uint8_t v[1] = {value};
    dev_.Write(offset, v);
  }

  int panics_ = 0;
  int crash_loads_ = 0;
  Pvpanic dev_{[this] { ++panics_; }, [this] { ++crash_loads_; }};
};

TEST_F(PvpanicTest, ReadReturnsPanickedAndCrashLoadedAsSupportedEvents) {
  uint8_t v[1] = {0};
  dev_.Read(0, v);
  EXPECT_EQ(v[0], 0x03);
}

TEST_F(PvpanicTest, WideReadHasTheEventsInTheLowByteOnly) {
  uint8_t v[4] = {9, 9, 9, 9};
  dev_.Read(0, v);
  EXPECT_EQ(v[0], 0x03);
  EXPECT_EQ(v[1] | v[2] | v[3], 0);
}

TEST_F(PvpanicTest, WritingPanickedCallsOnPanic) {
  WriteByte(Pvpanic::kPanicked);
  EXPECT_EQ(panics_, 1);
  EXPECT_EQ(crash_loads_, 0);
}

TEST_F(PvpanicTest, WritingCrashLoadedCallsOnlyOnCrashLoaded) {
  WriteByte(Pvpanic::kCrashLoaded);
  EXPECT_EQ(crash_loads_, 1);
  EXPECT_EQ(panics_, 0);
}

TEST_F(PvpanicTest, PanickedWinsWhenBothBitsAreWrittenLikeQemu) {
  WriteByte(Pvpanic::kPanicked | Pvpanic::kCrashLoaded);
  EXPECT_EQ(panics_, 1);
  EXPECT_EQ(crash_loads_, 0);
}

TEST_F(PvpanicTest, UnknownBitsAreIgnored) {
  WriteByte(0x00);
  WriteByte(0x04);  // QEMU's PVPANIC_SHUTDOWN: not advertised here
  WriteByte(0xfc);
  EXPECT_EQ(panics_ + crash_loads_, 0);
  WriteByte(0xfd);
  EXPECT_EQ(panics_, 1);
}

TEST_F(PvpanicTest, WideWriteUsesTheLowByte) {
  const uint8_t v[4] = {0x01, 0x00, 0x00, 0x00};
  dev_.Write(0, v);
  EXPECT_EQ(panics_, 1);
  const uint8_t high_only[2] = {0x00, 0x01};
  dev_.Write(0, high_only);
  EXPECT_EQ(panics_, 1);
}

TEST_F(PvpanicTest, HostileOffsetsAndWidthsAreIgnored) {
  const uint8_t v[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  dev_.Write(0, absl::MakeConstSpan(v, 0));
  dev_.Write(1, absl::MakeConstSpan(v, 1));
  dev_.Write(~uint64_t{0}, absl::MakeConstSpan(v, 8));
  EXPECT_EQ(panics_ + crash_loads_, 0);
  uint8_t r[8] = {7, 7, 7, 7, 7, 7, 7, 7};
  dev_.Read(~uint64_t{0}, r);
  for (uint8_t b : r) EXPECT_EQ(b, 0);
  dev_.Read(0, absl::MakeSpan(r, 0));
}

TEST(PvpanicNoCallbackTest, EventsWithoutCallbacksAreHarmless) {
  Pvpanic dev(nullptr);
  const uint8_t v[1] = {0x03};
  dev.Write(0, v);
  const uint8_t c[1] = {Pvpanic::kCrashLoaded};
  dev.Write(0, c);
  uint8_t r[1] = {0};
  dev.Read(0, r);
  EXPECT_EQ(r[0], Pvpanic::kSupportedEvents);
}

}  // namespace
}  // namespace vmm
