#include "devices/legacy/cmos_rtc.h"

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_irq_line.h"

namespace vmm {
namespace {

absl::Time Utc(int64_t y, int mo, int d, int h, int mi, int s) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

// A register access the way a guest makes it: index port, then data port.
uint8_t ReadRegister(CmosRtc& rtc, uint8_t index) {
  const uint8_t i[1] = {index};
  rtc.Write(CmosRtc::kIndexOffset, i);
  uint8_t v[1] = {0};
  rtc.Read(CmosRtc::kDataOffset, v);
  return v[0];
}
void WriteRegister(CmosRtc& rtc, uint8_t index, uint8_t value) {
  const uint8_t i[1] = {index};
  rtc.Write(CmosRtc::kIndexOffset, i);
  const uint8_t v[1] = {value};
  rtc.Write(CmosRtc::kDataOffset, v);
}

class CmosRtcTest : public ::testing::Test {
 protected:
  uint8_t ReadReg(uint8_t index) { return ReadRegister(rtc_, index); }
  void WriteReg(uint8_t index, uint8_t value) { WriteRegister(rtc_, index, value); }
  // What Linux's mc146818_set_time does: SET, hold the divider in reset,
  // write the fields, restore B then A.
  void SetTimeLikeLinux(uint8_t century, uint8_t year, uint8_t month, uint8_t day, uint8_t hour,
                        uint8_t minute, uint8_t second) {
    const uint8_t b = ReadReg(CmosRtc::kRegisterB);
    WriteReg(CmosRtc::kRegisterB, b | CmosRtc::kBSet);
    const uint8_t a = ReadReg(CmosRtc::kRegisterA);
    WriteReg(CmosRtc::kRegisterA, a | 0x70);
    WriteReg(CmosRtc::kYear, year);
    WriteReg(CmosRtc::kMonth, month);
    WriteReg(CmosRtc::kDayOfMonth, day);
    WriteReg(CmosRtc::kHours, hour);
    WriteReg(CmosRtc::kMinutes, minute);
    WriteReg(CmosRtc::kSeconds, second);
    WriteReg(CmosRtc::kCentury, century);
    WriteReg(CmosRtc::kRegisterB, b);
    WriteReg(CmosRtc::kRegisterA, a);
  }

  // Monday 2026-11-23 14:05:09.5 UTC.
  absl::Time now_ = Utc(2026, 11, 23, 14, 5, 9) + absl::Milliseconds(500);
  CmosRtc rtc_{[this] { return now_; }};
};

TEST_F(CmosRtcTest, TimeAndDateReadInBcdAnd24HourByDefault) {
  EXPECT_EQ(ReadReg(CmosRtc::kSeconds), 0x09);
  EXPECT_EQ(ReadReg(CmosRtc::kMinutes), 0x05);
  EXPECT_EQ(ReadReg(CmosRtc::kHours), 0x14);
  EXPECT_EQ(ReadReg(CmosRtc::kDayOfWeek), 0x02);  // Monday; Sunday is 1
  EXPECT_EQ(ReadReg(CmosRtc::kDayOfMonth), 0x23);
  EXPECT_EQ(ReadReg(CmosRtc::kMonth), 0x11);
  EXPECT_EQ(ReadReg(CmosRtc::kYear), 0x26);
  EXPECT_EQ(ReadReg(CmosRtc::kCentury), 0x20);
}

TEST_F(CmosRtcTest, PowerOnStatusRegistersAreLikeQemus) {
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterA), 0x26);
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterB), 0x02);
}

TEST_F(CmosRtcTest, DmBitSelectsBinary) {
  WriteReg(CmosRtc::kRegisterB, CmosRtc::kB24Hour | CmosRtc::kBBinary);
  EXPECT_EQ(ReadReg(CmosRtc::kSeconds), 9);
  EXPECT_EQ(ReadReg(CmosRtc::kMinutes), 5);
  EXPECT_EQ(ReadReg(CmosRtc::kHours), 14);
  EXPECT_EQ(ReadReg(CmosRtc::kDayOfWeek), 2);
  EXPECT_EQ(ReadReg(CmosRtc::kDayOfMonth), 23);
  EXPECT_EQ(ReadReg(CmosRtc::kMonth), 11);
  EXPECT_EQ(ReadReg(CmosRtc::kYear), 26);
  EXPECT_EQ(ReadReg(CmosRtc::kCentury), 20);
}

