// The first test guest: proves boot, console, command line, MP table and
// SMP bring-up, then leaves through debug-exit (exit=N) or an i8042 reset.
//
// Output (one line each; the "cpu" lines come in any order):
//   Hello from the vmm test guest
//   cmdline: <command line>
//   cpus: <N from the MP table>
//   cpu <apic id> up                 (once per AP)
//   smp: <N> cpus up
//   exit: debug-exit <N>  |  exit: panic  |  exit: acpi poweroff  |
//   exit: acpi reset  |  exit: triple fault  |  exit: reset
// exit=N leaves through debug-exit; exit=panic reports a panic through
// pvpanic (port 0x505); exit=poweroff writes S5 to the hardware-reduced ACPI
// sleep control register (port 0x600); exit=acpi-reset writes the FADT's
// reset register (port 0x602); exit=triple-fault raises #UD with an empty
// IDT (a crash, as a broken kernel would); otherwise an i8042 reset. With
// `park`, the other CPUs are sent INIT first, as Linux does before a reboot.
// On a failure the guest prints "... FAIL ..." and exits with
// GUEST_EXIT_FAILURE (status 201).
#include "runtime/guest.h"
#include "runtime/io.h"
#include "runtime/mp_table.h"
#include "runtime/smp.h"

void guest_main(const struct hvm_start_info* info) {
  console_puts("Hello from the vmm test guest\n");
  const char* cmdline = pvh_cmdline(info);
  console_printf("cmdline: %s\n", cmdline);

  struct mp_info mp;
  const char* why = "";
  if (!mp_find_cpus(&mp, &why)) {
    console_printf("mp: %s; assuming one cpu\n", why);
  }
  console_printf("cpus: %u\n", mp.cpu_count);

  if (cmdline_has(cmdline, "park")) smp_ap_work = smp_stop_this_cpu;
  uint32_t up = smp_start_aps(&mp);
  if (up != mp.cpu_count) {
    console_printf("smp: FAIL: %u of %u cpus up\n", up, mp.cpu_count);
    guest_debug_exit(GUEST_EXIT_FAILURE);
  }
  console_printf("smp: %u cpus up\n", up);

  if (cmdline_has(cmdline, "park")) {
    smp_park_aps_in_init(&mp);
    console_puts("smp: other cpus parked in INIT\n");
    // Linux waits panic_timeout seconds before its reboot: a parked CPU
    // must stay parked that long.
    uint64_t start = rdtsc();
    while (rdtsc() - start < 3000000000ull) __asm__ volatile("pause");
  }

  uint64_t code = 0;
  if (cmdline_equals(cmdline, "exit", "panic")) {
    console_puts("exit: panic\n");
    outb(0x505, 1);  // pvpanic: PANICKED
    guest_halt();
  }
  if (cmdline_equals(cmdline, "exit", "poweroff")) {
    console_puts("exit: acpi poweroff\n");
    outb(0x600, (uint8_t)(0x20 | (5 << 2)));  // SLP_EN | SLP_TYP = S5
    guest_halt();
  }
  if (cmdline_equals(cmdline, "exit", "acpi-reset")) {
    console_puts("exit: acpi reset\n");
    outb(0x602, 1);  // the FADT's reset register
    guest_halt();
  }
  if (cmdline_equals(cmdline, "exit", "triple-fault")) {
    console_puts("exit: triple fault\n");
    // #UD cannot be delivered (#GP), nor can that (#DF), nor that: shutdown.
    struct __attribute__((packed)) {
      uint16_t limit;
      uint64_t base;
    } empty_idt = {0, 0};
    __asm__ volatile("lidt %0\n\tud2" : : "m"(empty_idt));
  }
  if (cmdline_get_u64(cmdline, "exit", &code)) {
    console_printf("exit: debug-exit %lu\n", (unsigned long)code);
    guest_debug_exit((uint32_t)code);
  }
  console_puts("exit: reset\n");
  guest_reset();
}
