// The kernel command line, written NUL-terminated at kCmdlineStart.
#ifndef VMM_ARCH_X86_64_LOADER_CMDLINE_H_
#define VMM_ARCH_X86_64_LOADER_CMDLINE_H_

#include <cstdint>
#include <string>

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

// What a Linux kernel needs on its command line to boot under a PVM host's
// KVM instruction emulator (shared/PLATFORM.md), which cannot execute XSAVE
// and XRSTOR (noxsave), CLAC/STAC (SMAP: nosmap before 5.19, clearcpuid=308
// after), POPCNT (151), nor the SIMD paths Linux's crypto picks (SSE3 128,
// PCLMULQDQ 129, SSSE3 137, SSE4.1 147, SSE4.2 148, AES-NI 153). On these
// hosts the guest's CPUID shows the host's features whatever KVM's table
// says, so the command line is the only lever. tests/linux/pvm/BOOT_LOG.md
// records which boot stop each switch removed.
inline constexpr absl::string_view kPvmLinuxSwitches[] = {
    "noxsave", "nosmap", "clearcpuid=308,151,128,129,137,147,148,153"};

// `cmdline` with each of kPvmLinuxSwitches appended unless the line already
// has that parameter (a user's own clearcpuid= is kept as is: Linux reads
// only the first). `added` gets what was appended, space-separated.
std::string WithPvmLinuxSwitches(absl::string_view cmdline, std::string* added);

// Writes `cmdline` and its NUL at kCmdlineStart. A line too long for the
// kernel, or one with an embedded NUL, is InvalidArgument.
absl::StatusOr<GuestCmdline> WriteCmdline(const GuestMemory& mem, const LoadedKernel& kernel,
                                          absl::string_view cmdline);

}  // namespace vmm::x86_64

#endif  // VMM_ARCH_X86_64_LOADER_CMDLINE_H_
