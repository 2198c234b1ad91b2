// virtio-vsock end to end: the real `vmm` binary with vsock.elf as the
// guest driver, over virtio-pci and virtio-mmio. The test is the host side
// of Firecracker's protocol: it connects to the socket, writes
// "CONNECT 1234\n", expects "OK <port>\n" and its bytes echoed by the guest;
// then it listens on "<socket>_5678", where the guest connects, and echoes
// the guest's bytes back.
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/kvm/subprocess.h"

namespace vmm::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr int kWaitMs = 90'000;  // the guest runs under the instruction emulator
constexpr size_t kEchoBytes = 80 * 1024;

sockaddr_un Address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  return addr;
}

// -1 until the vmm has created the socket (bounded by kWaitMs).
int ConnectWhenReady(const std::string& path) {
  const absl::Time deadline = absl::Now() + absl::Milliseconds(kWaitMs);
  while (absl::Now() < deadline) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr = Address(path);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) return fd;
    ::close(fd);
    absl::SleepFor(absl::Milliseconds(20));
  }
  return -1;
}

int ListenAt(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr = Address(path);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << path;
  EXPECT_EQ(::listen(fd, 1), 0);
  return fd;
}

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, kWaitMs) == 1;
}

// Reads until `n` bytes, a '\n' when `line`, EOF or the wait ends.
std::string Read(int fd, size_t n, bool line = false) {
  std::string out;
  while (out.size() < n && Readable(fd)) {
    char c[4096];
    const size_t want = line ? 1 : std::min(sizeof(c), n - out.size());
    ssize_t r = ::recv(fd, c, want, 0);
    if (r <= 0) break;
    out.append(c, static_cast<size_t>(r));
    if (line && out.back() == '\n') break;
  }
  return out;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

class VsockTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/vsockk-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/v.sock";
  }
  void TearDown() override {
    std::string cmd = "rm -rf " + dir_;
    (void)::system(cmd.c_str());
  }
  std::string dir_, path_;
};

TEST_P(VsockTest, EchoesInBothDirections) {
  REQUIRE_KVM();
  const std::string transport = GetParam();
  const int guest_listener = ListenAt(path_ + "_5678");
  absl::Cleanup close_listener = [&] { ::close(guest_listener); };
  ProcessResult result;
  std::thread vm([&] {
    result = RunProcess({VmmBinary(), "--kernel", GuestPath("vsock.elf"), "--memory", "64M",
                         "--timeout", "150", "--stats", "--vsock",
                         "cid=7,socket=" + path_ + ",transport=" + transport, "--cmdline",
                         "transport=" + transport + " cid=7"},
                        absl::Seconds(200));
  });
  absl::Cleanup join = [&] { vm.join(); };

  // Host -> guest port 1234.
  {
    const int fd = ConnectWhenReady(path_);
    ASSERT_GE(fd, 0) << "vmm never listened on " << path_;
    absl::Cleanup close_fd = [fd] { ::close(fd); };
    const std::string connect = "CONNECT 1234\n";
    ASSERT_EQ(::send(fd, connect.data(), connect.size(), MSG_NOSIGNAL), ssize_t(connect.size()));
    EXPECT_THAT(Read(fd, 32, /*line=*/true), StartsWith("OK "));
    // Far more than the guest's 4 KiB buf_alloc: the device must stop at the
    // guest's credit, ask for more (CREDIT_REQUEST) and resume on its
    // CREDIT_UPDATE; the guest fails if it ever gets more than it granted.
    std::string message(kEchoBytes, '\0');
    for (size_t i = 0; i < message.size(); ++i) message[i] = static_cast<char>('a' + i * 7 % 26);
    ASSERT_EQ(::send(fd, message.data(), message.size(), MSG_NOSIGNAL), ssize_t(message.size()));
    const std::string echo = Read(fd, message.size());
    EXPECT_EQ(echo.size(), message.size());
    EXPECT_TRUE(echo == message) << "the echo differs";
  }  // closed: the guest sees SHUTDOWN and answers RST

  // Guest -> host port 5678.
  ASSERT_TRUE(Readable(guest_listener)) << "the guest never connected to port 5678";
  const int conn = ::accept4(guest_listener, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(conn, 0);
  absl::Cleanup close_conn = [conn] { ::close(conn); };
  const std::string ping = Read(conn, 19);
  EXPECT_EQ(ping, "ping from the guest");
  ASSERT_EQ(::send(conn, ping.data(), ping.size(), MSG_NOSIGNAL), ssize_t(ping.size()));
  EXPECT_EQ(Read(conn, 1), "");  // the guest shuts the connection down

  std::move(join).Invoke();
  EXPECT_EQ(result.exit_code, 1) << result.out << result.err;  // debug-exit 0
  EXPECT_THAT(result.out, HasSubstr(absl::StrCat("vsock: echoed ", kEchoBytes, " bytes on 1234")));
  EXPECT_THAT(result.out, ContainsRegex("answered [1-9][0-9]* credit requests"));
  EXPECT_THAT(result.out, HasSubstr("vsock: 5678 echo ok"));
  EXPECT_THAT(result.out, HasSubstr("vsock: ok"));
  EXPECT_THAT(result.err, HasSubstr(" 0 virtio notify")) << result.err;
  EXPECT_FALSE(Exists(path_)) << "vmm left its socket file behind";
}

INSTANTIATE_TEST_SUITE_P(Transports, VsockTest, ::testing::Values("pci", "mmio"));

TEST(VsockCliTest, SocketInUseIsABadInputError) {
  REQUIRE_KVM();
  char dir[] = "/tmp/vsockk-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/v.sock";
  const int busy = ListenAt(path);
  ProcessResult r = RunProcess({VmmBinary(), "--kernel", GuestPath("halt.elf"), "--vsock",
                                "cid=3,socket=" + path},
                               absl::Seconds(60));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("in use"));
  EXPECT_TRUE(Exists(path));  // someone else's socket is left alone
  ::close(busy);
  ::unlink(path.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace vmm::testing
