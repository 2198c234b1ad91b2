#include "runtime/cmdline.h"

#include "runtime/console.h"
#include "runtime/exit.h"

// Bounds every scan: a command line without a terminator must not send us
// through all of memory.
#define CMDLINE_MAX 4096

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n'; }

// Finds the (skip+1)-th token that is `key=value` (or, when `bare_ok`, also
// a bare `key`). Returns the value (or the end of a bare token) or NULL.
static const char* find_token(const char* cmdline, const char* key,
                              bool bare_ok, size_t skip, size_t* value_len) {
  size_t key_len = 0;
  while (key[key_len]) ++key_len;
  size_t i = 0;
  while (i < CMDLINE_MAX && cmdline[i]) {
    while (i < CMDLINE_MAX && is_space(cmdline[i])) ++i;
    size_t start = i;
    while (i < CMDLINE_MAX && cmdline[i] && !is_space(cmdline[i])) ++i;
    size_t len = i - start;
    if (len < key_len) continue;
    bool same = true;
    for (size_t k = 0; k < key_len && same; ++k) {
      same = cmdline[start + k] == key[k];
    }
    if (!same) continue;
    bool bare = len == key_len && bare_ok;
    bool with_value = len > key_len && cmdline[start + key_len] == '=';
    if (!bare && !with_value) continue;
    if (skip > 0) {
      --skip;
      continue;
    }
    if (bare) {
      *value_len = 0;
      return cmdline + i;
    }
    *value_len = len - key_len - 1;
    return cmdline + start + key_len + 1;
  }
  return 0;
}

const char* cmdline_find(const char* cmdline, const char* key,
                         size_t* value_len) {
  size_t len = 0;
  const char* value = find_token(cmdline, key, false, 0, &len);
  if (value != 0 && value_len != 0) *value_len = len;
  return value;
}

const char* cmdline_find_nth(const char* cmdline, const char* key, size_t n,
                             size_t* value_len) {
  size_t len = 0;
  const char* value = find_token(cmdline, key, false, n, &len);
  if (value != 0 && value_len != 0) *value_len = len;
  return value;
}

bool cmdline_equals(const char* cmdline, const char* key, const char* value) {
  size_t len = 0;
  const char* s = cmdline_find(cmdline, key, &len);
  if (s == 0) return false;
  size_t i = 0;
  for (; i < len; ++i) {
    if (value[i] != s[i]) return false;
  }
  return value[i] == '\0';
}

bool cmdline_has(const char* cmdline, const char* key) {
  size_t len = 0;
  return find_token(cmdline, key, true, 0, &len) != 0;
}

bool cmdline_get_u64(const char* cmdline, const char* key, uint64_t* value) {
  size_t len = 0;
  const char* s = cmdline_find(cmdline, key, &len);
  return s != 0 && parse_u64(s, len, value);
}

bool cmdline_u64_in_range(const char* cmdline, const char* key, uint64_t def, uint64_t min,
                          uint64_t max, uint64_t* value) {
  *value = def;
  if (cmdline_find(cmdline, key, 0) == 0) return true;
  return cmdline_get_u64(cmdline, key, value) && *value >= min && *value <= max;
}

void cmdline_bad_value(const char* who, const char* key) {
  console_printf("%s: FAIL: bad command line value for %s\n", who, key);
  guest_debug_exit(GUEST_EXIT_BAD_CMDLINE);
}

uint64_t cmdline_u64_or_exit(const char* cmdline, const char* who, const char* key,
                             uint64_t def, uint64_t min, uint64_t max) {
  uint64_t value;
  if (!cmdline_u64_in_range(cmdline, key, def, min, max, &value)) cmdline_bad_value(who, key);
  return value;
}

bool parse_u64(const char* s, size_t len, uint64_t* value) {
  if (len == 0) return false;
  unsigned base = 10;
  if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s += 2;
    len -= 2;
  }
  uint64_t result = 0;
  for (size_t i = 0; i < len; ++i) {
    char c = s[i];
    unsigned digit;
    if (c >= '0' && c <= '9') {
      digit = (unsigned)(c - '0');
    } else if (base == 16 && c >= 'a' && c <= 'f') {
      digit = (unsigned)(c - 'a' + 10);
    } else if (base == 16 && c >= 'A' && c <= 'F') {
      digit = (unsigned)(c - 'A' + 10);
    } else {
      return false;
    }
    if (result > (UINT64_MAX - digit) / base) return false;  // overflow
    result = result * base + digit;
  }
  *value = result;
  return true;
}