TEST_F(CmosRtcTest, TwelveHourModeReportsPmInBit7) {
  WriteReg(CmosRtc::kRegisterB, 0x00);  // BCD, 12-hour
  EXPECT_EQ(ReadReg(CmosRtc::kHours), 0x82);
  WriteReg(CmosRtc::kRegisterB, CmosRtc::kBBinary);  // binary, 12-hour
  EXPECT_EQ(ReadReg(CmosRtc::kHours), 0x82);
  now_ = Utc(2026, 11, 23, 23, 0, 0);
  EXPECT_EQ(ReadReg(CmosRtc::kHours), 0x8b);
  WriteReg(CmosRtc::kRegisterB, 0x00);
  EXPECT_EQ(ReadReg(CmosRtc::kHours), 0x91);
}

TEST_F(CmosRtcTest, TwelveHourModeCallsMidnight12AmAndNoon12Pm) {
  WriteReg(CmosRtc::kRegisterB, 0x00);
  now_ = Utc(2026, 11, 23, 0, 30, 0);
  EXPECT_EQ(ReadReg(CmosRtc::kHours), 0x12);
  now_ = Utc(2026, 11, 23, 12, 30, 0);
  EXPECT_EQ(ReadReg(CmosRtc::kHours), 0x92);
  now_ = Utc(2026, 11, 23, 9, 30, 0);
  EXPECT_EQ(ReadReg(CmosRtc::kHours), 0x09);
}

TEST_F(CmosRtcTest, TimeFollowsTheHostClock) {
  now_ += absl::Seconds(61);
  EXPECT_EQ(ReadReg(CmosRtc::kSeconds), 0x10);
  EXPECT_EQ(ReadReg(CmosRtc::kMinutes), 0x06);
  now_ = Utc(2099, 12, 31, 23, 59, 59) + absl::Seconds(1);
  EXPECT_EQ(ReadReg(CmosRtc::kYear), 0x00);
  EXPECT_EQ(ReadReg(CmosRtc::kCentury), 0x21);
  EXPECT_EQ(ReadReg(CmosRtc::kMonth), 0x01);
  EXPECT_EQ(ReadReg(CmosRtc::kDayOfMonth), 0x01);
}

TEST_F(CmosRtcTest, TimeSetWithTheSetBitIsKeptAndAdvances) {
  SetTimeLikeLinux(0x19, 0x99, 0x12, 0x31, 0x23, 0x59, 0x50);
  EXPECT_EQ(ReadReg(CmosRtc::kSeconds), 0x50);
  now_ += absl::Seconds(15);
  EXPECT_EQ(ReadReg(CmosRtc::kSeconds), 0x05);
  EXPECT_EQ(ReadReg(CmosRtc::kMinutes), 0x00);
  EXPECT_EQ(ReadReg(CmosRtc::kHours), 0x00);
  EXPECT_EQ(ReadReg(CmosRtc::kDayOfMonth), 0x01);
  EXPECT_EQ(ReadReg(CmosRtc::kMonth), 0x01);
  EXPECT_EQ(ReadReg(CmosRtc::kYear), 0x00);
  EXPECT_EQ(ReadReg(CmosRtc::kCentury), 0x20);
  EXPECT_EQ(ReadReg(CmosRtc::kDayOfWeek), 0x07);  // 2000-01-01 was a Saturday
}

TEST_F(CmosRtcTest, TimeSetInBinaryIsReadBackInBcd) {
  WriteReg(CmosRtc::kRegisterB, CmosRtc::kB24Hour | CmosRtc::kBBinary);
  SetTimeLikeLinux(20, 30, 6, 15, 8, 45, 0);
  WriteReg(CmosRtc::kRegisterB, CmosRtc::kB24Hour);
  EXPECT_EQ(ReadReg(CmosRtc::kYear), 0x30);
  EXPECT_EQ(ReadReg(CmosRtc::kMonth), 0x06);
  EXPECT_EQ(ReadReg(CmosRtc::kDayOfMonth), 0x15);
  EXPECT_EQ(ReadReg(CmosRtc::kHours), 0x08);
  EXPECT_EQ(ReadReg(CmosRtc::kMinutes), 0x45);
}

