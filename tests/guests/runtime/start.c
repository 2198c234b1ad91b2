// The C side of the boot path: entered once on the BSP from entry.S.
#include "runtime/console.h"
#include "runtime/exit.h"
#include "runtime/guest.h"
#include "runtime/runtime_internal.h"

void runtime_start(const struct hvm_start_info* info) {
  console_init();
  guest_main(info);
  guest_halt();
}
