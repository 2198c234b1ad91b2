#include "devices/legacy/cmos_rtc.h"

#include <algorithm>
#include <utility>

#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "base/state_file.h"
#include "base/status_macros.h"

namespace vmm {
namespace {

constexpr int64_t kSecondsPerDay = 86400;

bool IsTimeRegister(uint8_t reg) {
  switch (reg) {
    case CmosRtc::kSeconds:
    case CmosRtc::kMinutes:
    case CmosRtc::kHours:
    case CmosRtc::kDayOfWeek:
    case CmosRtc::kDayOfMonth:
    case CmosRtc::kMonth:
    case CmosRtc::kYear:
    case CmosRtc::kCentury:
      return true;
    default:
      return false;
  }
}

// 1 = Sunday ... 7 = Saturday, as the chip counts (absl: Monday = 0).
int DayOfWeek(absl::CivilDay day) {
  return (static_cast<int>(absl::GetWeekday(day)) + 1) % 7 + 1;
}

// How far `t` is into its second.
absl::Duration IntoSecond(absl::Time t) { return t - absl::FromUnixSeconds(absl::ToUnixSeconds(t)); }

}  // namespace

CmosRtc::CmosRtc(Clock clock, std::shared_ptr<IrqLine> irq, ScheduleWakeup schedule_wakeup)
    : clock_(clock ? std::move(clock) : Clock(absl::Now)),
      irq_(std::move(irq)),
      schedule_wakeup_(std::move(schedule_wakeup)) {
  absl::MutexLock lock(&mu_);
  regs_[kRegisterA] = kRegisterAReset;
  regs_[kRegisterB] = kRegisterBReset;
  regs_[kRegisterD] = kDValidRam;
  RestartUpdates();
}

void CmosRtc::Read(uint64_t offset, absl::Span<uint8_t> data) {
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < data.size(); ++i) {
    const bool is_data = offset < kSize && i < kSize - offset && offset + i == kDataOffset;
    data[i] = is_data ? ReadRegister(index_) : 0xff;
  }
}

void CmosRtc::Write(uint64_t offset, absl::Span<const uint8_t> data) {
  absl::MutexLock lock(&mu_);
  if (offset >= kSize) return;
  for (size_t i = 0; i < data.size() && i < kSize - offset; ++i) {
    if (offset + i == kIndexOffset) {
      index_ = data[i] & ~kIndexNmiDisable;
    } else {
      WriteRegister(index_, data[i]);
    }
  }
}

void CmosRtc::OnTimer() {
  absl::MutexLock lock(&mu_);
  CatchUp();
  UpdateInterrupts();
}

bool CmosRtc::Running() const { return (regs_[kRegisterB] & kBSet) == 0; }

absl::Time CmosRtc::GuestNow() const { return clock_() + offset_; }

uint8_t CmosRtc::ReadRegister(uint8_t reg) {
  if (IsTimeRegister(reg)) {
    if (Running()) LatchTime(GuestNow());
    return regs_[reg];
  }
  switch (reg) {
    case kRegisterA: {
      uint8_t value = regs_[kRegisterA] & ~kAUpdateInProgress;
      if (Running() && IntoSecond(GuestNow()) >= absl::Seconds(1) - kUipHold) {
        value |= kAUpdateInProgress;
      }
      return value;
    }
    case kRegisterC: {
      CatchUp();
      const uint8_t value = RegisterC();
      flags_ = 0;  // read-to-clear, which also drops the interrupt
      UpdateInterrupts();
      return value;
    }
    case kRegisterD:
      return kDValidRam;
    default:
      return regs_[reg];
  }
}

void CmosRtc::WriteRegister(uint8_t reg, uint8_t value) {
  if (IsTimeRegister(reg)) {
    if (!Running()) {
      regs_[reg] = value;  // takes effect when SET is cleared
      return;
    }
    // A write while running changes the time at once and keeps the
    // sub-second phase, so only the written field moves.
    CatchUp();
    const absl::Time now = GuestNow();
    LatchTime(now);
    regs_[reg] = value;
    offset_ = StoredTime() + IntoSecond(now) - clock_();
    RestartUpdates();
    UpdateInterrupts();
    return;
  }
  switch (reg) {
    case kRegisterA:
      regs_[kRegisterA] = value & ~kAUpdateInProgress;  // UIP is read-only
      return;
    case kRegisterB:
      WriteRegisterB(value);
      return;
    case kRegisterC:
    case kRegisterD:
      return;  // read-only
    default:
      regs_[reg] = value;  // NVRAM, alarms
  }
}

void CmosRtc::WriteRegisterB(uint8_t value) {
  const bool was_running = Running();
  CatchUp();  // flags for the time and format in force until now
  // Setting SET clears UIE on the chip (no update cycles to signal).
  if (value & kBSet) value &= ~kBUpdateEndedIrqEnable;
  regs_[kRegisterB] = value;
  if (was_running && !Running()) {
    // Freeze: the guest now reads and writes the latched registers. Latch in
    // the new format so what it reads matches what it will write back.
    LatchTime(GuestNow());
  } else if (!was_running && Running()) {
    // Resume from what the guest wrote; a new second starts now, as the
    // chip's first update comes a second after SET is cleared.
    offset_ = StoredTime() - clock_();
    RestartUpdates();
  }
  UpdateInterrupts();
}

