// A test-and-set spinlock. xchg with a memory operand is implicitly locked
// and is one of the few atomics the KVM instruction emulator executes (no
// cmpxchg16b here).
#ifndef VMM_TESTS_GUESTS_RUNTIME_SPINLOCK_H_
#define VMM_TESTS_GUESTS_RUNTIME_SPINLOCK_H_

#include <stdbool.h>
#include <stdint.h>

#include "runtime/io.h"

typedef struct {
  uint32_t locked;
} spinlock_t;

static inline bool spin_trylock(spinlock_t* lock) {
  return __atomic_exchange_n(&lock->locked, 1, __ATOMIC_ACQUIRE) == 0;
}

static inline void spin_lock(spinlock_t* lock) {
  while (!spin_trylock(lock)) {
    while (__atomic_load_n(&lock->locked, __ATOMIC_RELAXED) != 0) cpu_relax();
  }
}

static inline void spin_unlock(spinlock_t* lock) {
  __atomic_store_n(&lock->locked, 0, __ATOMIC_RELEASE);
}

#endif  // VMM_TESTS_GUESTS_RUNTIME_SPINLOCK_H_
