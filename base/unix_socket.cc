#include "base/unix_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace vmm {

bool MakeUnixAddress(const std::string& path, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr->sun_path)) return false;
  std::memcpy(addr->sun_path, path.data(), path.size());
  return true;
}

UniqueFd ConnectUnix(const std::string& path) {
  sockaddr_un addr;
  if (!MakeUnixAddress(path, &addr)) {
    errno = ENAMETOOLONG;
    return UniqueFd();
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return fd;
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return UniqueFd();
  }
  return fd;
}

absl::StatusOr<UniqueFd> ListenUnix(const std::string& path, int backlog, absl::string_view who) {
  sockaddr_un addr;
  if (!MakeUnixAddress(path, &addr)) {
    return absl::InvalidArgumentError(absl::StrCat(
        who, " ", path, ": not a valid Unix socket path (1 to ", sizeof(addr.sun_path) - 1,
        " bytes)"));
  }
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::AlreadyExistsError(absl::StrCat(who, " ", path, ": exists and is not a socket"));
    }
    // Refused: nobody listens, the socket is stale. Anything else (accepted,
    // a full backlog) means a live one.
    const bool live = ConnectUnix(path).valid() || errno != ECONNREFUSED;
    if (live) {
      return absl::AlreadyExistsError(
          absl::StrCat(who, " ", path, ": in use by another process"));
    }
    ::unlink(path.c_str());
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(absl::StrCat(who, " ", path, ": socket"));
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(absl::StrCat("cannot listen on ", who, " ", path));
  }
  // Only this user may connect, whatever the umask; before listen(), so
  // nobody can have connected in between.
  if (::chmod(path.c_str(), 0600) != 0) {
    absl::Status status = ErrnoStatus(absl::StrCat("cannot restrict ", who, " ", path));
    ::unlink(path.c_str());
    return status;
  }
  if (::listen(fd.get(), backlog) != 0) {
    absl::Status status = ErrnoStatus(absl::StrCat("cannot listen on ", who, " ", path));
    ::unlink(path.c_str());
    return status;
  }
  return fd;
}

}  // namespace vmm