TEST_F(CmosRtcTest, TimeSetIn12HourModeUnderstandsPm) {
  WriteReg(CmosRtc::kRegisterB, 0x00);  // BCD, 12-hour
  SetTimeLikeLinux(0x20, 0x26, 0x01, 0x02, 0x80 | 0x07, 0x00, 0x00);  // 7 PM
  WriteReg(CmosRtc::kRegisterB, CmosRtc::kB24Hour);
  EXPECT_EQ(ReadReg(CmosRtc::kHours), 0x19);
  WriteReg(CmosRtc::kRegisterB, 0x00);
  SetTimeLikeLinux(0x20, 0x26, 0x01, 0x02, 0x12, 0x00, 0x00);  // 12 AM
  WriteReg(CmosRtc::kRegisterB, CmosRtc::kB24Hour);
  EXPECT_EQ(ReadReg(CmosRtc::kHours), 0x00);
}

TEST_F(CmosRtcTest, SetBitFreezesTheTimeRegisters) {
  WriteReg(CmosRtc::kRegisterB, CmosRtc::kB24Hour | CmosRtc::kBSet);
  now_ += absl::Seconds(10);
  EXPECT_EQ(ReadReg(CmosRtc::kSeconds), 0x09);
  WriteReg(CmosRtc::kSeconds, 0x30);
  now_ += absl::Seconds(10);
  EXPECT_EQ(ReadReg(CmosRtc::kSeconds), 0x30);
  WriteReg(CmosRtc::kRegisterB, CmosRtc::kB24Hour);
  now_ += absl::Seconds(2);
  EXPECT_EQ(ReadReg(CmosRtc::kSeconds), 0x32);
  EXPECT_EQ(ReadReg(CmosRtc::kMinutes), 0x05);
}

TEST_F(CmosRtcTest, SettingSetClearsUpdateEndedInterruptEnable) {
  WriteReg(CmosRtc::kRegisterB, CmosRtc::kB24Hour | CmosRtc::kBUpdateEndedIrqEnable);
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterB), 0x12);
  WriteReg(CmosRtc::kRegisterB, CmosRtc::kB24Hour | CmosRtc::kBSet | 0x10);
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterB), 0x82);
}

TEST_F(CmosRtcTest, WriteToATimeRegisterWhileRunningTakesEffectAtOnce) {
  WriteReg(CmosRtc::kMinutes, 0x45);
  EXPECT_EQ(ReadReg(CmosRtc::kMinutes), 0x45);
  EXPECT_EQ(ReadReg(CmosRtc::kSeconds), 0x09);
  EXPECT_EQ(ReadReg(CmosRtc::kHours), 0x14);
  now_ += absl::Milliseconds(600);  // the sub-second phase was kept
  EXPECT_EQ(ReadReg(CmosRtc::kSeconds), 0x10);
  EXPECT_EQ(ReadReg(CmosRtc::kMinutes), 0x45);
}

TEST_F(CmosRtcTest, NvramRoundTripsEveryNonClockByte) {
  for (int i = 0x0e; i < 0x80; ++i) {
    if (i == CmosRtc::kCentury) continue;
    WriteReg(static_cast<uint8_t>(i), static_cast<uint8_t>(i ^ 0x5a));
  }
  for (int i = 0x0e; i < 0x80; ++i) {
    if (i == CmosRtc::kCentury) continue;
    EXPECT_EQ(ReadReg(static_cast<uint8_t>(i)), i ^ 0x5a) << "register " << i;
  }
}

TEST_F(CmosRtcTest, AlarmRegistersAreStorage) {
  WriteReg(CmosRtc::kSecondsAlarm, 0x11);
  WriteReg(CmosRtc::kMinutesAlarm, 0x22);
  WriteReg(CmosRtc::kHoursAlarm, 0xc0);  // "don't care"
  EXPECT_EQ(ReadReg(CmosRtc::kSecondsAlarm), 0x11);
  EXPECT_EQ(ReadReg(CmosRtc::kMinutesAlarm), 0x22);
  EXPECT_EQ(ReadReg(CmosRtc::kHoursAlarm), 0xc0);
  EXPECT_EQ(ReadReg(CmosRtc::kSeconds), 0x09);
}

TEST_F(CmosRtcTest, IndexBit7IsTheNmiMaskNotPartOfTheIndex) {
  WriteReg(0x80 | 0x40, 0xab);
  EXPECT_EQ(ReadReg(0x40), 0xab);
  EXPECT_EQ(ReadReg(0x80 | 0x40), 0xab);
  EXPECT_EQ(ReadReg(0x80 | CmosRtc::kSeconds), 0x09);
}

