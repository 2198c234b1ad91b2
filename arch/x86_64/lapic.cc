#include "arch/x86_64/lapic.h"

#include <cstring>

namespace vmm::x86_64 {

uint32_t ApicRegister(const kvm_lapic_state& lapic, size_t offset) {
  uint32_t value;
  std::memcpy(&value, &lapic.regs[offset], sizeof(value));
  return value;
}

void SetApicRegister(kvm_lapic_state& lapic, size_t offset, uint32_t value) {
  std::memcpy(&lapic.regs[offset], &value, sizeof(value));
}

void SetLintDeliveryLikeFirmware(kvm_lapic_state& lapic) {
  auto set_mode = [&lapic](size_t reg, uint32_t mode) {
    SetApicRegister(lapic, reg, (ApicRegister(lapic, reg) & ~kApicDeliveryModeMask) | mode);
  };
  set_mode(kApicLvtLint0, kApicDeliveryExtInt);
  set_mode(kApicLvtLint1, kApicDeliveryNmi);
}

}  // namespace vmm::x86_64
