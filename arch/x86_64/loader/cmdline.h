// The kernel command line, written NUL-terminated at kCmdlineStart.
#ifndef VMM_ARCH_X86_64_LOADER_CMDLINE_H_
#define VMM_ARCH_X86_64_LOADER_CMDLINE_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "arch/x86_64/loader/loaded_kernel.h"
#include "base/guest_memory.h"

namespace vmm::x86_64 {

struct GuestCmdline {
  GuestAddress addr;
  uint64_t size = 0;  // bytes written, including the terminating NUL
};

// How many bytes, NUL included, of command line `kernel` accepts: the
// bzImage header's cmdline_size + 1, capped at kCmdlineMaxSize.
uint64_t CmdlineCapacity(const LoadedKernel& kernel);

// Writes `cmdline` and its NUL at kCmdlineStart. A line too long for the
// kernel, or one with an embedded NUL, is InvalidArgument.
absl::StatusOr<GuestCmdline> WriteCmdline(const GuestMemory& mem, const LoadedKernel& kernel,
                                          absl::string_view cmdline);

}  // namespace vmm::x86_64

#endif  // VMM_ARCH_X86_64_LOADER_CMDLINE_H_
