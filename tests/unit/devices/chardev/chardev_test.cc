// The real chardevs on a real event loop: file output appends, the Unix
// socket serves one client at a time, survives disconnects and a restart of
// its user, a pty drops output until it is opened and then works both ways
// in raw mode, and both say "would block" instead of buffering when the
// reader does not read.
#include "devices/chardev/chardev.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/loop_thread.h"

namespace vmm::testing {
namespace {

absl::Span<const uint8_t> B(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(FileChardevTest, AppendsAndHasNoInput) {
  const std::string path = TempPath("file.log");
  { std::ofstream(path) << "before\n"; }
  LoopThread loop;
  auto backend = MakeFileChardev(path, loop.loop());
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

TEST(FileChardevTest, UnopenablePathIsAOneLineError) {
  LoopThread loop;
  auto backend = MakeFileChardev("/nonexistent-dir/x.log", loop.loop());
  ASSERT_FALSE(backend.ok());
  EXPECT_NE(std::string(backend.status().message()).find("/nonexistent-dir/x.log"),
            std::string::npos);
}

// Issue 17, item 1: --serial file=FIFO (and --console file=) blocked in
// open() until a reader came, before --timeout and with signals blocked.
TEST(FileChardevTest, AFifoNobodyReadsIsAnErrorNotAHang) {
  const std::string path = TempPath("fifo");
  ::unlink(path.c_str());
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  LoopThread loop;
  auto chardev = MakeFileChardev(path, loop.loop());
  ASSERT_FALSE(chardev.ok());
  EXPECT_THAT(std::string(chardev.status().message()), ::testing::HasSubstr("a FIFO nobody reads"));
  // With a reader, the FIFO is written.
  int reader = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(reader, 0);
  chardev = MakeFileChardev(path, loop.loop());
  ASSERT_TRUE(chardev.ok()) << chardev.status();
  (*chardev)->Start({});
  EXPECT_EQ((*chardev)->Write(B("hi")), 2u);
  char got[2];
  EXPECT_EQ(::read(reader, got, 2), 2);
  ::close(reader);
  ::unlink(path.c_str());
}

TEST(SocketChardevTest, BadPathIsRejected) {
  LoopThread loop;
  EXPECT_FALSE(MakeSocketChardev(std::string(200, 'a'), loop.loop()).ok());
  EXPECT_FALSE(MakeSocketChardev("/nonexistent-dir/c.sock", loop.loop()).ok());
}

TEST(SocketChardevTest, OneClientAtATimeBothWaysAndDisconnectIsNotFatal) {
  const std::string path = TempPath("sock");
  LoopThread loop;
  auto made = MakeSocketChardev(path, loop.loop());
  ASSERT_TRUE(made.ok()) << made.status();
  Chardev& backend = **made;
  std::atomic<int> readable{0}, writable{0};
  backend.Start({.readable = [&] { ++readable; }, .writable = [&] { ++writable; }});
  // Backend calls come from the loop thread in the VMM; here from the test
  // thread, which the backend allows (they are serialised).
  const std::string nobody = "dropped\n";
  EXPECT_EQ(backend.Write(B(nobody)),
            nobody.size())
      << "no client: output is dropped, not held";

  int a = ConnectUnix(path);
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
  int b = ConnectUnix(path);
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

TEST(SocketChardevTest, ClientThatDoesNotReadMakesWritesWouldBlock) {
  const std::string path = TempPath("full");
  LoopThread loop;
  auto made = MakeSocketChardev(path, loop.loop());
  ASSERT_TRUE(made.ok()) << made.status();
  Chardev& backend = **made;
  std::atomic<int> writable{0};
  backend.Start({.readable = [] {}, .writable = [&] { ++writable; }});
  int a = ConnectUnix(path);
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

TEST(SocketChardevTest, ClientStaysAcrossStopAndAStartByANewUser) {
  const std::string path = TempPath("restart");
  LoopThread loop;
  auto made = MakeSocketChardev(path, loop.loop());
  ASSERT_TRUE(made.ok()) << made.status();
  Chardev& chardev = **made;
  std::atomic<int> first{0}, second{0};
  chardev.Start({.readable = [&] { ++first; }});
  int a = ConnectUnix(path);
  ASSERT_GE(a, 0);
  ASSERT_TRUE(Eventually([&] {
    return chardev.Write(B("1")) == 1 && ::recv(a, nullptr, 0, MSG_DONTWAIT | MSG_PEEK) != -1;
  }));
  chardev.Stop();  // the machine goes (a guest reboot)...
  chardev.Start({.readable = [&] { ++second; }});  // ...and the next one's UART starts it
  chardev.WatchInput(true);
  ASSERT_EQ(::send(a, "k", 1, 0), 1);
  EXPECT_TRUE(Eventually([&] { return second > 0; }));
  EXPECT_EQ(first, 0);
  EXPECT_EQ(chardev.Write(B("2")), 1u);
  char got[2];
  ASSERT_EQ(::recv(a, got, 2, MSG_WAITALL), 2);
  EXPECT_EQ(std::string(got, 2), "12");
  ::close(a);
}

// Issue 17's item 2: a second VM pointed at a live console socket used to
// unlink it and take the path over; the first VM lost its console.
TEST(SocketChardevTest, ALiveSocketOfAnotherVmIsNotStolen) {
  const std::string path = TempPath("taken");
  LoopThread loop;
  auto first = MakeSocketChardev(path, loop.loop());
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = MakeSocketChardev(path, loop.loop());
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(std::string(second.status().message()), ::testing::HasSubstr("in use"));
  int client = ConnectUnix(path);
  EXPECT_GE(client, 0) << "the first VM's socket is still there";
  if (client >= 0) ::close(client);
}

TEST(CallbackChardevTest, HandsOutputToTheSinkAndHasNoInput) {
  std::string seen;
  auto chardev = MakeCallbackChardev([&](std::string_view bytes) { seen.append(bytes); });
  chardev->Start({});
  EXPECT_EQ(chardev->Write(B("abc")), 3u);
  uint8_t buf[4];
  EXPECT_EQ(chardev->Read(absl::MakeSpan(buf)), 0u);
  EXPECT_EQ(seen, "abc");
}

TEST(CallbackChardevTest, InputFromTheHostProgramReachesTheDevice) {
  LoopThread loop;
  auto chardev = CallbackChardev::Create([](std::string_view) {}, &loop.loop());
  ASSERT_TRUE(chardev.ok()) << chardev.status();
  std::atomic<int> readable{0};
  (*chardev)->Start({.readable = [&] { ++readable; }});
  (*chardev)->WatchInput(true);
  uint8_t buf[16];
  EXPECT_EQ((*chardev)->Read(absl::MakeSpan(buf)), 0u) << "no input yet";
  EXPECT_EQ((*chardev)->SendInput("ls\r"), 3u);
  ASSERT_TRUE(Eventually([&] { return readable > 0; })) << "the device was not told";
  (*chardev)->WatchInput(false);
  ASSERT_EQ((*chardev)->Read(absl::MakeSpan(buf)), 3u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), 3), "ls\r");
  (*chardev)->Stop();
}

TEST(CallbackChardevTest, InputBeyondThePipeIsRefusedNotBuffered) {
  LoopThread loop;
  auto chardev = CallbackChardev::Create([](std::string_view) {}, &loop.loop());
  ASSERT_TRUE(chardev.ok()) << chardev.status();
  const std::string big(1 << 20, 'x');
  const size_t taken = (*chardev)->SendInput(big);
  EXPECT_GT(taken, 0u);
  EXPECT_LT(taken, big.size()) << "a device that does not read must not make the VMM buffer";
  EXPECT_EQ((*chardev)->SendInput("more"), 0u) << "full";
  uint8_t buf[4096];
  EXPECT_EQ((*chardev)->Read(absl::MakeSpan(buf)), sizeof(buf));
  EXPECT_GT((*chardev)->SendInput("more"), 0u) << "room again after the device read";
}

TEST(CallbackChardevTest, WithoutALoopThereIsNoInput) {
  auto chardev = MakeCallbackChardev([](std::string_view) {});
  EXPECT_EQ(static_cast<CallbackChardev*>(chardev.get())->SendInput("x"), 0u);
}

class PtyChardevTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto made = MakePtyChardev(loop_.loop());
    ASSERT_TRUE(made.ok()) << made.status();
    pty_ = std::move(*made);
    pty_->Start({.readable = [&] { ++readable_; }, .writable = [&] { ++writable_; }});
  }
  void TearDown() override {
    if (reader_ >= 0) ::close(reader_);
  }
  void Open() {
    reader_ = ::open(pty_->path().c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    ASSERT_GE(reader_, 0) << pty_->path();
  }
  // What the user's end reads within `wait`.
  std::string ReaderGets(absl::Duration wait = absl::Milliseconds(50)) {
    std::string got;
    const absl::Time deadline = absl::Now() + wait;
    char buf[256];
    while (absl::Now() < deadline) {
      ssize_t n = ::read(reader_, buf, sizeof(buf));
      if (n > 0) got.append(buf, n);
      absl::SleepFor(absl::Milliseconds(1));
    }
    return got;
  }
  // Once the chardev noticed the reader (its poll runs every
  // kPtyReconnectPollMs), `probe` reaches it.
  bool Connected(const std::string& probe) {
    return Eventually([&] {
      pty_->Write(B(probe));
      return ReaderGets(absl::Milliseconds(5)).find(probe) != std::string::npos;
    });
  }

  LoopThread loop_;
  std::unique_ptr<Chardev> pty_;
  std::atomic<int> readable_{0}, writable_{0};
  int reader_ = -1;
};

TEST_F(PtyChardevTest, OutputIsDroppedUntilOpenedThenGoesBothWaysRaw) {
  EXPECT_EQ(pty_->path().rfind("/dev/pts/", 0), 0u) << pty_->path();
  EXPECT_EQ(pty_->Write(B("before anyone looked\n")), 21u) << "dropped, not held";
  Open();
  ASSERT_TRUE(Connected("x"));
  EXPECT_EQ(pty_->Write(B("a\nb")), 3u);
  EXPECT_EQ(ReaderGets(), "a\nb") << "raw: no CR added, nothing stale";

  pty_->WatchInput(true);
  ASSERT_EQ(::write(reader_, "typed\n", 6), 6);
  ASSERT_TRUE(Eventually([&] { return readable_ > 0; }));
  uint8_t in[16];
  EXPECT_EQ(pty_->Read(absl::MakeSpan(in)), 6u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(in), 6), "typed\n") << "raw: no echo, no editing";
}

TEST_F(PtyChardevTest, ReaderThatLeavesAndComesBackSeesNothingStale) {
  Open();
  ASSERT_TRUE(Connected("x"));
  ::close(reader_);
  reader_ = -1;
  EXPECT_EQ(pty_->Write(B("while away")), 10u);
  Open();
  ASSERT_TRUE(Connected("y"));
  EXPECT_EQ(ReaderGets().find("while away"), std::string::npos);
}

TEST_F(PtyChardevTest, ReaderThatDoesNotReadMakesWritesWouldBlock) {
  Open();
  ASSERT_TRUE(Connected("x"));
  std::string chunk(4096, 'q');
  size_t total = 0;
  bool blocked = false;
  for (int i = 0; i < 10000 && !blocked; ++i) {
    size_t n = pty_->Write(B(chunk));
    total += n;
    blocked = n < chunk.size();
  }
  EXPECT_TRUE(blocked) << "after " << total << " bytes";
  pty_->WatchOutput(true);
  ReaderGets();
  EXPECT_TRUE(Eventually([&] { return writable_ > 0; }));
  pty_->WatchOutput(false);
}

}  // namespace
}  // namespace vmm::testing
