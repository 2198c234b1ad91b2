// Reports an unexpected CPU exception (see exception_stubs.S) and ends the
// VM with GUEST_EXIT_EXCEPTION.
#include <stdint.h>

#include "runtime/console.h"
#include "runtime/exit.h"
#include "runtime/runtime_internal.h"

struct exception_frame {
  uint64_t vector;
  uint64_t error_code;
  uint64_t rip;
  uint64_t cs;
  uint64_t rflags;
  uint64_t rsp;
  uint64_t ss;
};

void exception_report(const struct exception_frame* frame) {
  uint64_t cr2;
  __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
  console_printf_unlocked_fallback(
      "exception: vector %lu error 0x%lx rip 0x%lx cs 0x%lx rsp 0x%lx cr2 0x%lx\n",
      (unsigned long)frame->vector, (unsigned long)frame->error_code,
      (unsigned long)frame->rip, (unsigned long)frame->cs, (unsigned long)frame->rsp,
      (unsigned long)cr2);
  guest_debug_exit(GUEST_EXIT_EXCEPTION);
}
