// The PC's CMOS real-time clock, a Motorola MC146818 at ports 0x70 (index)
// and 0x71 (data): time and date registers kept from an injected clock (the
// host's, in UTC), status registers A-D, the century byte at 0x32 and the
// rest of the 128 bytes as battery-backed NVRAM.
//
// The time is never stored: a read computes it from clock() + offset, where
// offset is what the guest changed by setting the clock (SET bit in
// register B, or a plain write to a time register). The format of each read
// follows register B: BCD unless DM (bit 2) is set, 12-hour with bit 7 = PM
// unless 24/12 (bit 1) is set. Register A's UIP bit reads 1 during the
// last 244 us of each second, as on the chip and in QEMU, so a guest that
// waits for an update (hwclock --directisa) sees one.
//
// Interrupts: register C's update-ended (UF) and alarm (AF) flags are
// computed from the clock whenever the guest looks, so polling works with no
// timer at all. To deliver them on IRQ 8 the VMM injects an IrqLine and a
// one-shot wakeup (a timerfd): while UIE or AIE is enabled the device asks
// to be woken at the next second boundary and the VMM then calls OnTimer().
// The line stays asserted until the guest reads register C, as on the chip.
// Periodic interrupts (PIE/PF) are not implemented: PF never sets.
//
// Insert at kRtcPort (0x70) with size kSize.
#ifndef VMM_DEVICES_LEGACY_CMOS_RTC_H_
#define VMM_DEVICES_LEGACY_CMOS_RTC_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "devices/bus.h"
#include "devices/irq_line.h"

namespace vmm {

class CmosRtc : public BusDevice {
 public:
  // Returns the current host time; called with the device lock held.
  using Clock = std::function<absl::Time()>;
  // Asks the host to call OnTimer() once, `delay` (> 0) from now, replacing
  // any wakeup asked for before. Called with the device lock held: it must
  // not call back into the device (timerfd_settime is the intended body).
  using ScheduleWakeup = std::function<void(absl::Duration delay)>;

  static constexpr uint64_t kSize = 2;  // offset 0 index, offset 1 data
  static constexpr uint64_t kIndexOffset = 0;
  static constexpr uint64_t kDataOffset = 1;
  static constexpr size_t kRegisterCount = 128;

  // Register indices.
  static constexpr uint8_t kSeconds = 0x00;
  static constexpr uint8_t kSecondsAlarm = 0x01;
  static constexpr uint8_t kMinutes = 0x02;
  static constexpr uint8_t kMinutesAlarm = 0x03;
  static constexpr uint8_t kHours = 0x04;
  static constexpr uint8_t kHoursAlarm = 0x05;
  static constexpr uint8_t kDayOfWeek = 0x06;  // 1 = Sunday
  static constexpr uint8_t kDayOfMonth = 0x07;
  static constexpr uint8_t kMonth = 0x08;
  static constexpr uint8_t kYear = 0x09;
  static constexpr uint8_t kRegisterA = 0x0a;
  static constexpr uint8_t kRegisterB = 0x0b;
  static constexpr uint8_t kRegisterC = 0x0c;
  static constexpr uint8_t kRegisterD = 0x0d;
  static constexpr uint8_t kCentury = 0x32;  // the FADT's CENTURY field should name it

  // Register bits.
  static constexpr uint8_t kIndexNmiDisable = 0x80;  // bit 7 of the index: not part of it
  static constexpr uint8_t kAUpdateInProgress = 0x80;
  static constexpr uint8_t kBSet = 0x80;
  static constexpr uint8_t kBPeriodicIrqEnable = 0x40;
  static constexpr uint8_t kBAlarmIrqEnable = 0x20;
  static constexpr uint8_t kBUpdateEndedIrqEnable = 0x10;
  static constexpr uint8_t kBBinary = 0x04;  // DM: binary, not BCD
  static constexpr uint8_t kB24Hour = 0x02;
  static constexpr uint8_t kCIrq = 0x80;  // IRQF: some enabled flag is set
  static constexpr uint8_t kCPeriodic = 0x40;
  static constexpr uint8_t kCAlarm = 0x20;
  static constexpr uint8_t kCUpdateEnded = 0x10;
  static constexpr uint8_t kAlarmDontCare = 0xc0;  // alarm bytes >= this match any value
  static constexpr uint8_t kHourPm = 0x80;  // in 12-hour mode
  static constexpr uint8_t kDValidRam = 0x80;  // VRT: the battery is good

