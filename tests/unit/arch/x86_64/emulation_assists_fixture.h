// The fixture the EmulationAssists::Apply tests share: assists over a fake
// vCPU and 64 KiB of guest memory, collecting notices.
#ifndef VMM_TESTS_UNIT_ARCH_X86_64_EMULATION_ASSISTS_FIXTURE_H_
#define VMM_TESTS_UNIT_ARCH_X86_64_EMULATION_ASSISTS_FIXTURE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/fakes/fake_assist_vcpu.h"
#include "tests/fakes/test_guest_memory.h"
#include "arch/x86_64/emulation_assist.h"

namespace vmm::testing {

using ::vmm::x86_64::AssistVcpu;
using ::vmm::x86_64::EmulationAssists;

class EmulationAssistsTest : public ::testing::Test {
 protected:
  absl::Status Apply(std::vector<uint8_t> bytes) { return assists_.Apply(vcpu_, bytes); }

  GuestMemory memory_ = TestGuestMemory(0x10000);
  std::vector<std::string> notices_;
  EmulationAssists assists_{&memory_, [this](absl::string_view s) { notices_.emplace_back(s); }};
  FakeAssistVcpu vcpu_;
};

}  // namespace vmm::testing

#endif  // VMM_TESTS_UNIT_ARCH_X86_64_EMULATION_ASSISTS_FIXTURE_H_
