// What a test guest provides and what the runtime gives it.
#ifndef VMM_TESTS_GUESTS_RUNTIME_GUEST_H_
#define VMM_TESTS_GUESTS_RUNTIME_GUEST_H_

#include "runtime/cmdline.h"
#include "runtime/console.h"
#include "runtime/exit.h"
#include "runtime/io.h"
#include "runtime/pvh.h"

// The guest's entry point, called on the boot CPU in 64-bit mode with the
// UART initialised and an exception handler installed. Returning halts.
void guest_main(const struct hvm_start_info* info);

#endif  // VMM_TESTS_GUESTS_RUNTIME_GUEST_H_
