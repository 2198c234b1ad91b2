// The API socket's transport: HTTP/1.1 over a Unix stream socket, served by
// one thread of its own (libevent's evhttp), the way Firecracker and Cloud
// Hypervisor serve their REST APIs. What a request means is not decided
// here: each one is handed to an ApiHandler (vmm/api/vm_routes.h answers
// them for a Vm), and this file only moves bytes and enforces limits.
//
// Requests are untrusted input: headers and body are bounded (a larger one
// is answered 431/413 and the connection closed), a client that stalls
// mid-request is dropped after the idle timeout, the number of connections
// served at once is bounded (503 beyond it), and nothing a client sends can
// do more than get an error answer. The socket is created 0600 and never
// replaces a live socket (base/unix_socket.h); it is removed when the
// server stops.
#ifndef VMM_VMM_API_API_SERVER_H_
#define VMM_VMM_API_API_SERVER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "vmm/vmm.h"

namespace vmm {

struct ApiRequest {
  std::string method;  // "GET", "PUT", ...
  std::string path;    // "/api/v1/vm.info": the query string and fragment removed
  std::string body;
};

struct ApiResponse {
  int status = 200;
  std::string body;   // JSON; empty for 204
  std::string allow;  // 405 only: the methods the path takes ("GET")
  // Run on the server's thread once the answer is out (or its client has
  // gone): for an action that would end the VM, and with it the server,
  // before its own answer could be sent (vm.stop).
  std::function<void()> then;
};

// Answers one request; runs on the server's thread, one request at a time.
using ApiHandler = std::function<ApiResponse(const ApiRequest&)>;

struct ApiServerOptions {
  size_t max_header_bytes = 8 * 1024;
  size_t max_body_bytes = 16 * 1024;
  // A connection idle this long (mid-request or between requests) is closed.
  absl::Duration idle_timeout = absl::Seconds(10);
  // Connections served at once; a request on one more is answered 503.
  int max_connections = 16;
  // The serving thread confines itself with this seccomp mode's API filter
  // (vmm/seccomp_filter.h) before it serves anything.
  SeccompMode seccomp = SeccompMode::kOff;
};

class ApiServer {
 public:
  // Listens at `path` and starts serving. Errors name the socket ("api
  // socket PATH: in use by another process").
  static absl::StatusOr<std::unique_ptr<ApiServer>> Start(const std::string& path,
                                                         ApiHandler handler,
                                                         ApiServerOptions options = {});
  // Stops serving (a request being answered is finished first), joins the
  // thread and removes the socket file.
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  const std::string& path() const;

 private:
  struct State;
  explicit ApiServer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace vmm

#endif  // VMM_VMM_API_API_SERVER_H_
