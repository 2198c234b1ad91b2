// Whether absl::Mutex checks lock order in this process, from the
// environment: one rule for every program that runs the devices (vmm's
// main(), bench/blk_harness, bench/net_tap_bench).
//
// Debian's abseil is built without NDEBUG, so by default every
// absl::Mutex::Lock runs its deadlock detector (a global graph behind a
// global lock: 13 ns -> 55 ns per lock and unlock, measured). The tests keep
// it (VMM_LOCK_CHECKS=1, set by tests/kvm and the nested lane); a user's vmm
// does not pay for it on every device request.
#ifndef VMM_BASE_LOCK_CHECKS_H_
#define VMM_BASE_LOCK_CHECKS_H_

#include <cstdlib>

#include "absl/synchronization/mutex.h"

namespace vmm {

// Call first thing in main(), before any other thread exists.
inline void SetLockChecksFromEnvironment() {
  if (std::getenv("VMM_LOCK_CHECKS") == nullptr) {
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  }
}

}  // namespace vmm

#endif  // VMM_BASE_LOCK_CHECKS_H_
