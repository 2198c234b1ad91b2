// Opening and reading the user's kernel and initrd files with errors that
// name the file: a missing file is NotFound, anything else unusable is
// InvalidArgument (both are the user's to fix).
#ifndef VMM_ARCH_X86_64_LOADER_LOADER_FILE_H_
#define VMM_ARCH_X86_64_LOADER_LOADER_FILE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "base/unique_fd.h"

namespace vmm::x86_64 {

struct OpenedFile {
  UniqueFd fd;
  uint64_t size = 0;
};

// Opens a regular file for reading. `what` names it in errors ("kernel").
absl::StatusOr<OpenedFile> OpenRegularFile(absl::string_view what, const std::string& path);

// Reads exactly out.size() bytes from `offset`; a short file is an error.
absl::Status ReadExactly(absl::string_view what, const std::string& path, const UniqueFd& fd,
                         uint64_t offset, absl::Span<uint8_t> out);

// The whole file, refusing files larger than `max_size` bytes.
absl::StatusOr<std::vector<uint8_t>> ReadWholeFile(absl::string_view what, const std::string& path,
                                                   uint64_t max_size);

}  // namespace vmm::x86_64

#endif  // VMM_ARCH_X86_64_LOADER_LOADER_FILE_H_
