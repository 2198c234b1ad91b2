#include "runtime/lapic.h"

#include "runtime/io.h"

#define LAPIC_ID 0x020
#define LAPIC_TPR 0x080
#define LAPIC_EOI 0x0b0
#define LAPIC_SVR 0x0f0
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_LVT_ERROR 0x370
#define LAPIC_TIMER_INITIAL 0x380
#define LAPIC_TIMER_DIVIDE 0x3e0
#define LAPIC_SVR_ENABLE 0x100
#define LVT_MASKED 0x10000
#define LVT_TIMER_PERIODIC 0x20000
#define TIMER_DIVIDE_BY_16 0x3

static uint32_t base = LAPIC_DEFAULT_PADDR;

void lapic_init(uint32_t paddr) {
  base = paddr;
  mmio_write32(base + LAPIC_SVR, LAPIC_SVR_ENABLE | LAPIC_SPURIOUS_VECTOR);
  mmio_write32(base + LAPIC_TIMER_INITIAL, 0);
  mmio_write32(base + LAPIC_LVT_TIMER, LVT_MASKED);
  // Firmware (SeaBIOS) leaves LINT0 as ExtINT: the 8259's timer would
  // arrive at a CPU-exception vector.
  mmio_write32(base + LAPIC_LVT_LINT0, LVT_MASKED);
  mmio_write32(base + LAPIC_LVT_LINT1, LVT_MASKED);
  mmio_write32(base + LAPIC_LVT_ERROR, LVT_MASKED);
  mmio_write32(base + LAPIC_TPR, 0);
}

uint32_t lapic_self_id(void) { return mmio_read32(base + LAPIC_ID) >> 24; }

void lapic_eoi(void) { mmio_write32(base + LAPIC_EOI, 0); }

void lapic_timer_periodic(uint8_t vector, uint32_t count) {
  if (count == 0) {
    mmio_write32(base + LAPIC_TIMER_INITIAL, 0);
    mmio_write32(base + LAPIC_LVT_TIMER, LVT_MASKED);
    return;
  }
  mmio_write32(base + LAPIC_TIMER_DIVIDE, TIMER_DIVIDE_BY_16);
  mmio_write32(base + LAPIC_LVT_TIMER, LVT_TIMER_PERIODIC | vector);
  mmio_write32(base + LAPIC_TIMER_INITIAL, count);
}
