// A guest that never ends on its own: for the VMM's --timeout.
#include "runtime/guest.h"

void guest_main(const struct hvm_start_info* info) {
  (void)info;
  console_puts("halting\n");
  guest_halt();
}
