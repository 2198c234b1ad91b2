// Status propagation helpers used across the tree.
#ifndef VMM_BASE_STATUS_MACROS_H_
#define VMM_BASE_STATUS_MACROS_H_

#include <cerrno>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

// Returns from the current function if `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                          \
  do {                                                 \
    ::absl::Status vmm_status_tmp_ = (expr);           \
    if (!vmm_status_tmp_.ok()) return vmm_status_tmp_; \
  } while (0)

#define VMM_STATUS_CONCAT_INNER_(a, b) a##b
#define VMM_STATUS_CONCAT_(a, b) VMM_STATUS_CONCAT_INNER_(a, b)

// `ASSIGN_OR_RETURN(auto x, Foo());` assigns the value of an OK StatusOr or
// returns its status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  VMM_ASSIGN_OR_RETURN_IMPL_(VMM_STATUS_CONCAT_(vmm_statusor_, __LINE__), lhs, expr)
#define VMM_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return std::move(tmp).status();   \
  lhs = std::move(tmp).value()

namespace vmm {

// absl::ErrnoToStatus with the current errno; `what` names the failed call,
// e.g. "KVM_IRQFD gsi=5".
inline absl::Status ErrnoStatus(absl::string_view what) {
  return absl::ErrnoToStatus(errno, what);
}

// Prefixes `status` with what the caller was doing, keeping its code.
inline absl::Status Annotate(const absl::Status& status, absl::string_view what) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
}

}  // namespace vmm

#endif  // VMM_BASE_STATUS_MACROS_H_