void CmosRtc::CatchUp() {
  if (!Running()) return;  // no update cycles while SET
  const int64_t now = absl::ToUnixSeconds(GuestNow());
  if (now <= last_update_) {
    last_update_ = now;  // same second, or the host clock stepped back
    return;
  }
  flags_ |= kCUpdateEnded;
  // Alarms repeat daily, so a day of missed seconds covers every match.
  const uint64_t missed = std::min<uint64_t>(static_cast<uint64_t>(now) - last_update_,
                                             kSecondsPerDay);
  for (uint64_t i = 0; i < missed; ++i) {
    if (AlarmMatches(now - static_cast<int64_t>(i))) {
      flags_ |= kCAlarm;
      break;
    }
  }
  last_update_ = now;
}

void CmosRtc::RestartUpdates() { last_update_ = absl::ToUnixSeconds(GuestNow()); }

bool CmosRtc::AlarmMatches(int64_t unix_second) const {
  const int64_t of_day = ((unix_second % kSecondsPerDay) + kSecondsPerDay) % kSecondsPerDay;
  auto matches = [](uint8_t alarm, uint8_t now) { return alarm >= kAlarmDontCare || alarm == now; };
  return matches(regs_[kSecondsAlarm], Encode(of_day % 60)) &&
         matches(regs_[kMinutesAlarm], Encode(of_day / 60 % 60)) &&
         matches(regs_[kHoursAlarm], EncodeHour(static_cast<int>(of_day / 3600)));
}

uint8_t CmosRtc::RegisterC() const {
  // Each flag's enable sits at the same bit in register B.
  const uint8_t enabled =
      flags_ & regs_[kRegisterB] & (kBPeriodicIrqEnable | kBAlarmIrqEnable | kBUpdateEndedIrqEnable);
  return flags_ | (enabled ? kCIrq : 0);
}

std::string CmosRtc::SaveState() const {
  absl::MutexLock lock(&mu_);
  StateWriter out;
  out.Put(index_);
  out.Put(regs_);
  out.Put<int64_t>(absl::ToInt64Nanoseconds(offset_));
  out.Put(flags_);
  out.Put(last_update_);
  return out.Take();
}

absl::Status CmosRtc::RestoreState(absl::string_view payload) {
  StateReader in("rtc", payload);
  uint8_t index = 0, flags = 0;
  std::array<uint8_t, kRegisterCount> regs;
  int64_t offset_ns = 0, last_update = 0;
  RETURN_IF_ERROR(in.Get("index", &index));
  RETURN_IF_ERROR(in.Get("registers", &regs));
  RETURN_IF_ERROR(in.Get("offset", &offset_ns));
  RETURN_IF_ERROR(in.Get("flags", &flags));
  RETURN_IF_ERROR(in.Get("last update", &last_update));
  RETURN_IF_ERROR(in.Finish());
  absl::MutexLock lock(&mu_);
  index_ = index % kRegisterCount;
  regs_ = regs;
  offset_ = absl::Nanoseconds(offset_ns);
  flags_ = flags;
  last_update_ = last_update;
  // The line as the restored flags say (the interrupt controllers were
  // restored before), and the next wake-up if the guest wants them.
  irq_asserted_ = false;
  UpdateInterrupts();
  return absl::OkStatus();
}

void CmosRtc::UpdateInterrupts() {
  if (!irq_) return;
  const bool level = (RegisterC() & kCIrq) != 0;
  if (level != irq_asserted_) {
    irq_asserted_ = level;
    irq_->SetLevel(level);
  }
  if (schedule_wakeup_ && Running() &&
      (regs_[kRegisterB] & (kBAlarmIrqEnable | kBUpdateEndedIrqEnable))) {
    schedule_wakeup_(absl::Seconds(1) - IntoSecond(GuestNow()));  // the next update
  }
}

uint8_t CmosRtc::Encode(int64_t value) const {
  if (regs_[kRegisterB] & kBBinary) return static_cast<uint8_t>(value);
  const int64_t v = ((value % 100) + 100) % 100;
  return static_cast<uint8_t>(((v / 10) << 4) | (v % 10));
}

int CmosRtc::Decode(uint8_t value) const {
  if (regs_[kRegisterB] & kBBinary) return value;
  return (value >> 4) * 10 + (value & 0x0f);
}

uint8_t CmosRtc::EncodeHour(int hour) const {
  if (regs_[kRegisterB] & kB24Hour) return Encode(hour);
  const int h12 = hour % 12 == 0 ? 12 : hour % 12;
  return Encode(h12) | (hour >= 12 ? kHourPm : 0);
}

int CmosRtc::DecodeHour(uint8_t value) const {
  if (regs_[kRegisterB] & kB24Hour) return Decode(value);
  return Decode(value & ~kHourPm) % 12 + ((value & kHourPm) ? 12 : 0);
}

void CmosRtc::LatchTime(absl::Time t) {
  const absl::CivilSecond cs = absl::ToCivilSecond(t, absl::UTCTimeZone());
  const int64_t year = cs.year();
  regs_[kSeconds] = Encode(cs.second());
  regs_[kMinutes] = Encode(cs.minute());
  regs_[kHours] = EncodeHour(cs.hour());
  regs_[kDayOfWeek] = Encode(DayOfWeek(absl::CivilDay(cs)));
  regs_[kDayOfMonth] = Encode(cs.day());
  regs_[kMonth] = Encode(cs.month());
  regs_[kYear] = Encode(((year % 100) + 100) % 100);
  regs_[kCentury] = Encode(year / 100);
}

absl::Time CmosRtc::StoredTime() const {
  const int64_t year = int64_t{Decode(regs_[kCentury])} * 100 + Decode(regs_[kYear]);
  const absl::CivilSecond cs(year, Decode(regs_[kMonth]), Decode(regs_[kDayOfMonth]),
                             DecodeHour(regs_[kHours]), Decode(regs_[kMinutes]),
                             Decode(regs_[kSeconds]));
  return absl::FromCivil(cs, absl::UTCTimeZone());
}

}  // namespace vmm
