#include "runtime/exit.h"

#include "runtime/console.h"
#include "runtime/io.h"

void guest_debug_exit(uint32_t value) {
  outb(DEBUG_EXIT_PORT, (uint8_t)value);
  console_puts("exit: debug-exit did not stop the vm; halting\n");
  halt_forever();
}

void guest_reset(void) {
  outb(I8042_COMMAND_PORT, I8042_CMD_RESET);
  console_puts("exit: i8042 reset did not stop the vm; halting\n");
  halt_forever();
}

void guest_halt(void) { halt_forever(); }
