// A failed KVM ioctl is the VMM's or the host's problem, never the user's
// input: it is reported as kInternal (exit status 1) whatever the errno, with
// the ioctl and errno in the message.
#ifndef VMM_VMM_KVM_KVM_ERROR_H_
#define VMM_VMM_KVM_KVM_ERROR_H_

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace vmm {

// `what` names the ioctl and its arguments, e.g. "KVM_IRQFD gsi=5".
inline absl::Status KvmError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

}  // namespace vmm

#endif  // VMM_VMM_KVM_KVM_ERROR_H_
