// Runs a program to completion with a wall-clock limit and captures its
// output: how the KVM tests drive the real `vmm` binary.
#ifndef VMM_TESTS_KVM_SUBPROCESS_H_
#define VMM_TESTS_KVM_SUBPROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace vmm::testing {

struct ProcessResult {
  int exit_code = -1;   // the exit status, or -1 if killed by a signal
  int signal = 0;       // the signal that ended it, if any
  bool killed_after_limit = false;
  std::string out;      // stdout
  std::string err;      // stderr
  absl::Duration elapsed;
};

// Runs argv[0] with argv (no shell), stdin from /dev/null. After `limit` the
// process is killed with SIGKILL and killed_after_limit is set.
ProcessResult RunProcess(const std::vector<std::string>& argv, absl::Duration limit);

// A process left running for a test to signal: argv[0] with argv (no
// shell), stdin from /dev/null, stdout dropped, stderr kept for Wait().
class BackgroundProcess {
 public:
  explicit BackgroundProcess(const std::vector<std::string>& argv);
  ~BackgroundProcess();  // SIGKILLs and reaps it unless Wait() did
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;

  pid_t pid() const { return pid_; }  // -1 if it could not be started
  // Waits for it to end: its wait status (WIFEXITED, ...); stderr in err().
  int Wait();
  const std::string& err() const { return err_; }

 private:
  pid_t pid_ = -1;
  int err_fd_ = -1;
  std::string err_;
};

// True if /dev/kvm can be opened; otherwise prints a loud SKIP banner once.
bool KvmAvailable();

// The first line of every test that needs /dev/kvm: skips it (loudly, once)
// where there is none. The nested lane (tests/nested/) runs them all on
// kvm-amd.
#define REQUIRE_KVM() \
  if (!::vmm::testing::KvmAvailable()) GTEST_SKIP() << "SKIPPED: /dev/kvm is not available"

// The vmm binary and the test-guest directory, from the environment meson
// sets for the test (VMM_BIN, VMM_GUEST_DIR).
std::string VmmBinary();
std::string GuestPath(const std::string& name);

}  // namespace vmm::testing

#endif  // VMM_TESTS_KVM_SUBPROCESS_H_
