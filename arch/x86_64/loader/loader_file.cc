#include "arch/x86_64/loader/loader_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"

namespace vmm::x86_64 {
namespace {

// ENOENT is NotFound; every other errno is the user's bad argument.
absl::Status FileError(int err, absl::string_view what, const std::string& path,
                       absl::string_view action) {
  std::string message =
      std::string(absl::ErrnoToStatus(err, absl::StrCat(action, " ", what, " ", path)).message());
  return err == ENOENT ? absl::NotFoundError(message) : absl::InvalidArgumentError(message);
}

}  // namespace

absl::StatusOr<OpenedFile> OpenRegularFile(absl::string_view what, const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError(absl::StrCat("no ", what, " file given"));
  // O_NONBLOCK: opening a FIFO (or a tty) must not wait for a writer; it is
  // refused below, as anything that is not a regular file is. Reads of a
  // regular file ignore the flag.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return FileError(errno, what, path, "cannot open");
  OpenedFile file{UniqueFd(fd), 0};
  struct stat st;
  if (::fstat(fd, &st) != 0) return FileError(errno, what, path, "cannot stat");
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", path, " is not a regular file"));
  }
  file.size = static_cast<uint64_t>(st.st_size);
  return file;
}

absl::Status ReadExactly(absl::string_view what, const std::string& path, const UniqueFd& fd,
                         uint64_t offset, absl::Span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd.get(), out.data() + done, out.size() - done,
                        static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return FileError(errno, what, path, "cannot read");
    }
    if (n == 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s %s ended after %d bytes; expected %d", what, path, offset + done,
          offset + out.size()));
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint8_t>> ReadWholeFile(absl::string_view what, const std::string& path,
                                                   uint64_t max_size) {
  ASSIGN_OR_RETURN(OpenedFile file, OpenRegularFile(what, path));
  if (file.size > max_size) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s %s is %d bytes, larger than the %d bytes of guest memory", what, path, file.size,
        max_size));
  }
  std::vector<uint8_t> bytes(file.size);
  RETURN_IF_ERROR(ReadExactly(what, path, file.fd, 0, absl::MakeSpan(bytes)));
  return bytes;
}

}  // namespace vmm::x86_64
