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

// Like cmdline_find for the (n+1)-th `key=value` token (n counts from 0),
// for keys that may repeat.
const char* cmdline_find_nth(const char* cmdline, const char* key, size_t n,
                             size_t* value_len);

// True when there is a `key=value` token and its value is exactly `value`.
bool cmdline_equals(const char* cmdline, const char* key, const char* value);

// True when a token is exactly `key` or starts with `key=`.
bool cmdline_has(const char* cmdline, const char* key);

// Parses `key=N` (decimal, or hex with 0x). False when absent or malformed.
bool cmdline_get_u64(const char* cmdline, const char* key, uint64_t* value);

// `key=N` within [min, max] in *value, or `def` when there is no `key=`
// token. False when the token is malformed or out of range.
bool cmdline_u64_in_range(const char* cmdline, const char* key, uint64_t def, uint64_t min,
                          uint64_t max, uint64_t* value);

// For guest_main: prints "<who>: FAIL: bad command line value for <key>" and
// exits with GUEST_EXIT_BAD_CMDLINE.
__attribute__((noreturn)) void cmdline_bad_value(const char* who, const char* key);

// `key=N` within [min, max], or `def` without a `key=` token; any other
// value ends the guest through cmdline_bad_value.
uint64_t cmdline_u64_or_exit(const char* cmdline, const char* who, const char* key,
                             uint64_t def, uint64_t min, uint64_t max);

// Parses `len` characters as decimal or 0x-hex. False when malformed.
bool parse_u64(const char* s, size_t len, uint64_t* value);

#endif  // VMM_TESTS_GUESTS_RUNTIME_CMDLINE_H_
