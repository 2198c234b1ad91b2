#include "devices/legacy/acpi_pm.h"

#include <algorithm>
#include <utility>

namespace vmm {

AcpiPm::AcpiPm(std::function<void()> on_poweroff, std::function<void()> on_reset,
               uint8_t s5_sleep_type, uint8_t reset_value)
    : on_poweroff_(std::move(on_poweroff)),
      on_reset_(std::move(on_reset)),
      s5_sleep_type_(s5_sleep_type & (kSlpTypMask >> kSlpTypShift)),
      reset_value_(reset_value) {}

void AcpiPm::Read(uint64_t /*offset*/, absl::Span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
}

void AcpiPm::Write(uint64_t offset, absl::Span<const uint8_t> data) {
  if (offset >= kSize) return;
  const size_t n = std::min<uint64_t>(data.size(), kSize - offset);
  for (size_t i = 0; i < n; ++i) WriteRegister(offset + i, data[i]);
}

void AcpiPm::WriteRegister(uint64_t reg, uint8_t value) {
  switch (reg) {
    case kSleepControlOffset:
      if ((value & kSlpEn) && ((value & kSlpTypMask) >> kSlpTypShift) == s5_sleep_type_ &&
          on_poweroff_) {
        on_poweroff_();
      }
      break;
    case kSleepStatusOffset:
      break;  // W1C of a WAK_STS that is never set
    case kResetOffset:
      if (value == reset_value_ && on_reset_) on_reset_();
      break;
  }
}

}  // namespace vmm
