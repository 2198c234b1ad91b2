#include "vmm/vmm.h"

namespace vmm {

int ExitStatus::ProcessExitCode() const {
  switch (reason) {
    case Reason::kPowerOff:
    case Reason::kReset:
      return 0;
    case Reason::kDebugExit:
      // QEMU's isa-debug-exit: the process exits with (value << 1) | 1.
      return static_cast<int>(((debug_code << 1) | 1) & 0xff);
    case Reason::kGuestPanic:
      return 4;  // even, so no debug-exit value can produce it
    case Reason::kTimeout:
      return 124;  // as timeout(1)
    case Reason::kStopped:
      return 130;  // as a shell reports a command ended by SIGINT
    case Reason::kError:
      return 1;
  }
  return 1;
}

}  // namespace vmm
