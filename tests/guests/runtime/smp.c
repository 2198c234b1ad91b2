#include "runtime/smp.h"

#include <stdint.h>

#include "runtime/console.h"
#include "runtime/io.h"

#define LAPIC_ID 0x020
#define LAPIC_SVR 0x0f0
#define LAPIC_ICR_LOW 0x300
#define LAPIC_ICR_HIGH 0x310
#define LAPIC_SVR_ENABLE 0x100
#define LAPIC_SVR_SPURIOUS_VECTOR 0xff
#define ICR_DELIVERY_INIT 0x500
#define ICR_DELIVERY_STARTUP 0x600
#define ICR_LEVEL_ASSERT 0x4000
#define ICR_SEND_PENDING 0x1000
#define ICR_POLL_LIMIT 100000

// Time bounds in TSC ticks. The TSC rate is unknown (1-5 GHz hosts); these
// are generous for real hardware and need not be exact under KVM or QEMU,
// which latch INIT and SIPI.
#define INIT_DELAY_TICKS 1000000ull   // ~0.3 ms
#define SIPI_DELAY_TICKS 200000ull    // ~70 us
#define AP_WAIT_TICKS 15000000000ull  // ~5 s
// In case the TSC does not advance at all.
#define AP_WAIT_SPIN_LIMIT (1ull << 28)

extern const char ap_trampoline_start[];
extern const char ap_trampoline_end[];

static uint32_t lapic_base = 0xfee00000u;
static uint32_t cpus_up;

uint32_t lapic_id(uint32_t lapic_paddr) {
  return mmio_read32(lapic_paddr + LAPIC_ID) >> 24;
}

static void delay_ticks(uint64_t ticks) {
  uint64_t start = rdtsc();
  for (uint32_t i = 0; i < 1000000 && rdtsc() - start < ticks; ++i) {
    cpu_relax();
  }
}

static void send_ipi(uint32_t apic_id, uint32_t icr_low) {
  mmio_write32(lapic_base + LAPIC_ICR_HIGH, apic_id << 24);
  mmio_write32(lapic_base + LAPIC_ICR_LOW, icr_low);
  for (int i = 0; i < ICR_POLL_LIMIT; ++i) {
    if ((mmio_read32(lapic_base + LAPIC_ICR_LOW) & ICR_SEND_PENDING) == 0) {
      return;
    }
    cpu_relax();
  }
  console_printf("smp: ipi to apic %u still pending\n", apic_id);
}

void smp_stop_this_cpu(void) {
  mmio_write32(lapic_base + LAPIC_SVR, 0);  // software-disabled
  for (;;) __asm__ volatile("cli; hlt");
}

void smp_park_aps_in_init(const struct mp_info* mp) {
  uint32_t self = lapic_id(lapic_base);
  for (uint32_t i = 0; i < mp->cpu_count; ++i) {
    if (mp->apic_ids[i] != self) send_ipi(mp->apic_ids[i], ICR_DELIVERY_INIT | ICR_LEVEL_ASSERT);
  }
  delay_ticks(INIT_DELAY_TICKS);
}

void (*smp_ap_work)(void);

void ap_main(void) {
  console_printf("cpu %u up\n", lapic_id(lapic_base));
  // Counted after the line is out, so the BSP's report comes after it.
  __atomic_fetch_add(&cpus_up, 1, __ATOMIC_RELEASE);
  if (smp_ap_work != 0) smp_ap_work();
}

uint32_t smp_start_aps(const struct mp_info* mp) {
  lapic_base = mp->lapic_paddr;
  uint32_t self = lapic_id(lapic_base);

  // The trampoline runs in real mode, so it must sit below 1 MiB.
  volatile char* dest = (volatile char*)(uintptr_t)AP_TRAMPOLINE_PADDR;
  for (const char* p = ap_trampoline_start; p < ap_trampoline_end; ++p) {
    *dest++ = *p;
  }

  mmio_write32(lapic_base + LAPIC_SVR,
               LAPIC_SVR_ENABLE | LAPIC_SVR_SPURIOUS_VECTOR);
  uint32_t expected = 0;
  for (uint32_t i = 0; i < mp->cpu_count; ++i) {
    uint32_t id = mp->apic_ids[i];
    if (id == self) continue;
    ++expected;
    send_ipi(id, ICR_DELIVERY_INIT | ICR_LEVEL_ASSERT);
    delay_ticks(INIT_DELAY_TICKS);
    for (int sipi = 0; sipi < 2; ++sipi) {
      send_ipi(id, ICR_DELIVERY_STARTUP | ICR_LEVEL_ASSERT |
                       (AP_TRAMPOLINE_PADDR >> 12));
      delay_ticks(SIPI_DELAY_TICKS);
    }
  }

  uint64_t start = rdtsc();
  for (uint64_t spins = 0; spins < AP_WAIT_SPIN_LIMIT; ++spins) {
    if (__atomic_load_n(&cpus_up, __ATOMIC_ACQUIRE) >= expected) break;
    if (rdtsc() - start > AP_WAIT_TICKS) break;
    cpu_relax();
  }
  return 1 + __atomic_load_n(&cpus_up, __ATOMIC_ACQUIRE);
}
