// Sockets at user-named paths: a stale one is replaced, a live one (another
// VM's console or vsock bridge) is refused and keeps working, and nothing
// that is not a socket is ever removed.
#include "base/unix_socket.h"

#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/loop_thread.h"

namespace vmm {
namespace {

using ::testing::HasSubstr;
using testing::TempPath;

TEST(ListenUnixTest, AStaleSocketIsReplaced) {
  const std::string path = TempPath("stale");
  {
    absl::StatusOr<UniqueFd> first = ListenUnix(path, 4, "socket");
    ASSERT_TRUE(first.ok()) << first.status();
  }  // closed without unlinking: what a killed VMM leaves
  absl::StatusOr<UniqueFd> second = ListenUnix(path, 4, "socket");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(ConnectUnix(path).valid());
  ::unlink(path.c_str());
}

TEST(ListenUnixTest, ALiveSocketIsRefusedAndKeepsWorking) {
  const std::string path = TempPath("live");
  absl::StatusOr<UniqueFd> owner = ListenUnix(path, 4, "socket");
  ASSERT_TRUE(owner.ok()) << owner.status();
  absl::StatusOr<UniqueFd> thief = ListenUnix(path, 4, "console socket");
  ASSERT_FALSE(thief.ok());
  EXPECT_THAT(thief.status().message(), HasSubstr("console socket " + path + ": in use"));
  UniqueFd client = ConnectUnix(path);
  ASSERT_TRUE(client.valid()) << "the owner's socket file is still there";
  EXPECT_GE(::accept4(owner->get(), nullptr, nullptr, SOCK_CLOEXEC), 0)
      << "and connections still reach the owner";
  ::unlink(path.c_str());
}

TEST(ListenUnixTest, AFileThatIsNotASocketIsLeftAlone) {
  const std::string path = TempPath("file");
  { std::ofstream(path) << "keep me"; }
  absl::StatusOr<UniqueFd> s = ListenUnix(path, 4, "socket");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("exists and is not a socket"));
  std::ifstream in(path);
  std::string contents;
  std::getline(in, contents);
  EXPECT_EQ(contents, "keep me");
  ::unlink(path.c_str());
}

TEST(ListenUnixTest, BadPathsAreOneLineErrors) {
  EXPECT_THAT(ListenUnix(std::string(200, 'p'), 4, "socket").status().message(),
              HasSubstr("not a valid Unix socket path"));
  EXPECT_THAT(ListenUnix("", 4, "socket").status().message(),
              HasSubstr("not a valid Unix socket path"));
  EXPECT_THAT(ListenUnix("/nonexistent/dir/s", 4, "socket").status().message(),
              HasSubstr("cannot listen on socket /nonexistent/dir/s"));
}

}  // namespace
}  // namespace vmm
