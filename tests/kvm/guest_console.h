// What the KVM tests share about a guest they run in-process: its COM1
// output collected through the library's callback console, and waiting
// (bounded) for a condition on it.
#ifndef VMM_TESTS_KVM_GUEST_CONSOLE_H_
#define VMM_TESTS_KVM_GUEST_CONSOLE_H_

#include <functional>
#include <string>
#include <string_view>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "vmm/vmm.h"

namespace vmm::testing {

// Polls `done` every 50 ms until it holds or `limit` passes; whether it held.
inline bool WaitUntil(const std::function<bool()>& done,
                      absl::Duration limit = absl::Seconds(60)) {
  const absl::Time deadline = absl::Now() + limit;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return true;
}

// Collects console output from the vCPU threads.
struct Console {
  absl::Mutex mu;
  std::string text;
  SerialConfig Config() {
    SerialConfig serial;
    serial.mode = SerialConfig::Mode::kCallback;
    serial.sink = [this](std::string_view bytes) {
      absl::MutexLock lock(&mu);
      text.append(bytes);
    };
    return serial;
  }
  std::string Get() {
    absl::MutexLock lock(&mu);
    return text;
  }
  // Whether `needle` appears within a minute.
  bool WaitFor(const std::string& needle) {
    return WaitUntil([&] { return Get().find(needle) != std::string::npos; });
  }
};

}  // namespace vmm::testing

#endif  // VMM_TESTS_KVM_GUEST_CONSOLE_H_
