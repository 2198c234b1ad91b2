// Teaches ThreadSanitizer what absl::Mutex does, for TSan builds only.
//
// Debian's abseil is built without -fsanitize=thread, so its Mutex takes and
// releases the lock with atomics and futexes that TSan never sees: every
// access guarded by an absl::Mutex would be reported as a race. This library
// interposes the Mutex entry points our code calls (the TSan build links
// abseil dynamically and preloads this library; see
// tests/sanitizers/meson.build), forwards each to
// abseil and wraps it in TSan's mutex annotations — the very annotations
// abseil itself emits when it is built with TSan (ABSL_TSAN_MUTEX_*). TSan
// then derives happens-before from our locks, and still reports a real race
// on data accessed without the lock.
//
// Covered: Lock, Unlock, ReaderLock, ReaderUnlock, TryLock, ReaderTryLock,
// Await and LockWhen (the event loop's Hold, a vCPU's park, Notification),
// and the destructor (the constructor is inline and already annotated).
// Await is told to TSan as an unlock before the wait and a lock after it;
// a Condition may be evaluated by abseil on another thread, so the state
// conditions read is atomic in our code. Not covered: CondVar (unused
// outside one unit test); TSan reports code using it loudly ("double
// lock"), never silently.
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/base/options.h"
#include "absl/synchronization/mutex.h"

#if !ABSL_OPTION_USE_INLINE_NAMESPACE
#error "expects abseil's inline namespace (Debian: absl::debian3)"
#endif

#define VMM_TSAN_STR2(x) #x
#define VMM_TSAN_STR(x) VMM_TSAN_STR2(x)

namespace {

// "_ZN4absl7debian3" + `rest`: the mangled name of an absl:: member.
std::string Mangled(const char* rest) {
  const char* ns = VMM_TSAN_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  return "_ZN4absl" + std::to_string(std::strlen(ns)) + ns + rest;
}

// Abseil's own definition of the member `rest`, found after this library.
template <typename Fn>
Fn Real(const char* rest) {
  std::string name = Mangled(rest);
  void* fn = dlsym(RTLD_NEXT, name.c_str());
  if (fn == nullptr) {
    std::fprintf(stderr, "tsan_absl_mutex: %s not found in abseil\n", name.c_str());
    std::abort();
  }
  return reinterpret_cast<Fn>(fn);
}

using Void = void (*)(absl::Mutex*);
using Bool = bool (*)(absl::Mutex*);

// Interposition only works if the program resolves absl::Mutex::Lock to us
// (we must precede libabsl_synchronization in the lookup order, as
// LD_PRELOAD ensures). Checked at load time: a miss would turn every guarded
// access into a false race report.
__attribute__((constructor)) void CheckInterposed() {
  std::string name = Mangled("5Mutex4LockEv");
  Dl_info used{}, self{};
  void* fn = dlsym(RTLD_DEFAULT, name.c_str());
  if (fn == nullptr || dladdr(fn, &used) == 0 ||
      dladdr(reinterpret_cast<void*>(&CheckInterposed), &self) == 0 ||
      used.dli_fbase != self.dli_fbase) {
    std::fprintf(stderr,
                 "tsan_absl_mutex: absl::Mutex::Lock resolves to %s, not to this "
                 "library: TSan would report every absl::Mutex-guarded access\n",
                 used.dli_fname != nullptr ? used.dli_fname : "nothing");
    std::abort();
  }
}

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  static const Void real = Real<Void>("5Mutex4LockEv");
  __tsan_mutex_pre_lock(this, 0);
  real(this);
  __tsan_mutex_post_lock(this, 0, 0);
}

void Mutex::Unlock() {
  static const Void real = Real<Void>("5Mutex6UnlockEv");
  __tsan_mutex_pre_unlock(this, 0);
  real(this);
  __tsan_mutex_post_unlock(this, 0);
}

void Mutex::ReaderLock() {
  static const Void real = Real<Void>("5Mutex10ReaderLockEv");
  __tsan_mutex_pre_lock(this, __tsan_mutex_read_lock);
  real(this);
  __tsan_mutex_post_lock(this, __tsan_mutex_read_lock, 0);
}

void Mutex::ReaderUnlock() {
  static const Void real = Real<Void>("5Mutex12ReaderUnlockEv");
  __tsan_mutex_pre_unlock(this, __tsan_mutex_read_lock);
  real(this);
  __tsan_mutex_post_unlock(this, __tsan_mutex_read_lock);
}

bool Mutex::TryLock() {
  static const Bool real = Real<Bool>("5Mutex7TryLockEv");
  __tsan_mutex_pre_lock(this, __tsan_mutex_try_lock);
  bool locked = real(this);
  __tsan_mutex_post_lock(
      this, locked ? __tsan_mutex_try_lock
             : __tsan_mutex_try_lock | __tsan_mutex_try_lock_failed,
      0);
  return locked;
}

bool Mutex::ReaderTryLock() {
  static const Bool real = Real<Bool>("5Mutex13ReaderTryLockEv");
  __tsan_mutex_pre_lock(this, __tsan_mutex_try_read_lock);
  bool locked = real(this);
  __tsan_mutex_post_lock(this,
                         locked ? __tsan_mutex_try_read_lock
                                : __tsan_mutex_try_read_lock_failed,
                         0);
  return locked;
}

using WithCondition = void (*)(absl::Mutex*, const absl::Condition&);

void Mutex::Await(const Condition& cond) {
  static const WithCondition real = Real<WithCondition>("5Mutex5AwaitERKNS0_9ConditionE");
  __tsan_mutex_pre_unlock(this, 0);
  __tsan_mutex_post_unlock(this, 0);
  real(this, cond);
  __tsan_mutex_pre_lock(this, 0);
  __tsan_mutex_post_lock(this, 0, 0);
}

void Mutex::LockWhen(const Condition& cond) {
  static const WithCondition real = Real<WithCondition>("5Mutex8LockWhenERKNS0_9ConditionE");
  __tsan_mutex_pre_lock(this, 0);
  real(this, cond);
  __tsan_mutex_post_lock(this, 0, 0);
}

Mutex::~Mutex() {
  static const Void real = Real<Void>("5MutexD1Ev");
  real(this);
  __tsan_mutex_destroy(this, __tsan_mutex_not_static);
}

ABSL_NAMESPACE_END
}  // namespace absl