TEST_F(CmosRtcTest, RegisterDReportsValidRamAndIgnoresWrites) {
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterD), 0x80);
  WriteReg(CmosRtc::kRegisterD, 0x00);
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterD), 0x80);
}

TEST_F(CmosRtcTest, RegisterCReportsEachUpdateOnceAndClearsOnRead) {
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterC), 0x00);
  now_ += absl::Milliseconds(400);  // still the same second
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterC), 0x00);
  now_ += absl::Milliseconds(200);
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterC), CmosRtc::kCUpdateEnded);  // UIE off: no IRQF
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterC), 0x00);
}

TEST_F(CmosRtcTest, SettingTheTimeIsNotAnUpdateCycle) {
  SetTimeLikeLinux(0x20, 0x27, 0x01, 0x01, 0x00, 0x00, 0x00);  // weeks ahead
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterC), 0x00);
  WriteReg(CmosRtc::kMinutes, 0x30);  // and forward again while running
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterC), 0x00);
  now_ += absl::Seconds(1);
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterC), CmosRtc::kCUpdateEnded);
}

TEST_F(CmosRtcTest, RegisterCIsReadOnly) {
  WriteReg(CmosRtc::kRegisterC, 0xff);
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterC), 0x00);
}

TEST_F(CmosRtcTest, AlarmFlagSetsWhenTheTimeReachesTheAlarm) {
  WriteReg(CmosRtc::kHoursAlarm, 0x14);
  WriteReg(CmosRtc::kMinutesAlarm, 0x05);
  WriteReg(CmosRtc::kSecondsAlarm, 0x11);
  now_ += absl::Seconds(1);  // 14:05:10
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterC), CmosRtc::kCUpdateEnded);
  now_ += absl::Seconds(1);  // 14:05:11
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterC), CmosRtc::kCUpdateEnded | CmosRtc::kCAlarm);
}

TEST_F(CmosRtcTest, AlarmDontCareBytesMatchAnything) {
  WriteReg(CmosRtc::kHoursAlarm, 0xff);
  WriteReg(CmosRtc::kMinutesAlarm, 0xc0);
  WriteReg(CmosRtc::kSecondsAlarm, 0x00);  // every minute, at :00
  now_ += absl::Seconds(50);  // 14:05:59
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterC) & CmosRtc::kCAlarm, 0);
  now_ += absl::Seconds(1);  // 14:06:00
  EXPECT_NE(ReadReg(CmosRtc::kRegisterC) & CmosRtc::kCAlarm, 0);
}

TEST_F(CmosRtcTest, AlarmPassedWhileNobodyLookedIsStillReported) {
  WriteReg(CmosRtc::kHoursAlarm, 0x14);
  WriteReg(CmosRtc::kMinutesAlarm, 0x05);
  WriteReg(CmosRtc::kSecondsAlarm, 0x20);
  now_ += absl::Seconds(30);  // 14:05:39
  EXPECT_NE(ReadReg(CmosRtc::kRegisterC) & CmosRtc::kCAlarm, 0);
}

TEST_F(CmosRtcTest, AlarmComparesInTheCurrentFormat) {
  WriteReg(CmosRtc::kRegisterB, CmosRtc::kB24Hour | CmosRtc::kBBinary);
  WriteReg(CmosRtc::kHoursAlarm, 14);
  WriteReg(CmosRtc::kMinutesAlarm, 5);
  WriteReg(CmosRtc::kSecondsAlarm, 10);
  now_ += absl::Seconds(1);
  EXPECT_NE(ReadReg(CmosRtc::kRegisterC) & CmosRtc::kCAlarm, 0);
}

TEST_F(CmosRtcTest, NoUpdatesAreFlaggedWhileSet) {
  WriteReg(CmosRtc::kRegisterB, CmosRtc::kB24Hour | CmosRtc::kBSet);
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterC), 0x00);
  now_ += absl::Seconds(5);
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterC), 0x00);
}

TEST_F(CmosRtcTest, PeriodicFlagIsNotImplemented) {
  WriteReg(CmosRtc::kRegisterB, CmosRtc::kB24Hour | CmosRtc::kBPeriodicIrqEnable);
  now_ += absl::Milliseconds(100);
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterC) & (CmosRtc::kCPeriodic | CmosRtc::kCIrq), 0);
}

