// The seccomp allow-lists against what the libraries under vmm do on a
// filtered thread, each run in a forked child with the filter enforced: a
// call missing from a list kills the child with SIGSYS, which the test sees.
#include "vmm/seccomp_filter.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/fakes/sanitizer_build.h"

namespace vmm {
namespace {

using ::vmm::testing::SanitizerBuild;

// Two threads, filtered as `thread`, wait on an absl::Mutex the first one
// holds: absl queues the second waiter behind the first and then reads its
// scheduling priority (pthread_getschedparam).
int ContendAMutexUnder(SeccompThread thread) {
  pid_t pid = fork();
  if (pid == 0) {
    absl::Mutex mu;
    std::atomic<int> filtered{0};
    mu.Lock();
    auto wait = [&] {
      if (!InstallSeccompFilter(thread, SeccompMode::kEnforce).ok()) _exit(3);
      ++filtered;
      mu.Lock();
      mu.Unlock();
    };
    std::thread first(wait);
    while (filtered < 1) absl::SleepFor(absl::Milliseconds(1));
    absl::SleepFor(absl::Milliseconds(50));  // queued by now
    std::thread second(wait);
    while (filtered < 2) absl::SleepFor(absl::Milliseconds(1));
    absl::SleepFor(absl::Milliseconds(50));
    mu.Unlock();
    first.join();
    second.join();
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

TEST(SeccompFilterTest, ContendedMutexOnAVcpuThreadIsAllowed) {
  if (SanitizerBuild()) GTEST_SKIP() << "sanitizer runtimes make calls the filters do not list";
  int status = ContendAMutexUnder(SeccompThread::kVcpu);
  EXPECT_FALSE(WIFSIGNALED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(SeccompFilterTest, ContendedMutexOnTheLoopThreadIsAllowed) {
  if (SanitizerBuild()) GTEST_SKIP() << "sanitizer runtimes make calls the filters do not list";
  int status = ContendAMutexUnder(SeccompThread::kLoop);
  EXPECT_FALSE(WIFSIGNALED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
}  // namespace vmm
