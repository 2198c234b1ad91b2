// Command-line helpers: the line is a space-separated list of tokens, each
// `key=value` or a bare `key`.
#ifndef VMM_TESTS_GUESTS_RUNTIME_CMDLINE_H_
#define VMM_TESTS_GUESTS_RUNTIME_CMDLINE_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Returns the value of the first `key=value` token and stores its length in
// *value_len, or returns NULL when there is none.
const char* cmdline_find(const char* cmdline, const char* key, size_t* value_len);

// True when a token is exactly `key` or starts with `key=`.
bool cmdline_has(const char* cmdline, const char* key);

// Parses `key=N` (decimal, or hex with 0x). False when absent or malformed.
bool cmdline_get_u64(const char* cmdline, const char* key, uint64_t* value);

#endif  // VMM_TESTS_GUESTS_RUNTIME_CMDLINE_H_
