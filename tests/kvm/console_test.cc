// virtio-console end to end: the real `vmm` binary with console.elf as the
// driver, over virtio-pci and virtio-mmio. Guest output reaches a file, a
// Unix socket client and stdout; bytes the test writes into the socket reach
// the guest, which echoes them back.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/un.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/kvm/subprocess.h"

namespace vmm::testing {
namespace {

using ::testing::HasSubstr;

std::vector<std::string> ConsoleArgv(const std::vector<std::string>& vmm_args,
                                     const std::string& cmdline) {
  std::vector<std::string> argv = {VmmBinary(), "--kernel", GuestPath("console.elf"),
                                   "--memory",  "64M",      "--timeout",
                                   "90",        "--rng",    "off",
                                   "--cmdline", cmdline};
  argv.insert(argv.end(), vmm_args.begin(), vmm_args.end());
  return argv;
}

std::string ReadFile(const std::string& path) {
  std::stringstream s;
  s << std::ifstream(path).rdbuf();
  return s.str();
}

TEST(ConsoleTest, GuestOutputIsAppendedToAFileOverPci) {
  REQUIRE_KVM();
  const std::string path = ::testing::TempDir() + "/hvc-pci.log";
  ::unlink(path.c_str());
  ProcessResult r = RunProcess(
      ConsoleArgv({"--console", "file=" + path}, "echo=0 lines=3"), absl::Seconds(120));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("console pci: ok"));
  EXPECT_EQ(ReadFile(path),
            "console: hello from the guest over pci\n"
            "console: line 1 of 3\nconsole: line 2 of 3\nconsole: line 3 of 3\n");
}

TEST(ConsoleTest, GuestOutputGoesToStdoutWithConsoleStdioOverMmio) {
  REQUIRE_KVM();
  // COM1 goes to a file, so stdout holds the virtio console alone.
  const std::string serial = ::testing::TempDir() + "/com1-stdio.log";
  ::unlink(serial.c_str());
  ProcessResult r = RunProcess(ConsoleArgv({"--console", "stdio,transport=mmio", "--serial",
                                            "file=" + serial},
                                           "echo=0 pci=off"),
                               absl::Seconds(120));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err << ReadFile(serial);
  EXPECT_EQ(r.out, "console: hello from the guest over mmio\n");
  EXPECT_THAT(ReadFile(serial), HasSubstr("console mmio: ok"));
}

// Connects to the console socket once vmm has created it.
int ConnectWhenListening(const std::string& path, absl::Duration limit) {
  const absl::Time deadline = absl::Now() + limit;
  while (absl::Now() < deadline) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) return fd;
    ::close(fd);
    absl::SleepFor(absl::Milliseconds(20));
  }
  return -1;
}

// Reads from `fd` until `want` has been seen, EOF, or `limit`.
std::string ReadUntil(int fd, const std::string& want, absl::Duration limit) {
  std::string got;
  const absl::Time deadline = absl::Now() + limit;
  while (got.find(want) == std::string::npos && absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) != 1) continue;
    char buf[512];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

void SocketEcho(const std::string& transport, const std::string& cmdline) {
  const std::string path = ::testing::TempDir() + "/hvc-" + transport + ".sock";
  ProcessResult r;
  std::thread vmm([&] {
    r = RunProcess(ConsoleArgv({"--console", "socket=" + path + ",transport=" + transport},
                               cmdline),
                   absl::Seconds(120));
  });
  int fd = ConnectWhenListening(path, absl::Seconds(30));
  std::string got;
  if (fd >= 0) {
    // Sent at once: the bytes wait in the socket until the guest has posted
    // receive buffers.
    const std::string input = "ping 42 from the host\n";
    EXPECT_EQ(::send(fd, input.data(), input.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(input.size()));
    got = ReadUntil(fd, "console: echo ping 42 from the host\n", absl::Seconds(90));
    ::close(fd);
  }
  vmm.join();
  ASSERT_GE(fd, 0) << "could not connect to " << path << "\n" << r.out << r.err;
  EXPECT_THAT(got, HasSubstr("console: echo ping 42 from the host\n"));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("console " + transport + ": received \"ping 42 from the host\""));
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << "vmm removes its socket";
}

