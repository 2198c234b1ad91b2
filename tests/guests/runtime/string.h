// The libc memory routines the runtime provides (string.c).
#ifndef VMM_TESTS_GUESTS_RUNTIME_STRING_H_
#define VMM_TESTS_GUESTS_RUNTIME_STRING_H_

#include <stddef.h>

void* memset(void* dest, int c, size_t n);
void* memcpy(void* dest, const void* src, size_t n);
void* memmove(void* dest, const void* src, size_t n);
int memcmp(const void* a, const void* b, size_t n);

#endif  // VMM_TESTS_GUESTS_RUNTIME_STRING_H_
