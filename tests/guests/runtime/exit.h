// Ways out of the VM. Each falls back to halting with interrupts off when
// the device is absent, so a guest never runs on past its end.
#ifndef VMM_TESTS_GUESTS_RUNTIME_EXIT_H_
#define VMM_TESTS_GUESTS_RUNTIME_EXIT_H_

#include <stdint.h>

#define DEBUG_EXIT_PORT 0x501  // QEMU isa-debug-exit compatible
#define I8042_COMMAND_PORT 0x64
#define I8042_CMD_RESET 0xfe

// Exit values the runtime and the guests use for their own failures. The
// VMM (and QEMU) report a debug-exit value v as status (v << 1) | 1.
#define GUEST_EXIT_FAILURE 100    // a guest's check failed: status 201
#define GUEST_EXIT_EXCEPTION 101  // an unexpected CPU exception: status 203
#define GUEST_EXIT_BAD_CMDLINE 103  // a malformed command-line value: status 207

// Writes the low byte of `value` to the debug-exit port (outb).
__attribute__((noreturn)) void guest_debug_exit(uint32_t value);

// Pulses reset through the i8042 controller (the VMM exits 0, as does QEMU
// with -no-reboot).
__attribute__((noreturn)) void guest_reset(void);

__attribute__((noreturn)) void guest_halt(void);

#endif  // VMM_TESTS_GUESTS_RUNTIME_EXIT_H_
