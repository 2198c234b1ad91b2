#include "arch/x86_64/loader/cmdline.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "arch/x86_64/layout.h"
#include "base/status_macros.h"

namespace vmm::x86_64 {

uint64_t CmdlineCapacity(const LoadedKernel& kernel) {
  if (!kernel.bzimage_header) return kCmdlineMaxSize;
  // cmdline_size (protocol 2.06+) excludes the NUL.
  return std::min<uint64_t>(uint64_t{kernel.bzimage_header->cmdline_size} + 1, kCmdlineMaxSize);
}

absl::StatusOr<GuestCmdline> WriteCmdline(const GuestMemory& mem, const LoadedKernel& kernel,
                                          absl::string_view cmdline) {
  if (cmdline.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("kernel command line contains a NUL byte");
  }
  const uint64_t capacity = CmdlineCapacity(kernel);
  const uint64_t size = cmdline.size() + 1;
  if (size > capacity) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "kernel command line is %d bytes; the kernel accepts at most %d", cmdline.size(),
        capacity - 1));
  }
  const GuestAddress addr(kCmdlineStart);
  ASSIGN_OR_RETURN(absl::Span<uint8_t> dst, mem.Slice(addr, size));
  std::copy(cmdline.begin(), cmdline.end(), dst.begin());
  dst[cmdline.size()] = 0;
  return GuestCmdline{addr, size};
}

}  // namespace vmm::x86_64
