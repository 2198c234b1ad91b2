// Instructions a PVM host's KVM emulator cannot execute and vmm finishes
// itself (vmm/emulation_assist.h), run from a guest so the whole path — the
// emulation-failure exit, the decode, the applied result — is checked on
// the real /dev/kvm. On hardware KVM they run natively and the answers are
// the same.
//
// Output: one "assists: <insn> ok" line per check, or "... FAIL ..." and
// GUEST_EXIT_FAILURE; debug-exit 0 when all passed.
#include "runtime/guest.h"
#include "runtime/io.h"

static int failures;

static void check(const char* what, unsigned long got, unsigned long want) {
  if (got == want) {
    console_printf("assists: %s ok\n", what);
  } else {
    console_printf("assists: %s FAIL: got 0x%lx, want 0x%lx\n", what, got, want);
    ++failures;
  }
}

// LSL: the limit of our own code segment (flat, 4 KiB granular: 4 GiB - 1),
// and ZF clear with the destination untouched for the null selector.
static void lsl(void) {
  unsigned long cs;
  __asm__ volatile("mov %%cs, %0" : "=r"(cs));
  unsigned long limit = 0x1234;
  unsigned char zf;
  __asm__ volatile("lsl %2, %0; setz %1" : "+r"(limit), "=q"(zf) : "r"(cs) : "cc");
  check("lsl code segment limit", limit, 0xffffffffUL);
  check("lsl code segment zf", zf, 1);
  limit = 0x1234;
  __asm__ volatile("lsl %2, %0; setz %1" : "+r"(limit), "=q"(zf) : "r"(0UL) : "cc");
  check("lsl null selector keeps the destination", limit, 0x1234);
  check("lsl null selector zf", zf, 0);
}

void guest_main(const struct hvm_start_info* info) {
  (void)info;
  lsl();
  if (failures) guest_debug_exit(GUEST_EXIT_FAILURE);
  console_puts("assists: all ok\n");
  guest_debug_exit(0);
}
