// The API socket's transport over a real Unix socket: requests reach the
// handler and answers come back; the socket's file rules (0600, no stealing
// a live socket, removed at the end); and every kind of bad client — an
// oversize body or header, bytes that are not HTTP, one that hangs up
// mid-request, one that stalls, too many at once — gets an answer or is
// dropped while the server goes on serving. The last test does all of that
// with the server's seccomp filter enforced.
#include "vmm/api/api_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/unix_socket.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/sanitizer_build.h"

namespace vmm {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::vmm::testing::SanitizerBuild;

std::string TempSocketPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/api-", getpid(), "-", name, ".sock");
}

// A connected client socket (blocking), or invalid.
UniqueFd Connect(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr;
  if (!MakeUnixAddress(path, &addr) ||
      ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return UniqueFd();
  }
  return fd;
}

bool SendAll(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Everything the server sends until it closes the connection or `limit`
// passes ("" then, with *closed false).
std::string ReadUntilClosed(int fd, absl::Duration limit = absl::Seconds(10),
                            bool* closed = nullptr) {
  std::string out;
  const absl::Time deadline = absl::Now() + limit;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int wait = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (wait <= 0 || ::poll(&p, 1, wait) <= 0) {
      if (closed != nullptr) *closed = false;
      return out;
    }
    char buffer[4096];
    ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) {
      if (closed != nullptr) *closed = true;
      return out;
    }
    out.append(buffer, static_cast<size_t>(n));
  }
}

// One request on a new connection ("Connection: close" added); the raw
// response.
std::string Exchange(const std::string& path, const std::string& method,
                     const std::string& target, const std::string& body = "",
                     const std::string& extra_headers = "") {
  UniqueFd fd = Connect(path);
  if (!fd.valid()) return "(cannot connect)";
  std::string request = absl::StrCat(method, " ", target, " HTTP/1.1\r\nHost: localhost\r\n",
                                     "Connection: close\r\n", extra_headers);
  if (!body.empty()) absl::StrAppend(&request, "Content-Length: ", body.size(), "\r\n");
  absl::StrAppend(&request, "\r\n", body);
  if (!SendAll(fd.get(), request)) return "(cannot send)";
  return ReadUntilClosed(fd.get());
}

