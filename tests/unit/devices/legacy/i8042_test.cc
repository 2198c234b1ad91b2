#include "devices/legacy/i8042.h"

#include <cstdint>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vmm {
namespace {

using ::testing::ElementsAre;

constexpr uint64_t kData = I8042::kDataOffset;
constexpr uint64_t kCommand = I8042::kCommandOffset;
constexpr uint8_t kOutputFull = 0x01, kInputFull = 0x02, kAuxData = 0x20;

class I8042Test : public ::testing::Test {
 protected:
  uint8_t In(uint64_t port) {
    uint8_t v = 0;
    dev_.Read(port, absl::MakeSpan(&v, 1));
    return v;
  }
  void Out(uint64_t port, uint8_t v) { dev_.Write(port, absl::MakeConstSpan(&v, 1)); }
  // Issues a command and returns its one-byte answer.
  uint8_t Ask(uint8_t command) {
    Out(kCommand, command);
    EXPECT_TRUE(In(kCommand) & kOutputFull) << "command 0x" << std::hex << int{command};
    return In(kData);
  }

  int resets_ = 0;
  I8042 dev_{[this] { ++resets_; }};
};

TEST_F(I8042Test, StartsWithBothBuffersEmpty) {
  EXPECT_EQ(In(kCommand) & (kOutputFull | kInputFull), 0);
}

TEST_F(I8042Test, PulseResetCommandCallsOnReset) {
  Out(kCommand, 0xfe);
  EXPECT_EQ(resets_, 1);
}

TEST_F(I8042Test, PulseWithoutTheResetLineDoesNotReset) {
  Out(kCommand, 0xff);
  Out(kCommand, 0xf1);
  EXPECT_EQ(resets_, 0);
}

TEST_F(I8042Test, ClearingTheResetBitOfTheOutputPortResets) {
  Out(kCommand, 0xd1);
  Out(kData, 0x03);  // A20 on, reset line high
  EXPECT_EQ(resets_, 0);
  EXPECT_EQ(Ask(0xd0), 0x03);
  Out(kCommand, 0xd1);
  Out(kData, 0x02);
  EXPECT_EQ(resets_, 1);
}

TEST_F(I8042Test, ResetCallbackMayAccessTheDevice) {
  I8042* self = nullptr;
  uint8_t status = 0;
  I8042 dev([&] { self->Read(kCommand, absl::MakeSpan(&status, 1)); });
  self = &dev;
  uint8_t cmd = 0xfe;
  dev.Write(kCommand, absl::MakeConstSpan(&cmd, 1));  // would deadlock under the lock
  EXPECT_EQ(status & kInputFull, 0);
}

TEST_F(I8042Test, SelfTestAnswers55AndEmptiesTheOutputBufferWhenRead) {
  EXPECT_EQ(Ask(0xaa), 0x55);
  EXPECT_EQ(In(kCommand) & kOutputFull, 0);
}

TEST_F(I8042Test, InterfaceTestsAnswerNoError) {
  EXPECT_EQ(Ask(0xab), 0x00);
  EXPECT_EQ(Ask(0xa9), 0x00);
}

TEST_F(I8042Test, CommandByteRoundTrips) {
  EXPECT_EQ(Ask(0x20), 0x45);  // as a BIOS leaves it
  Out(kCommand, 0x60);
  Out(kData, 0x74);
  EXPECT_EQ(Ask(0x20), 0x74);
}

TEST_F(I8042Test, DisableAndEnableCommandsToggleCommandByteBits) {
  Out(kCommand, 0xad);
  EXPECT_EQ(Ask(0x20) & 0x10, 0x10);
  Out(kCommand, 0xae);
  EXPECT_EQ(Ask(0x20) & 0x10, 0);
  Out(kCommand, 0xa7);
  EXPECT_EQ(Ask(0x20) & 0x20, 0x20);
  Out(kCommand, 0xa8);
  EXPECT_EQ(Ask(0x20) & 0x20, 0);
}

// Linux's AUX loopback test expects the byte back, marked as AUX data.
TEST_F(I8042Test, AuxLoopbackReturnsTheByteAsAuxData) {
  Out(kCommand, 0xd3);
  Out(kData, 0x5a);
  EXPECT_EQ(In(kCommand) & (kOutputFull | kAuxData), kOutputFull | kAuxData);
  EXPECT_EQ(In(kData), 0x5a);
  EXPECT_EQ(In(kCommand) & (kOutputFull | kAuxData), 0);
}

TEST_F(I8042Test, KeyboardOutputWriteReturnsTheByteAsKeyboardData) {
  Out(kCommand, 0xd2);
  Out(kData, 0x1c);
  EXPECT_EQ(In(kCommand) & (kOutputFull | kAuxData), kOutputFull);
  EXPECT_EQ(In(kData), 0x1c);
}

// Linux's i8042_flush reads until OBF clears; it must clear.
TEST_F(I8042Test, ReadingAnEmptyOutputBufferLeavesItEmpty) {
  In(kData);
  In(kData);
  EXPECT_EQ(In(kCommand) & kOutputFull, 0);
}

TEST_F(I8042Test, BytesForTheAbsentKeyboardAreDropped) {
  Out(kData, 0xf2);  // identify keyboard
  EXPECT_EQ(In(kCommand) & (kOutputFull | kInputFull), 0);
}

TEST_F(I8042Test, StatusTellsWhetherTheLastWriteWasACommand) {
  Out(kCommand, 0xad);
  EXPECT_EQ(In(kCommand) & 0x08, 0x08);
  Out(kData, 0x00);
  EXPECT_EQ(In(kCommand) & 0x08, 0);
}

TEST_F(I8042Test, NewCommandAbandonsOneWaitingForItsParameter) {
  Out(kCommand, 0x60);
  EXPECT_EQ(Ask(0x20), 0x45);
  Out(kData, 0x00);  // no longer the command byte
  EXPECT_EQ(Ask(0x20), 0x45);
}

TEST_F(I8042Test, HostileAccessesNeverCrashOrReset) {
  uint8_t wide[8];
  dev_.Read(0, absl::MakeSpan(wide, 4));
  EXPECT_THAT(absl::MakeSpan(wide, 4), ElementsAre(0x00, 0xff, 0xff, 0xff));
  dev_.Read(1, absl::MakeSpan(wide, 8));  // byte 3 is the status port
  EXPECT_THAT(absl::MakeSpan(wide, 8), ElementsAre(0xff, 0xff, 0xff, 0x14, 0xff, 0xff, 0xff, 0xff));
  dev_.Read(~uint64_t{0}, wide);
  const uint8_t junk[8] = {0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe};
  dev_.Write(1, absl::MakeConstSpan(junk, 3));
  dev_.Write(5, junk);
  dev_.Write(~uint64_t{0}, junk);
  EXPECT_EQ(resets_, 0);
  dev_.Write(1, absl::MakeConstSpan(junk, 4));  // the fourth byte lands on the command port
  EXPECT_EQ(resets_, 1);
}

// Snapshots (issue 15): the command byte and a byte waiting in the output
// buffer come back in a restored controller; a damaged state is refused.
TEST_F(I8042Test, ARestoredControllerKeepsItsCommandByteAndOutput) {
  Out(kCommand, 0x60);
  Out(kData, 0x74);
  Out(kCommand, 0x20);  // the answer waits in the output buffer
  const std::string state = dev_.SaveState();
  int resets = 0;
  I8042 restored([&resets] { ++resets; });
  ASSERT_TRUE(restored.RestoreState(state).ok());
  uint8_t status = 0, data = 0;
  restored.Read(kCommand, absl::MakeSpan(&status, 1));
  EXPECT_TRUE(status & kOutputFull);
  restored.Read(kData, absl::MakeSpan(&data, 1));
  EXPECT_EQ(data, 0x74);
  EXPECT_EQ(resets, 0);
  EXPECT_EQ(restored.RestoreState(state.substr(1)).code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace vmm
