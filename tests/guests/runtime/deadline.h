// Bounded waits. Every loop that waits for a device ends: after
// `min_spins` iterations once `ticks` TSC ticks have passed, or after
// `max_spins` iterations whatever the TSC says (in case it does not move).
// The TSC rate is unknown (1-5 GHz hosts) and, under the KVM emulator, a
// spin costs ~5 us, so both bounds are generous and neither is exact.
#ifndef VMM_TESTS_GUESTS_RUNTIME_DEADLINE_H_
#define VMM_TESTS_GUESTS_RUNTIME_DEADLINE_H_

#include <stdbool.h>
#include <stdint.h>

#include "runtime/io.h"

struct deadline {
  uint64_t start_tsc;
  uint64_t ticks;
  uint64_t spins;
  uint64_t min_spins;
  uint64_t max_spins;
};

// ~1 s at 3 GHz; at least 100k polls (~0.5 s in the emulator).
#define DEADLINE_DEFAULT_TICKS 3000000000ull
#define DEADLINE_DEFAULT_MIN_SPINS 100000ull
#define DEADLINE_DEFAULT_MAX_SPINS (1ull << 26)

static inline struct deadline deadline_start(uint64_t ticks) {
  struct deadline d = {rdtsc(), ticks, 0, DEADLINE_DEFAULT_MIN_SPINS,
                       DEADLINE_DEFAULT_MAX_SPINS};
  return d;
}

// Counts one iteration; true once the wait should give up.
static inline bool deadline_expired(struct deadline* d) {
  ++d->spins;
  if (d->spins >= d->max_spins) return true;
  if (d->spins < d->min_spins) return false;
  return rdtsc() - d->start_tsc >= d->ticks;
}

#endif  // VMM_TESTS_GUESTS_RUNTIME_DEADLINE_H_
