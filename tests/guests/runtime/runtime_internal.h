// Runtime functions that only the runtime itself calls.
#ifndef VMM_TESTS_GUESTS_RUNTIME_RUNTIME_INTERNAL_H_
#define VMM_TESTS_GUESTS_RUNTIME_RUNTIME_INTERNAL_H_

#include "runtime/pvh.h"

struct exception_frame;

// Called by entry.S on the BSP (IDT loaded): console, then guest_main.
void runtime_start(const struct hvm_start_info* info);
void exception_report(const struct exception_frame* frame);

#endif  // VMM_TESTS_GUESTS_RUNTIME_RUNTIME_INTERNAL_H_
