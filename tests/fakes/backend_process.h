// A back-end program for tests (qemu-storage-daemon, virtiofsd): started
// with posix_spawn, ready once it listens on its Unix socket, SIGKILLed when
// the test is done (or wants it to die).
//
// "Listens" is read from /proc/net/unix (the socket's __SO_ACCEPTCON flag),
// not from the socket file's existence: the file appears at bind(), and a
// connect() between bind() and listen() is refused (seen under ASan in CI).
// Probing with connect() instead would open a session with the back-end.
#ifndef VMM_TESTS_FAKES_BACKEND_PROCESS_H_
#define VMM_TESTS_FAKES_BACKEND_PROCESS_H_

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

extern char** environ;

namespace vmm::testing {

// True if a Unix socket bound at `path` is listening (per /proc/net/unix).
inline bool UnixSocketListening(const std::string& path) {
  constexpr unsigned long kAcceptCon = 0x10000;  // __SO_ACCEPTCON
  std::ifstream table("/proc/net/unix");
  std::string line;
  std::getline(table, line);  // the header
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string slot, refs, protocol, flags, type, state, inode, name;
    if (!(fields >> slot >> refs >> protocol >> flags >> type >> state >> inode >> name)) continue;
    if (name == path && (std::stoul(flags, nullptr, 16) & kAcceptCon) != 0) return true;
  }
  return false;
}

// A back-end program, started with `argv`, listening on `socket` once up.
class BackendProcess {
 public:
  ~BackendProcess() { Stop(); }
  // Fails the test if it does not start listening within 5 s.
  void Start(std::vector<std::string> argv, const std::string& socket) {
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ASSERT_EQ(::posix_spawn(&pid_, args[0], nullptr, nullptr, args.data(), environ), 0);
    for (int i = 0; i < 500 && !UnixSocketListening(socket); ++i) ::usleep(10000);
    ASSERT_TRUE(UnixSocketListening(socket)) << argv[0] << " did not listen on " << socket;
  }
  // SIGKILL: a back-end that dies.
  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

// A virtiofsd to run: $VIRTIOFSD, Debian's own package, QEMU 7.2's
// (qemu-system-common), or where tools/setup puts the latter; "" if none.
inline std::string VirtiofsdPath() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("VIRTIOFSD")) candidates.push_back(env);
  for (const char* p : {"/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd",
                        "/usr/local/lib/vmm/virtiofsd"}) {
    candidates.push_back(p);
  }
  for (const std::string& c : candidates) {
    if (::access(c.c_str(), X_OK) == 0) return c;
  }
  return "";
}

}  // namespace vmm::testing

#endif  // VMM_TESTS_FAKES_BACKEND_PROCESS_H_
