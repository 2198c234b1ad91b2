// A guest that counts on COM1 for ever ("count 1", "count 2", ...), a line
// every few thousand loop turns: for pausing (the count must stand still
// while the VM is paused and go on after).
#include "runtime/guest.h"

void guest_main(const struct hvm_start_info* info) {
  (void)info;
  for (unsigned long n = 1;; ++n) {
    console_printf("count %lu\n", n);
    for (volatile unsigned spin = 0; spin < 20000; ++spin) {
    }
  }
}
