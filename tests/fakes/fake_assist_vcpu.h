// A vCPU for emulation-assist tests: plain register state, a page map for
// KVM_TRANSLATE, and a log of the setters called, in order.
#ifndef VMM_TESTS_FAKES_FAKE_ASSIST_VCPU_H_
#define VMM_TESTS_FAKES_FAKE_ASSIST_VCPU_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "arch/x86_64/emulation_assist.h"

namespace vmm::testing {

using ::vmm::x86_64::AssistVcpu;

class FakeAssistVcpu : public AssistVcpu {
 public:
  // A 64-bit kernel at CPL 0 with SSE enabled (CR4.OSFXSR), MXCSR at reset.
  FakeAssistVcpu() {
    sregs.cr0 = 0x80000001;  // PG | PE
    sregs.cr4 = 1u << 9;     // OSFXSR
    sregs.efer = (1u << 8) | (1u << 10);
    sregs.cs.l = 1;
    sregs.cs.present = 1;
    sregs.ss.present = 1;
    regs.rip = 0xffffffff81000000;
    regs.rflags = 0x2;
    mxcsr = 0x1f80;
  }

  absl::StatusOr<kvm_regs> GetRegs() const override { return regs; }
  absl::Status SetRegs(const kvm_regs& r) override {
    log.push_back("SetRegs");
    regs = r;
    return absl::OkStatus();
  }
  absl::StatusOr<kvm_sregs> GetSregs() const override { return sregs; }
  absl::StatusOr<uint32_t> GetMxcsr() const override { return mxcsr; }
  absl::Status SetMxcsr(uint32_t m) override {
    log.push_back("SetMxcsr");
    mxcsr = m;
    return absl::OkStatus();
  }
  absl::StatusOr<kvm_vcpu_events> GetVcpuEvents() const override { return events; }
  absl::Status SetVcpuEvents(const kvm_vcpu_events& e) override {
    log.push_back("SetVcpuEvents");
    events = e;
    return absl::OkStatus();
  }
  // Translates through `pages` (linear page -> guest-physical page, 4 KiB).
  absl::StatusOr<kvm_translation> Translate(uint64_t linear) const override {
    ++translations;
    kvm_translation tr{};
    tr.linear_address = linear;
    auto it = pages.find(linear & ~uint64_t{0xfff});
    if (it != pages.end()) {
      tr.valid = 1;
      tr.writeable = 1;
      tr.physical_address = it->second | (linear & 0xfff);
    }
    return tr;
  }

  kvm_regs regs{};
  kvm_sregs sregs{};
  uint32_t mxcsr = 0;
  kvm_vcpu_events events{};
  std::map<uint64_t, uint64_t> pages;
  std::vector<std::string> log;
  mutable int translations = 0;
};

}  // namespace vmm::testing

#endif  // VMM_TESTS_FAKES_FAKE_ASSIST_VCPU_H_
