#include "runtime/irq.h"

#include "runtime/io.h"
#include "runtime/lapic.h"

#define IDT_ENTRIES 256
#define EXCEPTION_COUNT 32
#define STUB_SIZE 16
#define GDT_CODE64 0x18
#define IDT_GATE_INTERRUPT 0x8e
#define PIC_MASTER_DATA 0x21
#define PIC_SLAVE_DATA 0xa1
// 625000 ticks of a 1 GHz bus divided by 16: 10 ms.
#define TIMER_COUNT 625000u
#define TIMER_PERIOD_MS 10u
// If the timer runs slower than modelled, the TSC still ends the wait
// (assuming at most 5 GHz).
#define MAX_TSC_PER_MS 5000000ull

struct idt_gate {
  uint16_t offset_low;
  uint16_t selector;
  uint8_t ist;
  uint8_t type;
  uint16_t offset_mid;
  uint32_t offset_high;
  uint32_t reserved;
};

struct __attribute__((packed)) idt_pointer {
  uint16_t limit;
  uint64_t base;
};

struct handler {
  irq_handler_fn fn;
  void* arg;
};

extern const char exception_stubs[];  // exception_stubs.S
extern const char irq_stubs[];        // irq_stubs.S: vectors 32..255

static struct idt_gate idt[IDT_ENTRIES] __attribute__((aligned(16)));
static struct handler handlers[IDT_ENTRIES];
static volatile uint32_t counts[IDT_ENTRIES];
static volatile uint32_t unexpected;
static volatile uint8_t last_unexpected;
static volatile uint32_t timer_ticks;

static void set_gate(uint32_t vector, const char* stub) {
  uint64_t offset = (uint64_t)(uintptr_t)stub;
  struct idt_gate* gate = &idt[vector];
  gate->offset_low = (uint16_t)offset;
  gate->selector = GDT_CODE64;
  gate->ist = 0;
  gate->type = IDT_GATE_INTERRUPT;
  gate->offset_mid = (uint16_t)(offset >> 16);
  gate->offset_high = (uint32_t)(offset >> 32);
  gate->reserved = 0;
}

void irq_init(uint32_t lapic_paddr) {
  for (uint32_t v = 0; v < EXCEPTION_COUNT; ++v) {
    set_gate(v, exception_stubs + v * STUB_SIZE);
  }
  for (uint32_t v = EXCEPTION_COUNT; v < IDT_ENTRIES; ++v) {
    set_gate(v, irq_stubs + (v - EXCEPTION_COUNT) * STUB_SIZE);
  }
  struct idt_pointer pointer = {sizeof(idt) - 1, (uint64_t)(uintptr_t)idt};
  __asm__ volatile("lidt %0" : : "m"(pointer) : "memory");
  outb(PIC_MASTER_DATA, 0xff);
  outb(PIC_SLAVE_DATA, 0xff);
  lapic_init(lapic_paddr);
}

void irq_set_handler(uint8_t vector, irq_handler_fn fn, void* arg) {
  handlers[vector].arg = arg;
  handlers[vector].fn = fn;
}

uint32_t irq_count(uint8_t vector) { return counts[vector]; }

uint32_t irq_timer_ticks(void) { return timer_ticks; }

uint32_t irq_unexpected(uint8_t* vector) {
  if (vector != 0) *vector = last_unexpected;
  return unexpected;
}

void irq_dispatch(uint64_t vector) {
  vector &= 0xff;
  counts[vector] = counts[vector] + 1;
  if (vector == LAPIC_SPURIOUS_VECTOR) return;  // spurious: no EOI
  if (vector == IRQ_TIMER_VECTOR) {
    timer_ticks = timer_ticks + 1;
  } else if (handlers[vector].fn != 0) {
    handlers[vector].fn(handlers[vector].arg);
  } else {
    unexpected = unexpected + 1;
    last_unexpected = (uint8_t)vector;
  }
  lapic_eoi();
}

bool irq_wait(bool (*done)(void* arg), void* arg, uint32_t timeout_ms) {
  uint32_t start_ticks = timer_ticks;
  uint64_t start_tsc = rdtsc();
  uint32_t tick_limit = timeout_ms / TIMER_PERIOD_MS + 1;
  lapic_timer_periodic(IRQ_TIMER_VECTOR, TIMER_COUNT);
  bool ok = false;
  for (;;) {
    if (done(arg)) {
      ok = true;
      break;
    }
    if (timer_ticks - start_ticks >= tick_limit) break;
    if (rdtsc() - start_tsc >= (uint64_t)timeout_ms * MAX_TSC_PER_MS) break;
    // sti's one-instruction shadow makes "enable and halt" atomic: an
    // interrupt that is already pending wakes the hlt instead of slipping
    // in before it.
    __asm__ volatile("sti; hlt; cli" ::: "memory");
  }
  lapic_timer_periodic(0, 0);
  return ok;
}