// An RTC wired for interrupts: a fake IRQ 8 and a recorded wakeup request.
class CmosRtcInterruptTest : public ::testing::Test {
 protected:
  uint8_t Read(uint8_t index) { return ReadRegister(rtc_, index); }
  void Write(uint8_t index, uint8_t value) { WriteRegister(rtc_, index, value); }

  absl::Time now_ = Utc(2026, 11, 23, 14, 5, 9) + absl::Milliseconds(500);
  std::shared_ptr<FakeIrqLine> irq_ = std::make_shared<FakeIrqLine>();
  std::vector<absl::Duration> wakeups_;
  CmosRtc rtc_{[this] { return now_; }, irq_, [this](absl::Duration d) { wakeups_.push_back(d); }};
};

TEST_F(CmosRtcInterruptTest, EnablingUieAsksForAWakeupAtTheNextSecond) {
  EXPECT_TRUE(wakeups_.empty());
  Write(CmosRtc::kRegisterB, CmosRtc::kB24Hour | CmosRtc::kBUpdateEndedIrqEnable);
  ASSERT_FALSE(wakeups_.empty());
  EXPECT_EQ(wakeups_.back(), absl::Milliseconds(500));
}

TEST_F(CmosRtcInterruptTest, UpdateEndedInterruptIsAssertedUntilCIsRead) {
  Write(CmosRtc::kRegisterB, CmosRtc::kB24Hour | CmosRtc::kBUpdateEndedIrqEnable);
  now_ += absl::Milliseconds(500);
  rtc_.OnTimer();
  EXPECT_TRUE(irq_->asserted());
  EXPECT_EQ(irq_->rising_edges(), 1u);
  EXPECT_EQ(Read(CmosRtc::kRegisterC), CmosRtc::kCIrq | CmosRtc::kCUpdateEnded);
  EXPECT_FALSE(irq_->asserted());
  EXPECT_EQ(wakeups_.back(), absl::Seconds(1));  // and again next second
}

TEST_F(CmosRtcInterruptTest, EarlyWakeupRaisesNothingAndAsksAgain) {
  Write(CmosRtc::kRegisterB, CmosRtc::kB24Hour | CmosRtc::kBUpdateEndedIrqEnable);
  now_ += absl::Milliseconds(499);
  rtc_.OnTimer();
  EXPECT_FALSE(irq_->asserted());
  EXPECT_EQ(wakeups_.back(), absl::Milliseconds(1));
}

TEST_F(CmosRtcInterruptTest, NoInterruptOrWakeupWithInterruptsDisabled) {
  now_ += absl::Seconds(3);
  rtc_.OnTimer();
  EXPECT_FALSE(irq_->asserted());
  EXPECT_TRUE(wakeups_.empty());
  EXPECT_EQ(Read(CmosRtc::kRegisterC), CmosRtc::kCUpdateEnded);
}

TEST_F(CmosRtcInterruptTest, EnablingUieWithAnUpdatePendingInterruptsAtOnce) {
  now_ += absl::Seconds(1);
  Write(CmosRtc::kRegisterB, CmosRtc::kB24Hour | CmosRtc::kBUpdateEndedIrqEnable);
  EXPECT_TRUE(irq_->asserted());
}

TEST_F(CmosRtcInterruptTest, AlarmInterruptFiresAtTheAlarmSecond) {
  Write(CmosRtc::kHoursAlarm, 0xff);
  Write(CmosRtc::kMinutesAlarm, 0xff);
  Write(CmosRtc::kSecondsAlarm, 0x11);
  Write(CmosRtc::kRegisterB, CmosRtc::kB24Hour | CmosRtc::kBAlarmIrqEnable);
  now_ += absl::Milliseconds(500);  // 14:05:10
  rtc_.OnTimer();
  EXPECT_FALSE(irq_->asserted());
  now_ += absl::Seconds(1);  // 14:05:11
  rtc_.OnTimer();
  EXPECT_TRUE(irq_->asserted());
  EXPECT_EQ(Read(CmosRtc::kRegisterC),
            CmosRtc::kCIrq | CmosRtc::kCAlarm | CmosRtc::kCUpdateEnded);
  EXPECT_FALSE(irq_->asserted());
}

