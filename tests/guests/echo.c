// A guest that answers what the host types on COM1: "ready" once, then
// "got: <line>" for each line (ended by \r or \n); the line "quit" ends it
// through debug-exit 3 (vmm exits 7). For console input from the host
// program (Vm::SendConsoleInput) and from the other serial back-ends.
#include "runtime/console.h"
#include "runtime/exit.h"
#include "runtime/guest.h"

void guest_main(const struct hvm_start_info* info) {
  (void)info;
  console_puts("ready\n");
  char line[128];
  unsigned length = 0;
  for (;;) {
    const int c = console_try_getc();
    if (c < 0) continue;
    if (c != '\r' && c != '\n') {
      if (length < sizeof(line) - 1) line[length++] = (char)c;
      continue;
    }
    line[length] = '\0';
    if (length == 4 && line[0] == 'q' && line[1] == 'u' && line[2] == 'i' && line[3] == 't') {
      console_puts("bye\n");
      guest_debug_exit(3);
    }
    console_printf("got: %s\n", line);
    length = 0;
  }
}