  // Power-on values: 32.768 kHz time base with a 1024 Hz rate (what BIOSes
  // program), and 24-hour BCD, as QEMU.
  static constexpr uint8_t kRegisterAReset = 0x26;
  static constexpr uint8_t kRegisterBReset = kB24Hour;

  // How long before each second boundary UIP reads 1: 244 us on a 32.768
  // kHz chip (8 cycles of the time base).
  static constexpr absl::Duration kUipHold = absl::Nanoseconds(244'141);

  // `clock` defaults to (and an empty one means) the host's absl::Now().
  // Without both `irq` and `schedule_wakeup` no interrupt is delivered (the
  // flags in register C still work for a polling guest).
  explicit CmosRtc(Clock clock = absl::Now, std::shared_ptr<IrqLine> irq = nullptr,
                   ScheduleWakeup schedule_wakeup = {});

  // Byte registers: a wider access is split into byte accesses to
  // consecutive ports, as the ISA bus does; bytes past the data port read
  // 0xff and are ignored on write. The index port is write-only (reads
  // 0xff); its bit 7 (the PC's NMI mask) is dropped.
  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

  // The wakeup asked for by ScheduleWakeup has expired (thread-safe; an early
  // or extra call is harmless). Raises IRQ 8 if an enabled event happened.
  void OnTimer();

  // Snapshots (issue 15): the index, the 128 registers (NVRAM and status),
  // the guest's offset from the host clock and the pending flags. A
  // restored RTC keeps time from the host clock plus that offset, as a
  // battery-backed clock kept ticking while the VM was away. The payload is
  // untrusted: a short one is DataLoss.
  std::string SaveState() const ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status RestoreState(absl::string_view payload) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  uint8_t ReadRegister(uint8_t reg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteRegister(uint8_t reg, uint8_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteRegisterB(uint8_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Running() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sets UF/AF for the update cycles that ended since the last call.
  void CatchUp() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Forgets update cycles up to now (after the guest changed the time).
  void RestartUpdates() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool AlarmMatches(int64_t unix_second) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint8_t RegisterC() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drives the IRQ line from IRQF and asks for the next wakeup if needed.
  void UpdateInterrupts() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Time GuestNow() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the time registers of regs_ from `t` (whole seconds), in the
  // format register B selects.
  void LatchTime(absl::Time t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The time the time registers of regs_ hold. Out-of-range fields (from a
  // hostile guest) normalize, as absl::CivilSecond does: never an error.
  absl::Time StoredTime() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint8_t Encode(int64_t value) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int Decode(uint8_t value) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint8_t EncodeHour(int hour) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int DecodeHour(uint8_t value) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock clock_;
  const std::shared_ptr<IrqLine> irq_;
  const ScheduleWakeup schedule_wakeup_;
  mutable absl::Mutex mu_;
  uint8_t index_ ABSL_GUARDED_BY(mu_) = 0;
  // NVRAM and the status registers; the time registers hold the latched
  // (SET) or last computed time.
  std::array<uint8_t, kRegisterCount> regs_ ABSL_GUARDED_BY(mu_) = {};
  // Guest time minus host time.
  absl::Duration offset_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
  // Register C's UF and AF, and the guest second (Unix time) they are
  // up to date with.
  uint8_t flags_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_update_ ABSL_GUARDED_BY(mu_) = 0;
  bool irq_asserted_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace vmm

#endif  // VMM_DEVICES_LEGACY_CMOS_RTC_H_