TEST_F(CmosRtcInterruptTest, SetBitStopsUpdateInterrupts) {
  Write(CmosRtc::kRegisterB, CmosRtc::kB24Hour | CmosRtc::kBUpdateEndedIrqEnable);
  const size_t asked = wakeups_.size();
  Write(CmosRtc::kRegisterB, CmosRtc::kB24Hour | CmosRtc::kBUpdateEndedIrqEnable | CmosRtc::kBSet);
  EXPECT_EQ(wakeups_.size(), asked);
  now_ += absl::Seconds(2);
  rtc_.OnTimer();
  EXPECT_FALSE(irq_->asserted());
}

TEST_F(CmosRtcInterruptTest, WakeupsFollowTheSecondsTheGuestSet) {
  Write(CmosRtc::kRegisterB, CmosRtc::kB24Hour | CmosRtc::kBSet);
  now_ += absl::Milliseconds(200);  // host at x.7 when the guest restarts the clock
  Write(CmosRtc::kRegisterB, CmosRtc::kB24Hour | CmosRtc::kBUpdateEndedIrqEnable);
  EXPECT_EQ(wakeups_.back(), absl::Seconds(1));
  now_ += absl::Milliseconds(999);
  rtc_.OnTimer();
  EXPECT_FALSE(irq_->asserted());
  now_ += absl::Milliseconds(1);
  rtc_.OnTimer();
  EXPECT_TRUE(irq_->asserted());
}

TEST_F(CmosRtcTest, UipIsSetOnlyInTheLast244MicrosecondsOfASecond) {
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterA) & CmosRtc::kAUpdateInProgress, 0);
  now_ = Utc(2026, 11, 23, 14, 5, 10) - absl::Microseconds(100);
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterA), 0x80 | 0x26);
  now_ = Utc(2026, 11, 23, 14, 5, 10) - absl::Microseconds(300);
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterA), 0x26);
  now_ = Utc(2026, 11, 23, 14, 5, 10);
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterA), 0x26);
}

TEST_F(CmosRtcTest, UipFollowsTheGuestsSecondsAfterItSetTheTime) {
  // Set the time at host x.5 s: the guest's seconds now tick at x.5.
  SetTimeLikeLinux(0x20, 0x26, 0x01, 0x01, 0x00, 0x00, 0x00);
  now_ += absl::Seconds(1) - absl::Microseconds(100);
  EXPECT_NE(ReadReg(CmosRtc::kRegisterA) & CmosRtc::kAUpdateInProgress, 0);
  EXPECT_EQ(ReadReg(CmosRtc::kSeconds), 0x00);
}

TEST_F(CmosRtcTest, UipReadsZeroWhileSetAndIsReadOnly) {
  now_ = Utc(2026, 11, 23, 14, 5, 10) - absl::Microseconds(100);
  WriteReg(CmosRtc::kRegisterB, CmosRtc::kB24Hour | CmosRtc::kBSet);
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterA), 0x26);
  WriteReg(CmosRtc::kRegisterA, 0xff);
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterA), 0x7f);
}

TEST_F(CmosRtcTest, RateBitsAreWritable) {
  WriteReg(CmosRtc::kRegisterA, 0x2f);
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterA), 0x2f);
}

TEST_F(CmosRtcTest, IndexPortReadsAllOnes) {
  uint8_t v[1] = {0};
  rtc_.Read(CmosRtc::kIndexOffset, v);
  EXPECT_EQ(v[0], 0xff);
}

TEST_F(CmosRtcTest, WordAccessSplitsIntoIndexThenData) {
  const uint8_t w[2] = {0x40, 0x77};
  rtc_.Write(CmosRtc::kIndexOffset, w);
  EXPECT_EQ(ReadReg(0x40), 0x77);
  uint8_t r[2] = {0, 0};
  rtc_.Read(CmosRtc::kIndexOffset, r);
  EXPECT_EQ(r[0], 0xff);
  EXPECT_EQ(r[1], 0x77);
}

