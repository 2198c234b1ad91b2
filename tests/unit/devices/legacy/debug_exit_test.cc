#include "devices/legacy/debug_exit.h"

#include <cstdint>
#include <optional>

#include "gtest/gtest.h"

namespace vmm {
namespace {

class DebugExitTest : public ::testing::Test {
 protected:
  int calls_ = 0;
  std::optional<uint32_t> value_;
  DebugExit dev_{[this](uint32_t v) {
    ++calls_;
    value_ = v;
  }};
};

TEST_F(DebugExitTest, ByteWriteReportsTheValue) {
  const uint8_t v[1] = {0x31};
  dev_.Write(0, v);
  EXPECT_EQ(value_, 0x31u);
}

TEST_F(DebugExitTest, WordWriteReportsTheLittleEndianValue) {
  const uint8_t v[2] = {0x34, 0x12};
  dev_.Write(0, v);
  EXPECT_EQ(value_, 0x1234u);
}

TEST_F(DebugExitTest, DwordWriteReportsTheLittleEndianValue) {
  const uint8_t v[4] = {0x78, 0x56, 0x34, 0x12};
  dev_.Write(0, v);
  EXPECT_EQ(value_, 0x12345678u);
}

TEST_F(DebugExitTest, ZeroIsReportedToo) {
  const uint8_t v[1] = {0};
  dev_.Write(0, v);
  EXPECT_EQ(value_, 0u);
}

TEST_F(DebugExitTest, WriteAnywhereInTheRangeCounts) {
  const uint8_t v[1] = {7};
  dev_.Write(DebugExit::kSize - 1, v);
  EXPECT_EQ(value_, 7u);
}

TEST_F(DebugExitTest, ReadsReturnZeroLikeQemu) {
  uint8_t v[4] = {1, 2, 3, 4};
  dev_.Read(0, v);
  EXPECT_EQ(v[0] | v[1] | v[2] | v[3], 0);
  EXPECT_EQ(calls_, 0);
}

TEST_F(DebugExitTest, OddWidthsAndOutOfRangeWritesAreIgnored) {
  const uint8_t v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  dev_.Write(0, absl::MakeConstSpan(v, 3));
  dev_.Write(0, absl::MakeConstSpan(v, 8));
  dev_.Write(0, absl::MakeConstSpan(v, 0));
  dev_.Write(DebugExit::kSize, absl::MakeConstSpan(v, 1));
  dev_.Write(~uint64_t{0}, absl::MakeConstSpan(v, 4));
  EXPECT_EQ(calls_, 0);
}

TEST(DebugExitNoCallbackTest, WriteWithoutCallbackIsHarmless) {
  DebugExit dev(nullptr);
  const uint8_t v[1] = {1};
  dev.Write(0, v);
  uint8_t r[1] = {9};
  dev.Read(0, r);
  EXPECT_EQ(r[0], 0);
}

}  // namespace
}  // namespace vmm