// A server whose handler echoes what it was given, as JSON-ish text.
std::unique_ptr<ApiServer> StartEcho(const std::string& path, ApiServerOptions options = {}) {
  absl::StatusOr<std::unique_ptr<ApiServer>> server = ApiServer::Start(
      path,
      [](const ApiRequest& request) {
        return ApiResponse{200,
                           absl::StrCat("{\"method\":\"", request.method, "\",\"path\":\"",
                                        request.path, "\",\"body_bytes\":", request.body.size(),
                                        "}"),
                           ""};
      },
      options);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

bool IsOk(const std::string& response) { return absl::StartsWith(response, "HTTP/1.1 200"); }

TEST(ApiServerTest, ARequestReachesTheHandlerAndItsAnswerComesBack) {
  const std::string path = TempSocketPath("echo");
  auto server = StartEcho(path);
  ASSERT_NE(server, nullptr);
  const std::string response =
      Exchange(path, "PUT", "/api/v1/vm.pause?verbose=1#x", "{}");
  EXPECT_THAT(response, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(response, HasSubstr("Content-Type: application/json"));
  EXPECT_THAT(response, HasSubstr(R"({"method":"PUT","path":"/api/v1/vm.pause","body_bytes":2})"));
}

TEST(ApiServerTest, AnswersCarryStatusAllowAndNoBodyFor204) {
  const std::string path = TempSocketPath("status");
  auto server = ApiServer::Start(path, [](const ApiRequest& request) {
    if (request.path == "/empty") return ApiResponse{204, "", ""};
    return ApiResponse{405, R"({"error":"no"})", "PUT"};
  });
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_THAT(Exchange(path, "GET", "/x"), StartsWith("HTTP/1.1 405 Method Not Allowed\r\n"));
  EXPECT_THAT(Exchange(path, "GET", "/x"), HasSubstr("Allow: PUT\r\n"));
  const std::string empty = Exchange(path, "PUT", "/empty");
  EXPECT_THAT(empty, StartsWith("HTTP/1.1 204 No Content\r\n"));
  EXPECT_TRUE(absl::EndsWith(empty, "\r\n\r\n")) << empty;
}

// An answer's follow-up action runs after the answer is out — and also
// when its client hangs up first.
TEST(ApiServerTest, ThenRunsAfterTheAnswerIsSent) {
  const std::string path = TempSocketPath("then");
  std::atomic<int> ran{0};
  auto server = ApiServer::Start(path, [&ran](const ApiRequest&) {
    ApiResponse response{204, "", ""};
    response.then = [&ran] { ++ran; };
    return response;
  });
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_THAT(Exchange(path, "PUT", "/x"), StartsWith("HTTP/1.1 204"));
  for (int i = 0; i < 200 && ran == 0; ++i) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(ran, 1);
  {
    UniqueFd fd = Connect(path);
    ASSERT_TRUE(SendAll(fd.get(), "PUT /x HTTP/1.1\r\nHost: x\r\n\r\n"));
  }  // gone before reading the answer
  for (int i = 0; i < 400 && ran < 2; ++i) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(ran, 2);
}

TEST(ApiServerTest, TheSocketIsOwnerOnlyAndRemovedAtTheEnd) {
  const std::string path = TempSocketPath("mode");
  {
    auto server = StartEcho(path);
    ASSERT_NE(server, nullptr);
    struct stat st;
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u);
  }
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << "the socket file outlived the server";
}

TEST(ApiServerTest, ALiveSocketIsNeverReplacedButAStaleOneIs) {
  const std::string path = TempSocketPath("live");
  auto first = StartEcho(path);
  ASSERT_NE(first, nullptr);
  absl::StatusOr<std::unique_ptr<ApiServer>> second =
      ApiServer::Start(path, [](const ApiRequest&) { return ApiResponse{}; });
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(second.status().message(), HasSubstr("in use"));
  EXPECT_TRUE(IsOk(Exchange(path, "GET", "/still-mine"))) << "the first server lost its socket";
  first.reset();

  // A socket nobody listens on (a VMM that was killed) is taken over.
  {
    UniqueFd stale(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un addr;
    ASSERT_TRUE(MakeUnixAddress(path, &addr));
    ASSERT_EQ(::bind(stale.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
  }
  auto third = StartEcho(path);
  ASSERT_NE(third, nullptr);
  EXPECT_TRUE(IsOk(Exchange(path, "GET", "/x")));
}

TEST(ApiServerTest, AnOversizeBodyIsRefusedAndServingGoesOn) {
  const std::string path = TempSocketPath("body");
  ApiServerOptions options;
  options.max_body_bytes = 1024;
  auto server = StartEcho(path, options);
  ASSERT_NE(server, nullptr);
  EXPECT_THAT(Exchange(path, "PUT", "/x", std::string(4096, 'a')), StartsWith("HTTP/1.1 413"));
  EXPECT_TRUE(IsOk(Exchange(path, "PUT", "/x", std::string(1000, 'a'))));
}

TEST(ApiServerTest, OversizeHeadersAreRefusedAndServingGoesOn) {
  const std::string path = TempSocketPath("headers");
  ApiServerOptions options;
  options.max_header_bytes = 1024;
  auto server = StartEcho(path, options);
  ASSERT_NE(server, nullptr);
  const std::string response =
      Exchange(path, "GET", "/x", "", absl::StrCat("X-Big: ", std::string(4096, 'h'), "\r\n"));
  EXPECT_THAT(response, StartsWith("HTTP/1.1 4")) << response;
  EXPECT_TRUE(IsOk(Exchange(path, "GET", "/x")));
}

TEST(ApiServerTest, BytesThatAreNotHttpGet400) {
  const std::string path = TempSocketPath("garbage");
  auto server = StartEcho(path);
  ASSERT_NE(server, nullptr);
  UniqueFd fd = Connect(path);
  ASSERT_TRUE(fd.valid());
  ASSERT_TRUE(SendAll(fd.get(), std::string("\x01\x02 not http at all\r\n\r\n", 22)));
  EXPECT_THAT(ReadUntilClosed(fd.get()), StartsWith("HTTP/1.1 400"));
  EXPECT_TRUE(IsOk(Exchange(path, "GET", "/x")));
}

TEST(ApiServerTest, AClientThatHangsUpMidRequestHarmsNoOne) {
  const std::string path = TempSocketPath("hangup");
  int calls = 0;
  auto server = ApiServer::Start(path, [&calls](const ApiRequest&) {
    ++calls;
    return ApiResponse{200, "{}", ""};
  });
  ASSERT_TRUE(server.ok()) << server.status();
  for (const std::string& partial :
       {std::string("PUT /api/v1/vm.stop HTTP/1.1\r\nHost: x\r\n"),
        std::string("PUT /api/v1/vm.stop HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"a\":")}) {
    UniqueFd fd = Connect(path);
    ASSERT_TRUE(fd.valid());
    ASSERT_TRUE(SendAll(fd.get(), partial));
    fd.Reset();
  }
  EXPECT_TRUE(IsOk(Exchange(path, "GET", "/x")));
  EXPECT_EQ(calls, 1) << "an incomplete request reached the handler";
}

TEST(ApiServerTest, AStalledClientIsDroppedAfterTheIdleTimeout) {
  const std::string path = TempSocketPath("stall");
  ApiServerOptions options;
  options.idle_timeout = absl::Seconds(1);
  auto server = StartEcho(path, options);
  ASSERT_NE(server, nullptr);
  UniqueFd fd = Connect(path);
  ASSERT_TRUE(fd.valid());
  ASSERT_TRUE(SendAll(fd.get(), "GET /x HTTP/1.1\r\nHo"));
  bool closed = false;
  ReadUntilClosed(fd.get(), absl::Seconds(8), &closed);
  EXPECT_TRUE(closed) << "the server kept a stalled connection past its timeout";
  EXPECT_TRUE(IsOk(Exchange(path, "GET", "/x")));
}

TEST(ApiServerTest, ConnectionsBeyondTheLimitAre503) {
  const std::string path = TempSocketPath("limit");
  ApiServerOptions options;
  options.max_connections = 2;
  auto server = StartEcho(path, options);
  ASSERT_NE(server, nullptr);
  // Two kept-alive connections, each having made a request.
  std::vector<UniqueFd> kept;
  for (int i = 0; i < 2; ++i) {
    kept.push_back(Connect(path));
    ASSERT_TRUE(SendAll(kept.back().get(), "GET /x HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::string response;
    while (!absl::StrContains(response, "}")) {
      bool closed = true;
      std::string more = ReadUntilClosed(kept.back().get(), absl::Milliseconds(200), &closed);
      if (more.empty() && closed) break;
      response += more;
    }
    ASSERT_TRUE(IsOk(response)) << response;
  }
  EXPECT_THAT(Exchange(path, "GET", "/x"), StartsWith("HTTP/1.1 503"));
  kept.clear();
  // Closed connections free their places.
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!IsOk(Exchange(path, "GET", "/x")) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(IsOk(Exchange(path, "GET", "/x")));
}

// All of the above with the API thread's seccomp filter enforced, in a
// forked child: a system call missing from the filter kills the child.
TEST(ApiServerTest, ServesAndRefusesUnderItsSeccompFilter) {
  if (SanitizerBuild()) GTEST_SKIP() << "sanitizer runtimes make calls the filters do not list";
  const std::string path = TempSocketPath("seccomp");
  pid_t pid = fork();
  if (pid == 0) {
    ApiServerOptions options;
    options.seccomp = SeccompMode::kEnforce;
    options.max_body_bytes = 1024;
    options.idle_timeout = absl::Seconds(1);
    options.max_connections = 1;
    auto server = ApiServer::Start(
        path, [](const ApiRequest&) { return ApiResponse{200, "{}", ""}; }, options);
    if (!server.ok()) _exit(3);
    int failures = 0;
    failures += !IsOk(Exchange(path, "PUT", "/x", "{}"));
    failures += !absl::StartsWith(Exchange(path, "PUT", "/x", std::string(4096, 'a')),
                                  "HTTP/1.1 413");
    {
      UniqueFd garbage = Connect(path);
      SendAll(garbage.get(), "\x01\x02\r\n\r\n");
      failures += !absl::StartsWith(ReadUntilClosed(garbage.get()), "HTTP/1.1 400");
      UniqueFd hangup = Connect(path);
      SendAll(hangup.get(), "GET /x HTTP/1.1\r\nHo");
    }
    UniqueFd stalled = Connect(path);
    SendAll(stalled.get(), "GET /x HTTP/1.1\r\nHo");
    bool closed = false;
    ReadUntilClosed(stalled.get(), absl::Seconds(8), &closed);
    failures += !closed;
    UniqueFd kept = Connect(path);
    SendAll(kept.get(), "GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
    absl::SleepFor(absl::Milliseconds(300));
    failures += !absl::StartsWith(Exchange(path, "GET", "/x"), "HTTP/1.1 503");
    kept.Reset();
    server->reset();
    _exit(failures == 0 ? 0 : 4);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_FALSE(WIFSIGNALED(status)) << "killed by signal " << WTERMSIG(status)
                                    << " (SIGSYS: a system call the API filter lacks)";
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "3: no server; 4: a request was answered wrongly";
}

}  // namespace
}  // namespace vmm