TEST_F(CmosRtcTest, HostileOffsetsAndWidthsAreHarmless) {
  WriteReg(0x40, 0x11);
  const uint8_t v[8] = {0x99, 0x99, 0x99, 0x99, 0x99, 0x99, 0x99, 0x99};
  rtc_.Write(CmosRtc::kSize, absl::MakeConstSpan(v, 1));
  rtc_.Write(~uint64_t{0}, absl::MakeConstSpan(v, 8));
  rtc_.Write(~uint64_t{0} - 1, absl::MakeConstSpan(v, 8));
  rtc_.Write(CmosRtc::kDataOffset, absl::MakeConstSpan(v, 0));
  // An 8-byte write at the data port writes one register, once.
  rtc_.Write(CmosRtc::kDataOffset, absl::MakeConstSpan(v, 8));
  EXPECT_EQ(ReadReg(0x40), 0x99);
  uint8_t r[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  rtc_.Read(~uint64_t{0}, r);
  for (uint8_t b : r) EXPECT_EQ(b, 0xff);
  rtc_.Read(CmosRtc::kDataOffset, r);
  EXPECT_EQ(r[0], 0x99);
  for (int i = 1; i < 8; ++i) EXPECT_EQ(r[i], 0xff);
}

bool IsBcd(uint8_t v) { return (v >> 4) <= 9 && (v & 0x0f) <= 9; }

TEST_F(CmosRtcTest, GarbageTimeFromTheGuestStillReadsAsAValidTime) {
  SetTimeLikeLinux(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
  for (uint8_t reg : {CmosRtc::kSeconds, CmosRtc::kMinutes, CmosRtc::kHours,
                      CmosRtc::kDayOfMonth, CmosRtc::kMonth, CmosRtc::kYear, CmosRtc::kCentury}) {
    EXPECT_TRUE(IsBcd(ReadReg(reg))) << "register " << int{reg};
  }
  const uint8_t month = ReadReg(CmosRtc::kMonth);
  EXPECT_TRUE(month >= 0x01 && month <= 0x12);
  WriteReg(CmosRtc::kRegisterB, CmosRtc::kBBinary);  // binary 12-hour
  SetTimeLikeLinux(0xff, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff);
  EXPECT_LT(ReadReg(CmosRtc::kSeconds), 60);
  EXPECT_EQ(ReadReg(CmosRtc::kRegisterD), 0x80);
}

TEST(CmosRtcHostClockTest, DefaultClockIsTheHostsUtcTime) {
  CmosRtc rtc;
  const uint8_t b[2] = {CmosRtc::kRegisterB, CmosRtc::kB24Hour | CmosRtc::kBBinary};
  rtc.Write(0, b);
  const absl::CivilSecond host = absl::ToCivilSecond(absl::Now(), absl::UTCTimeZone());
  const uint8_t i[1] = {CmosRtc::kCentury};
  rtc.Write(0, i);
  uint8_t century[1];
  rtc.Read(1, century);
  const uint8_t y[1] = {CmosRtc::kYear};
  rtc.Write(0, y);
  uint8_t year[1];
  rtc.Read(1, year);
  EXPECT_EQ(century[0] * 100 + year[0], host.year());
}

TEST(CmosRtcHostClockTest, EmptyClockFallsBackToTheHostClock) {
  CmosRtc rtc(nullptr);
  const int host_century =
      static_cast<int>(absl::ToCivilSecond(absl::Now(), absl::UTCTimeZone()).year() / 100);
  const uint8_t i[1] = {CmosRtc::kCentury};
  rtc.Write(0, i);
  uint8_t century[1];
  rtc.Read(1, century);  // BCD by default
  EXPECT_EQ(century[0], ((host_century / 10) << 4) | (host_century % 10));
}

// Snapshots (issue 15): NVRAM, the status registers and the time the guest
// set come back in a restored RTC, whose clock went on ticking meanwhile
// (a battery-backed clock); a damaged state is refused.
TEST_F(CmosRtcTest, ARestoredRtcKeepsNvramAndTheGuestsTimeTicking) {
  WriteReg(0x40, 0x5a);
  SetTimeLikeLinux(0x19, 0x99, 0x12, 0x31, 0x23, 0x59, 0x50);
  const std::string state = rtc_.SaveState();
  absl::Time later = now_ + absl::Seconds(5);
  CmosRtc restored([&later] { return later; });
  ASSERT_TRUE(restored.RestoreState(state).ok());
  EXPECT_EQ(ReadRegister(restored, 0x40), 0x5a);
  EXPECT_EQ(ReadRegister(restored, CmosRtc::kSeconds), 0x55) << "the guest's time, 5 s on";
  EXPECT_EQ(ReadRegister(restored, CmosRtc::kYear), 0x99);
  EXPECT_EQ(ReadRegister(restored, CmosRtc::kRegisterB), ReadReg(CmosRtc::kRegisterB));
  EXPECT_EQ(restored.RestoreState(state.substr(0, state.size() - 1)).code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace vmm
