// Fuzzes the API socket's request handling: the input is the raw bytes a
// client sends (request lines, headers, bodies, several requests in a row).
// They go over a real connection to an ApiServer answering with the vm
// routes over a fake Vm (tests/fakes/fake_vm.h), then the client half-closes
// and reads until the server hangs up or goes quiet. Every answer must be
// HTTP; every 256 inputs a ping checks the server still answers. The same
// bytes, split at the first blank line into a request line and a body, also
// go straight to HandleVmRequest, whose answers must be JSON (or empty for
// 204).
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/unix_socket.h"
#include "tests/fakes/fake_vm.h"
#include "tests/fuzz/fuzz_util.h"
#include "vmm/api/api_server.h"
#include "vmm/api/vm_routes.h"

namespace {

using vmm::testing::FakeVm;

vmm::VmConfig FuzzConfig() {
  vmm::VmConfig config;
  config.kernel_path = "/boot/vmlinuz";
  config.cmdline = "console=ttyS0";
  return config;
}

// The VM the server answers for, replaced for every input.
std::shared_ptr<FakeVm>& CurrentVm() {
  static std::shared_ptr<FakeVm> vm = std::make_shared<FakeVm>(FuzzConfig());
  return vm;
}

const std::string& ServerPath() {
  static const std::string path = [] {
    std::string p = absl::StrCat("/tmp/api-fuzz-", getpid(), ".sock");
    vmm::ApiServerOptions options;
    options.idle_timeout = absl::Seconds(2);
    static auto server = vmm::ApiServer::Start(
        p,
        [](const vmm::ApiRequest& request) {
          std::shared_ptr<FakeVm> vm = std::atomic_load(&CurrentVm());
          return vmm::HandleVmRequest(*vm, request);
        },
        options);
    FUZZ_CHECK(server.ok());
    return p;
  }();
  return path;
}

void ExpectJsonAnswer(const vmm::ApiResponse& response) {
  if (response.status == 204) {
    FUZZ_CHECK(response.body.empty());
    return;
  }
  const nlohmann::json json = nlohmann::json::parse(response.body, nullptr, false);
  FUZZ_CHECK(!json.is_discarded());
  FUZZ_CHECK(json.is_object());
  if (response.status >= 400) FUZZ_CHECK(json.contains("error"));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  std::atomic_store(&CurrentVm(), std::make_shared<FakeVm>(FuzzConfig()));

  // Straight to the routes: "METHOD PATH\n\nBODY".
  {
    const size_t line_end = bytes.find('\n');
    const std::string line = bytes.substr(0, line_end);
    const size_t space = line.find(' ');
    const size_t blank = bytes.find("\n\n");
    vmm::ApiRequest request;
    request.method = line.substr(0, space);
    request.path = space == std::string::npos ? "" : line.substr(space + 1);
    request.body = blank == std::string::npos ? "" : bytes.substr(blank + 2);
    FakeVm vm(FuzzConfig());
    ExpectJsonAnswer(vmm::HandleVmRequest(vm, request));
  }

  // Over the socket.
  vmm::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr;
  FUZZ_CHECK(vmm::MakeUnixAddress(ServerPath(), &addr));
  FUZZ_CHECK(::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0);
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd.get(), bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may hang up on a bad request before reading it all
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd.get(), SHUT_WR);
  // What the server answers, until it hangs up or goes quiet (a kept-alive
  // connection waits for more requests; the client then just closes).
  std::string answer;
  for (int quiet_ms = 50;; quiet_ms = 10) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, quiet_ms) != 1) break;
    char buffer[4096];
    ssize_t n = ::recv(fd.get(), buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    answer.append(buffer, static_cast<size_t>(n));
  }
  // HTTP, in the request's version (libevent answers "HTTP/0.9 ..." too).
  FUZZ_CHECK(answer.empty() || absl::StartsWith(answer, "HTTP/"));
  fd.Reset();
  // The server is still there and answering.
  static int inputs = 0;
  if (++inputs % 256 == 0) {
    vmm::UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    FUZZ_CHECK(::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0);
    const std::string ping = "GET /api/v1/vmm.ping HTTP/1.1\r\nConnection: close\r\n\r\n";
    FUZZ_CHECK(::send(probe.get(), ping.data(), ping.size(), MSG_NOSIGNAL) ==
               static_cast<ssize_t>(ping.size()));
    pollfd p{probe.get(), POLLIN, 0};
    FUZZ_CHECK(::poll(&p, 1, 5000) == 1);
    char buffer[64] = {};
    FUZZ_CHECK(::recv(probe.get(), buffer, sizeof(buffer) - 1, 0) > 0);
    FUZZ_CHECK(absl::StartsWith(buffer, "HTTP/1.1 200"));
  }
  return 0;
}
