// Serial console on COM1 (16550 at 0x3f8): polled output and printf-lite.
// Output from all CPUs is serialised by one spinlock, one call at a time.
#ifndef VMM_TESTS_GUESTS_RUNTIME_CONSOLE_H_
#define VMM_TESTS_GUESTS_RUNTIME_CONSOLE_H_

#include <stdarg.h>

// 8N1, no interrupts. Writing works without it; the runtime calls it first.
void console_init(void);

// Writes a string as is ("\n" is sent as "\n").
void console_puts(const char* s);

// Formats like printf for: %s %c %d %i %u %x %X %p %%, the length modifiers
// l and ll, a '0' flag and a field width ("%08x"). Anything else is printed
// literally.
void console_printf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void console_vprintf(const char* fmt, va_list args);

// A byte the host typed (COM1's receive buffer), or -1 when there is none.
int console_try_getc(void);

// For the exception handler: takes the lock only if it is free within a
// bounded number of tries, so a fault inside printf still gets reported.
void console_printf_unlocked_fallback(const char* fmt, ...)
    __attribute__((format(printf, 1, 2)));

#endif  // VMM_TESTS_GUESTS_RUNTIME_CONSOLE_H_
