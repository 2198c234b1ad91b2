// The seccomp allow-lists against what the libraries under vmm do on a
// filtered thread, each run in a forked child with the filter enforced: a
// call missing from a list kills the child with SIGSYS, which the test sees.
#include "vmm/seccomp_filter.h"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/fakes/sanitizer_build.h"

namespace vmm {
namespace {

using ::vmm::testing::SanitizerBuild;

// Runs `body` in a forked child that then exits 0; the child's wait status.
template <typename Body>
int WaitStatusOfChild(Body body) {
  pid_t pid = fork();
  if (pid == 0) {
    body();
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

// Two threads, filtered as `thread`, wait on an absl::Mutex the first one
// holds: absl queues the second waiter behind the first and then reads its
// scheduling priority (pthread_getschedparam).
int ContendAMutexUnder(SeccompThread thread) {
  return WaitStatusOfChild([thread] {
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
  });
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

// What the vDSO does when the clocksource is one it cannot read from user
// space (an L1 whose TSC the kernel marked unstable falls back to hpet; seen
// in the nested lane, where vmm died of SIGSYS in gettimeofday): the clock
// calls become real system calls, made here directly.
int ReadTheClockBySyscallUnder(SeccompThread thread) {
  return WaitStatusOfChild([thread] {
    std::thread t([thread] {
      if (!InstallSeccompFilter(thread, SeccompMode::kEnforce).ok()) _exit(3);
      timespec ts;
      timeval tv;
      if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts) != 0) _exit(4);
      if (syscall(SYS_clock_getres, CLOCK_MONOTONIC, &ts) != 0) _exit(5);
      if (syscall(SYS_gettimeofday, &tv, nullptr) != 0) _exit(6);
      if (syscall(SYS_time, nullptr) == -1) _exit(7);
    });
    t.join();
  });
}

TEST(SeccompFilterTest, EveryThreadReadsTheClockWithoutTheVdso) {
  if (SanitizerBuild()) GTEST_SKIP() << "sanitizer runtimes make calls the filters do not list";
  for (SeccompThread thread : {SeccompThread::kVcpu, SeccompThread::kLoop, SeccompThread::kSignal,
                               SeccompThread::kApi}) {
    int status = ReadTheClockBySyscallUnder(thread);
    EXPECT_FALSE(WIFSIGNALED(status)) << "thread class " << static_cast<int>(thread)
                                      << " killed by signal " << WTERMSIG(status);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
}

}  // namespace
}  // namespace vmm
