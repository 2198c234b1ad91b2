// Unix stream sockets at paths users name: listening without stealing one
// that is in use, and connecting.
#ifndef VMM_BASE_UNIX_SOCKET_H_
#define VMM_BASE_UNIX_SOCKET_H_

#include <sys/un.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/unique_fd.h"

namespace vmm {

// sockaddr_un for `path`; false when it is empty or does not fit sun_path.
bool MakeUnixAddress(const std::string& path, sockaddr_un* addr);

// A non-blocking stream socket connected to `path`; invalid on failure
// (errno set).
UniqueFd ConnectUnix(const std::string& path);

// A non-blocking listening stream socket bound at `path`, mode 0600 (only
// this user may connect). Something already
// there is replaced only when it is a stale socket (nobody accepts on it: a
// VMM that did not clean up); a live socket (another VM's console or vsock
// bridge) or any other kind of file is an error and is left alone. Errors
// read "<who> <path>: <what>", one line.
absl::StatusOr<UniqueFd> ListenUnix(const std::string& path, int backlog, absl::string_view who);

}  // namespace vmm

#endif  // VMM_BASE_UNIX_SOCKET_H_
