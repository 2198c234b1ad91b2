// The real console backends on a real event loop: file output appends, the
// Unix socket serves one client at a time, survives disconnects, and says
// "would block" instead of buffering when the client does not read.
#include "devices/virtio/console/console_backend.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace vmm::testing {
namespace {

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/vmm-console-" + std::to_string(getpid()) +
         "-" + name;
}

absl::Span<const uint8_t> B(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Polls `done` until it holds or 5 s pass.
template <typename F>
bool Eventually(F done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

class LoopThread {
 public:
  LoopThread() : loop_(std::move(EventLoop::Create()).value()) {
    thread_ = std::thread([this] { (void)loop_->Run(); });
  }
  ~LoopThread() {
    loop_->Stop();
    thread_.join();
  }
  EventLoop& loop() { return *loop_; }

 private:
  std::unique_ptr<EventLoop> loop_;
  std::thread thread_;
};

int Connect(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TEST(FileConsoleBackendTest, AppendsAndHasNoInput) {
  const std::string path = TempPath("file.log");
  { std::ofstream(path) << "before\n"; }
  LoopThread loop;
  auto backend = MakeFileConsoleBackend(path, loop.loop());
  ASSERT_TRUE(backend.ok()) << backend.status();
  (*backend)->Start({});
  const std::string line = "guest says hi\n";
  EXPECT_EQ((*backend)->Write(B(line)), line.size());
  uint8_t buf[8];
  EXPECT_EQ((*backend)->Read(absl::MakeSpan(buf)), 0u);
  EXPECT_FALSE((*backend)->TerminalSize().has_value());
  std::stringstream contents;
  contents << std::ifstream(path).rdbuf();
  EXPECT_EQ(contents.str(), "before\nguest says hi\n");
  ::unlink(path.c_str());
}

TEST(FileConsoleBackendTest, UnopenablePathIsAOneLineError) {
  LoopThread loop;
  auto backend = MakeFileConsoleBackend("/nonexistent-dir/x.log", loop.loop());
  ASSERT_FALSE(backend.ok());
  EXPECT_NE(std::string(backend.status().message()).find("/nonexistent-dir/x.log"),
            std::string::npos);
}

TEST(SocketConsoleBackendTest, BadPathIsRejected) {
  LoopThread loop;
  EXPECT_FALSE(MakeSocketConsoleBackend(std::string(200, 'a'), loop.loop()).ok());
  EXPECT_FALSE(MakeSocketConsoleBackend("/nonexistent-dir/c.sock", loop.loop()).ok());
}

TEST(SocketConsoleBackendTest, OneClientAtATimeBothWaysAndDisconnectIsNotFatal) {
  const std::string path = TempPath("sock");
  LoopThread loop;
  auto made = MakeSocketConsoleBackend(path, loop.loop());
  ASSERT_TRUE(made.ok()) << made.status();
  ConsoleBackend& backend = **made;
  std::atomic<int> readable{0}, writable{0};
  backend.Start({.readable = [&] { ++readable; }, .writable = [&] { ++writable; }});
  // Backend calls come from the loop thread in the VMM; here from the test
  // thread, which the backend allows (they are serialised).
  const std::string nobody = "dropped\n";
  EXPECT_EQ(backend.Write(B(nobody)),
            nobody.size())
      << "no client: output is dropped, not held";

  int a = Connect(path);
  ASSERT_GE(a, 0);
  backend.WatchInput(true);
  // The accept happens on the loop; once it has, output reaches the client.
  const std::string hello = "hello\n";
  ASSERT_TRUE(Eventually([&] {
    size_t n = backend.Write(B("x"));
    return n == 1 && ::recv(a, nullptr, 0, MSG_DONTWAIT | MSG_PEEK) != -1;
  }));
  char c;
  ASSERT_EQ(::recv(a, &c, 1, 0), 1);
  EXPECT_EQ(c, 'x');
  EXPECT_EQ(backend.Write(B(hello)), hello.size());
  char got[16] = {};
  ASSERT_EQ(::recv(a, got, sizeof(got), 0), 6);
  EXPECT_EQ(std::string(got, 6), hello);

  ASSERT_EQ(::send(a, "typed", 5, 0), 5);
  ASSERT_TRUE(Eventually([&] { return readable > 0; }));
  uint8_t in[16];
  EXPECT_EQ(backend.Read(absl::MakeSpan(in)), 5u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(in), 5), "typed");

  // A second client waits while the first is connected.
  int b = Connect(path);
  ASSERT_GE(b, 0);
  ::close(a);
  // The first client's end of input is noticed by Read; then the second
  // one is accepted.
  ASSERT_TRUE(Eventually([&] {
    (void)backend.Read(absl::MakeSpan(in));
    return backend.Write(B("y")) == 1 &&
           ::recv(b, nullptr, 0, MSG_DONTWAIT | MSG_PEEK) != -1;
  }));
  ASSERT_EQ(::recv(b, &c, 1, 0), 1);
  EXPECT_EQ(c, 'y');
  ::close(b);
  made->reset();
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << "the socket file is removed";
}

TEST(SocketConsoleBackendTest, ClientThatDoesNotReadMakesWritesWouldBlock) {
  const std::string path = TempPath("full");
  LoopThread loop;
  auto made = MakeSocketConsoleBackend(path, loop.loop());
  ASSERT_TRUE(made.ok()) << made.status();
  ConsoleBackend& backend = **made;
  std::atomic<int> writable{0};
  backend.Start({.readable = [] {}, .writable = [&] { ++writable; }});
  int a = Connect(path);
  ASSERT_GE(a, 0);
  int rcvbuf = 4096;
  ::setsockopt(a, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  std::string chunk(4096, 'q');
  // Wait for the accept (a write reaching the client).
  ASSERT_TRUE(Eventually([&] {
    backend.Write(B("q"));
    return ::recv(a, nullptr, 0, MSG_DONTWAIT | MSG_PEEK) != -1;
  }));
  size_t total = 0;
  bool blocked = false;
  for (int i = 0; i < 10000 && !blocked; ++i) {
    size_t n = backend.Write(B(chunk));
    total += n;
    blocked = n < chunk.size();
  }
  EXPECT_TRUE(blocked) << "after " << total << " bytes";
  EXPECT_LT(total, 8u << 20) << "the backend does not buffer without bound";
  backend.WatchOutput(true);
  // The client drains: writable fires.
  char sink[65536];
  while (::recv(a, sink, sizeof(sink), MSG_DONTWAIT) > 0) {
  }
  EXPECT_TRUE(Eventually([&] { return writable > 0; }));
  backend.WatchOutput(false);
  ::close(a);
}

}  // namespace
}  // namespace vmm::testing
