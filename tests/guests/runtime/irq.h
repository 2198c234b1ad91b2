// External interrupts for the boot CPU: a full 256-entry IDT (the CPU
// exceptions keep their reporting stubs), per-vector handlers, EOI, and a
// bounded "halt until" wait.
//
// Interrupts are only ever enabled inside irq_wait (sti; hlt), so handlers
// never interrupt code that holds the console lock.
#ifndef VMM_TESTS_GUESTS_RUNTIME_IRQ_H_
#define VMM_TESTS_GUESTS_RUNTIME_IRQ_H_

#include <stdbool.h>
#include <stdint.h>

#define IRQ_FIRST_VECTOR 32
#define IRQ_DEVICE_VECTOR_BASE 0x40  // vectors the guests hand to devices
#define IRQ_TIMER_VECTOR 0xf0        // irq_wait's watchdog tick

typedef void (*irq_handler_fn)(void* arg);

// Loads the IDT on this CPU, masks both 8259s and enables the LAPIC.
void irq_init(uint32_t lapic_paddr);

void irq_set_handler(uint8_t vector, irq_handler_fn fn, void* arg);

// Interrupts taken on `vector` so far.
uint32_t irq_count(uint8_t vector);
// Ticks of irq_wait's watchdog timer so far.
uint32_t irq_timer_ticks(void);

// Interrupts on vectors nobody registered (the last such vector in *vector).
uint32_t irq_unexpected(uint8_t* vector);

// Halts with interrupts enabled until done(arg) holds, checking it with
// interrupts off after every wake-up. A periodic LAPIC timer (~10 ms)
// bounds each halt, so this returns false after about `timeout_ms`.
bool irq_wait(bool (*done)(void* arg), void* arg, uint32_t timeout_ms);

// Entered from irq_stubs.S with the vector number.
void irq_dispatch(uint64_t vector);

#endif  // VMM_TESTS_GUESTS_RUNTIME_IRQ_H_
