// The power-management registers of a hardware-reduced ACPI platform
// (ACPI 6.x sections 4.8.3.7 and 4.8.3.6): the FADT's SLEEP_CONTROL_REG,
// SLEEP_STATUS_REG and RESET_REG, one byte each in I/O space. Linux powers
// off through acpi_hw_extended_sleep(): it clears WAK_STS in the status
// register, then writes SLP_TYPx (from the DSDT's \_S5 package) | SLP_EN to
// the control register. It resets by writing RESET_VALUE to RESET_REG.
//
// One device spans the three consecutive ports:
//   offset 0  sleep control  (kAcpiSleepControlPort)
//   offset 1  sleep status   (kAcpiSleepStatusPort)
//   offset 2  reset          (kAcpiResetPort)
// Insert it once at kAcpiSleepControlPort with size kSize.
#ifndef VMM_DEVICES_LEGACY_ACPI_PM_H_
#define VMM_DEVICES_LEGACY_ACPI_PM_H_

#include <cstdint>
#include <functional>

#include "absl/types/span.h"
#include "arch/x86_64/layout.h"
#include "devices/bus.h"

namespace vmm {

class AcpiPm : public BusDevice {
 public:
  static constexpr uint64_t kSize = 3;
  static constexpr uint64_t kSleepControlOffset = 0;
  static constexpr uint64_t kSleepStatusOffset = 1;
  static constexpr uint64_t kResetOffset = 2;

  // Sleep control register fields.
  static constexpr uint8_t kSlpEn = 1 << 5;
  static constexpr uint8_t kSlpTypShift = 2;
  static constexpr uint8_t kSlpTypMask = 0x7 << kSlpTypShift;
  // Sleep status register: WAK_STS, write 1 to clear.
  static constexpr uint8_t kWakSts = 1 << 7;

  // The \_S5 SLP_TYP value the DSDT must give, and the FADT's RESET_VALUE,
  // unless told otherwise.
  static constexpr uint8_t kDefaultS5SleepType = 5;
  static constexpr uint8_t kDefaultResetValue = x86_64::kAcpiResetValue;

  // Callbacks may be empty. They run on the writing vCPU thread; the device
  // has no mutable state and holds no lock. `s5_sleep_type` is taken modulo
  // the 3-bit field.
  AcpiPm(std::function<void()> on_poweroff, std::function<void()> on_reset,
         uint8_t s5_sleep_type = kDefaultS5SleepType,
         uint8_t reset_value = kDefaultResetValue);

  // Every register reads 0 (WAK_STS is never set: the VM never sleeps and
  // wakes). Offsets past kSize read 0 too.
  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  // Byte registers: a wider access is split into byte writes to consecutive
  // registers, as on the ISA bus. Sleep control calls on_poweroff when a
  // byte has SLP_EN set and SLP_TYP == s5_sleep_type (other sleep states
  // are unsupported and ignored); reset calls on_reset when the byte equals
  // reset_value; everything else is ignored.
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

 private:
  void WriteRegister(uint64_t reg, uint8_t value);

  const std::function<void()> on_poweroff_;
  const std::function<void()> on_reset_;
  const uint8_t s5_sleep_type_;
  const uint8_t reset_value_;
};

}  // namespace vmm

#endif  // VMM_DEVICES_LEGACY_ACPI_PM_H_
