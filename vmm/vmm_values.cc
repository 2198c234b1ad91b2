// What vmm.h's value types compute: exit codes and names. Apart from the VM
// so that code that only reports (the API socket's routes, their fuzz
// target) needs no machine.
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

std::string_view ExitReasonName(ExitStatus::Reason reason) {
  switch (reason) {
    case ExitStatus::Reason::kPowerOff: return "power-off";
    case ExitStatus::Reason::kReset: return "reset";
    case ExitStatus::Reason::kDebugExit: return "debug-exit";
    case ExitStatus::Reason::kGuestPanic: return "guest-panic";
    case ExitStatus::Reason::kTimeout: return "timeout";
    case ExitStatus::Reason::kStopped: return "stopped";
    case ExitStatus::Reason::kError: return "error";
  }
  return "unknown";
}

std::string_view VmStateName(VmState state) {
  switch (state) {
    case VmState::kCreated: return "created";
    case VmState::kRunning: return "running";
    case VmState::kPaused: return "paused";
    case VmState::kEnded: return "ended";
  }
  return "unknown";
}

std::string_view VmEventKindName(VmEvent::Kind kind) {
  switch (kind) {
    case VmEvent::Kind::kStateChanged: return "state-changed";
    case VmEvent::Kind::kGuestPanic: return "guest-panic";
    case VmEvent::Kind::kDeviceNeedsReset: return "device-needs-reset";
  }
  return "unknown";
}

}  // namespace vmm
