#include "runtime/console.h"

#include <stdbool.h>
#include <stdint.h>

#include "runtime/io.h"
#include "runtime/spinlock.h"

#define COM1 0x3f8
#define UART_THR 0  // transmit holding register (write)
#define UART_RBR 0  // receive buffer (read)
#define UART_IER 1  // interrupt enable
#define UART_LCR 3  // line control
#define UART_LSR 5  // line status
#define UART_LCR_8N1 0x03
#define UART_LSR_THRE 0x20
#define UART_LSR_DR 0x01  // data ready
// A missing or stuck UART must not hang the guest: give up on a byte after
// this many polls (the emulator runs ~1.6 M instructions/s).
#define UART_POLL_LIMIT 100000
// How long the exception path waits for the lock before printing anyway.
#define EXCEPTION_LOCK_TRIES 1000000

static spinlock_t console_lock;

void console_init(void) {
  outb(COM1 + UART_IER, 0);
  outb(COM1 + UART_LCR, UART_LCR_8N1);
}

static void uart_putc(char c) {
  for (int i = 0; i < UART_POLL_LIMIT; ++i) {
    if (inb(COM1 + UART_LSR) & UART_LSR_THRE) break;
  }
  outb(COM1 + UART_THR, (uint8_t)c);
}

int console_try_getc(void) {
  if (!(inb(COM1 + UART_LSR) & UART_LSR_DR)) return -1;
  return inb(COM1 + UART_RBR);
}

static void put_string(const char* s) {
  while (*s) uart_putc(*s++);
}

static void put_padding(char pad, int count) {
  for (int i = 0; i < count; ++i) uart_putc(pad);
}

static void put_unsigned(unsigned long long value, unsigned base, bool upper,
                         char pad, int width) {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  char buffer[24];
  int n = 0;
  do {
    buffer[n++] = digits[value % base];
    value /= base;
  } while (value != 0);
  put_padding(pad, width - n);
  while (n > 0) uart_putc(buffer[--n]);
}

static void format(const char* fmt, va_list args) {
  for (; *fmt; ++fmt) {
    if (*fmt != '%') {
      uart_putc(*fmt);
      continue;
    }
    const char* start = fmt++;
    char pad = ' ';
    if (*fmt == '0') {
      pad = '0';
      ++fmt;
    }
    int width = 0;
    while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
    int longs = 0;
    while (*fmt == 'l' && longs < 2) {
      ++longs;
      ++fmt;
    }
    switch (*fmt) {
      case 'd':
      case 'i': {
        long long v = longs == 0   ? va_arg(args, int)
                      : longs == 1 ? va_arg(args, long)
                                   : va_arg(args, long long);
        unsigned long long magnitude = (unsigned long long)v;
        if (v < 0) {
          uart_putc('-');
          magnitude = 0 - magnitude;
          --width;
        }
        put_unsigned(magnitude, 10, false, pad, width);
        break;
      }
      case 'u':
      case 'x':
      case 'X': {
        unsigned long long v = longs == 0   ? va_arg(args, unsigned)
                               : longs == 1 ? va_arg(args, unsigned long)
                                            : va_arg(args, unsigned long long);
        put_unsigned(v, *fmt == 'u' ? 10 : 16, *fmt == 'X', pad, width);
        break;
      }
      case 'p':
        put_string("0x");
        put_unsigned((uintptr_t)va_arg(args, void*), 16, false, '0', 0);
        break;
      case 'c':
        uart_putc((char)va_arg(args, int));
        break;
      case 's': {
        const char* s = va_arg(args, const char*);
        put_string(s ? s : "(null)");
        break;
      }
      case '%':
        uart_putc('%');
        break;
      default:  // unknown: print the directive as written
        for (const char* p = start; p <= fmt && *p; ++p) uart_putc(*p);
        if (*fmt == '\0') return;
        break;
    }
  }
}

void console_puts(const char* s) {
  spin_lock(&console_lock);
  put_string(s);
  spin_unlock(&console_lock);
}

void console_vprintf(const char* fmt, va_list args) {
  spin_lock(&console_lock);
  format(fmt, args);
  spin_unlock(&console_lock);
}

void console_printf(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  console_vprintf(fmt, args);
  va_end(args);
}

void console_printf_unlocked_fallback(const char* fmt, ...) {
  bool locked = false;
  for (int i = 0; i < EXCEPTION_LOCK_TRIES && !locked; ++i) {
    locked = spin_trylock(&console_lock);
  }
  va_list args;
  va_start(args, fmt);
  format(fmt, args);
  va_end(args);
  if (locked) spin_unlock(&console_lock);
}