TEST(ConsoleTest, SocketBytesBothWaysOverPci) {
  REQUIRE_KVM();
  SocketEcho("pci", "mmio=off");
}

TEST(ConsoleTest, SocketBytesBothWaysOverMmio) {
  REQUIRE_KVM();
  SocketEcho("mmio", "pci=off");
}

TEST(ConsoleTest, SocketBytesBothWaysWithInterruptsOnBothTransports) {
  REQUIRE_KVM();
  SocketEcho("mmio", "pci=off irq=on");
  SocketEcho("pci", "mmio=off irq=on");
}

// Runs `argv` with `input` on a stdin pipe (kept open until it exits);
// returns its stdout and sets *exit_code.
std::string RunWithStdin(const std::vector<std::string>& argv, const std::string& input,
                         int* exit_code) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) return "";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  (void)!::write(in[1], input.data(), input.size());
  std::string got;
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  for (;;) {
    pollfd p{out[0], POLLIN, 0};
    if (absl::Now() > deadline) {
      ::kill(pid, SIGKILL);
      break;
    }
    if (::poll(&p, 1, 100) != 1) continue;
    char buf[512];
    ssize_t n = ::read(out[0], buf, sizeof(buf));
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(in[1]);
  ::close(out[0]);
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return got;
}

// A client that stops reading blocks the guest's output instead of losing
// it: every line arrives, in order, once the client reads again.
TEST(ConsoleTest, SlowSocketClientBackpressuresTheGuestWithoutLosingOutput) {
  REQUIRE_KVM();
  const std::string path = ::testing::TempDir() + "/hvc-slow.sock";
  constexpr int kLines = 2000;
  ProcessResult r;
  std::thread vmm([&] {
    r = RunProcess(ConsoleArgv({"--console", "socket=" + path},
                               absl::StrCat("mmio=off start=1 timeout_ms=30000 lines=", kLines)),
                   absl::Seconds(120));
  });
  int fd = ConnectWhenListening(path, absl::Seconds(30));
  std::string got;
  if (fd >= 0) {
    int small = 4096;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    EXPECT_EQ(::send(fd, "go\n", 3, MSG_NOSIGNAL), 3);
    absl::SleepFor(absl::Seconds(2));  // not reading: the guest must wait
    got = ReadUntil(fd, absl::StrCat("console: line ", kLines, " of ", kLines, "\n"),
                    absl::Seconds(60));
    EXPECT_EQ(::send(fd, "bye\n", 4, MSG_NOSIGNAL), 4);
    got += ReadUntil(fd, "console: echo bye\n", absl::Seconds(30));
    ::close(fd);
  }
  vmm.join();
  ASSERT_GE(fd, 0) << r.out << r.err;
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  std::string want = "console: hello from the guest over pci\n";
  for (int i = 1; i <= kLines; ++i) absl::StrAppend(&want, "console: line ", i, " of ", kLines, "\n");
  want += "console: echo bye\n";
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want) << "output differs from the expected lines";
}

// With --console stdio the virtio console alone reads stdin: COM1 (also on
// stdio here) must not take any of the line.
TEST(ConsoleTest, ConsoleStdioOwnsStdinEvenWithSerialOnStdio) {
  REQUIRE_KVM();
  int code = -1;
  std::string out = RunWithStdin(ConsoleArgv({"--console", "stdio"}, "mmio=off"),
                                 "typed on stdin\n", &code);
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("console: hello from the guest over pci\n"));
  EXPECT_THAT(out, HasSubstr("console: echo typed on stdin\n"));
  EXPECT_THAT(out, HasSubstr("console pci: received \"typed on stdin\""));
}

TEST(ConsoleTest, UnusableSocketPathIsAOneLineError) {
  REQUIRE_KVM();  // found while building the machine, after /dev/kvm
  ProcessResult r = RunProcess(
      ConsoleArgv({"--console", "socket=/nonexistent-dir/c.sock"}, ""), absl::Seconds(30));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("/nonexistent-dir/c.sock"));
}

}  // namespace
}  // namespace vmm::testing
