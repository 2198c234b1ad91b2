// Proves, in the TSan build, that tsan_absl_mutex.so does its job both ways
// (tests/sanitizers/run runs it before the TSan tests, preloaded):
//   tsan_absl_mutex_check        two threads share a counter under
//                                absl::MutexLock / ReaderMutexLock: TSan must
//                                stay silent (exit 0)
//   tsan_absl_mutex_check race   they also share one without the lock: TSan
//                                must report it (its exitcode, not 0)
#include <cstdio>
#include <cstring>
#include <thread>

#include "absl/synchronization/mutex.h"

namespace {

absl::Mutex mu;
int guarded ABSL_GUARDED_BY(mu) = 0;
int unguarded = 0;

}  // namespace

int main(int argc, char** argv) {
  const bool race = argc > 1 && std::strcmp(argv[1], "race") == 0;
  auto work = [race] {
    for (int i = 0; i < 1000; ++i) {
      {
        absl::MutexLock lock(&mu);
        ++guarded;
      }
      {
        absl::ReaderMutexLock lock(&mu);
        (void)guarded;
      }
      if (race) ++unguarded;
    }
  };
  std::thread a(work), b(work);
  a.join();
  b.join();
  absl::MutexLock lock(&mu);
  std::printf("guarded %d, unguarded %d\n", guarded, unguarded);
  return guarded == 2000 ? 0 : 1;
}
