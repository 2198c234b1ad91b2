// blk_rtt.elf: the guest-visible round trip of virtio-blk over virtio-pci
// (bench/run, "guest-visible round trip"). Takes the first modern
// virtio-blk function on PCI bus 0 and issues `n` sequential 4 KiB reads,
// one at a time (queue depth 1), timing each with rdtsc from before the
// request is queued until its completion is collected. Prints min, median,
// mean, p90 and max TSC cycles per request, and the TSC frequency with
// where it came from, then leaves through debug-exit.
//
// Both our vmm and QEMU boot this same ELF. Under KVM's instruction
// emulator (PVM hosts) every guest instruction is emulated, so the figures
// include the driver's own instructions at emulator speed.
//
// Command line (key=value):
//   n=N              timed reads (1..4096)                           [256]
//   warmup=N         untimed reads first                               [8]
//   irq=poll|msix    poll the used ring, or halt until the MSI-X
//                    interrupt                                      [poll]
//   ecam=ADDR        ECAM base                                [0xe0000000]
//   bar_remap=ADDR   assign the function's memory BARs from ADDR first
//                    (for a machine whose firmware leaves them unset, such
//                    as QEMU microvm,pcie=on: 0xc0000000)              [off]
//   check=0|1        block b of the disk must start with b as a 64-bit
//                    little-endian number (bench/run writes that);
//                    checked after the timed loop                      [1]
//   event_idx=0|1 indirect=0|1   negotiate when offered               [1]
//   timeout_ms=N     bound of every wait                            [3000]
//
// Output:
//   rtt: pci BB:DD.F features 0x... irq poll|msix capacity <sectors>
//   rtt: tsc <kHz> kHz (<source>)   source: cpuid-0x40000010, cpuid-0x15
//        or pit (PIT channel 0 over 20 ms); "rtt: tsc unknown" otherwise
//   rtt: result n=.. min=.. median=.. mean=.. p90=.. max=.. tsc_khz=..
//        tsc_source=.. irq=.. notifications=.. irq_waits=..
//   rtt: ok  |  rtt: FAIL: <why>
// Exit (debug-exit value): 0 ok; 100 a failure; 102 no disk; 103 bad
// command line.
#include "runtime/cmdline.h"
#include "runtime/console.h"
#include "runtime/exit.h"
#include "runtime/guest.h"
#include "runtime/io.h"
#include "runtime/irq.h"
#include "runtime/lapic.h"
#include "runtime/mp_table.h"
#include "runtime/pci.h"
#include "runtime/pvh.h"
#include "runtime/virtio_blk.h"
#include "runtime/virtio_pci.h"

#define EXIT_NO_DISK 102

#define MAX_REQUESTS 4096
#define MAX_FUNCTIONS 64
#define BLOCK_BYTES 4096
#define BLOCK_SECTORS (BLOCK_BYTES / VIRTIO_BLK_SECTOR_SIZE)

#define PIT_HZ 1193182ull
#define PIT_CALIBRATION_MS 20

static uint64_t cycles[MAX_REQUESTS];
static uint8_t buffer[BLOCK_BYTES] __attribute__((aligned(4096)));
static struct virtio_pci_dev pci_dev;
static struct virtio_blk blk;

static __attribute__((noreturn)) void fail(const char* what, const char* why) {
  console_printf("rtt: FAIL: %s: %s\n", what, why);
  guest_debug_exit(GUEST_EXIT_FAILURE);
}

static __attribute__((noreturn)) void bad_cmdline(const char* key) {
  cmdline_bad_value("rtt", key);
}

static uint64_t get_u64(const char* cmdline, const char* key, uint64_t def) {
  return cmdline_u64_or_exit(cmdline, "rtt", key, def, 0, UINT64_MAX);
}

static bool get_bool(const char* cmdline, const char* key, bool def) {
  return cmdline_u64_or_exit(cmdline, "rtt", key, def ? 1 : 0, 0, 1) == 1;
}

static void cpuid(uint32_t leaf, uint32_t* a, uint32_t* b, uint32_t* c,
                  uint32_t* d) {
  __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d)
                   : "a"(leaf), "c"(0));
}

// PIT channel 0, one-shot (mode 0) from 0xffff: the TSC ticks while its
// counter (latched and read back through ports 0x43/0x40) drops by 20 ms
// worth. Channel 0, not the usual channel 2: channel 2's gate is port
// 0x61, which QEMU microvm does not have. IRQ0 stays masked (irq_init
// masks the 8259s; IOAPIC pins start masked). Bounded in case there is no
// PIT (the counter then reads 0xffff and never moves).
static uint16_t pit0_read(void) {
  outb(0x43, 0x00);  // latch channel 0
  uint8_t lo = inb(0x40);
  uint8_t hi = inb(0x40);
  return (uint16_t)(lo | hi << 8);
}

static uint64_t pit_calibrate_khz(void) {
  uint16_t span = (uint16_t)(PIT_HZ * PIT_CALIBRATION_MS / 1000);
  outb(0x43, 0x30);  // channel 0, lobyte/hibyte, mode 0, binary
  outb(0x40, 0xff);
  outb(0x40, 0xff);  // counting starts here
  uint16_t first = pit0_read();
  uint64_t start = rdtsc();
  for (uint32_t spins = 0; spins < 1000000u; ++spins) {
    uint16_t now = pit0_read();
    if (now > first) return 0;  // wrapped or garbage: no usable PIT
    if (now == first && spins >= 1000) return 0;  // not counting
    if ((uint16_t)(first - now) >= span) {
      uint64_t ticks = rdtsc() - start;
      return ticks * PIT_HZ / (uint16_t)(first - now) / 1000;
    }
  }
  return 0;
}

static uint64_t tsc_khz(const char** source) {
  uint32_t a, b, c, d;
  cpuid(0x40000000, &a, &b, &c, &d);
  if (a >= 0x40000010 && a < 0x40000100) {
    cpuid(0x40000010, &a, &b, &c, &d);
    if (a != 0) {
      *source = "cpuid-0x40000010";
      return a;
    }
  }
  cpuid(0, &a, &b, &c, &d);
  if (a >= 0x15) {
    uint32_t den, num, crystal_hz;
    cpuid(0x15, &den, &num, &crystal_hz, &d);
    if (den != 0 && num != 0 && crystal_hz != 0) {
      *source = "cpuid-0x15";
      return (uint64_t)crystal_hz * num / den / 1000;
    }
  }
  uint64_t khz = pit_calibrate_khz();
  *source = khz != 0 ? "pit" : "unknown";
  return khz;
}

static void print_location(char* out, uint16_t bdf) {
  const char* hex = "0123456789abcdef";
  out[0] = hex[PCI_BUS(bdf) >> 4];
  out[1] = hex[PCI_BUS(bdf) & 15];
  out[2] = ':';
  out[3] = hex[PCI_DEV(bdf) >> 4];
  out[4] = hex[PCI_DEV(bdf) & 15];
  out[5] = '.';
  out[6] = (char)('0' + PCI_FN(bdf));
  out[7] = '\0';
}

// Assigns every memory BAR of `bdf`, naturally aligned, upwards from *next
// (64-bit BARs too, below 4 GiB).
static void assign_bars(uint16_t bdf, uint64_t* next) {
  for (uint32_t i = 0; i < 6; ++i) {
    struct pci_bar bar;
    if (!pci_bar_read(bdf, i, &bar)) continue;
    if (!bar.is_io && bar.size != 0) {
      uint64_t address = (*next + bar.size - 1) & ~(bar.size - 1);
      pci_bar_assign(bdf, i, address, bar.is_64bit);
      *next = address + bar.size;
    }
    if (bar.is_64bit) ++i;
  }
}

static bool find_disk(uint64_t ecam, uint64_t bar_remap) {
  static struct pci_function functions[MAX_FUNCTIONS];
  pci_select(PCI_ACCESS_ECAM, ecam);
  uint32_t n = pci_enumerate(PCI_ACCESS_ECAM, 1, functions, MAX_FUNCTIONS);
  for (uint32_t i = 0; i < n; ++i) {
    const struct pci_function* f = &functions[i];
    if (f->vendor != VIRTIO_PCI_VENDOR ||
        f->device != VIRTIO_PCI_MODERN_DEVICE_BASE + VIRTIO_ID_BLOCK) {
      continue;
    }
    if (bar_remap != 0) assign_bars(f->bdf, &bar_remap);
    const char* why = "";
    if (!virtio_pci_probe(&pci_dev, f->bdf, &why)) fail("probe", why);
    print_location(pci_dev.vdev.location, f->bdf);
    return true;
  }
  console_printf("rtt: FAIL: no virtio-blk on PCI bus 0 (%u functions)\n", n);
  return false;
}

static void sort(uint64_t* v, uint32_t n) {
  for (uint32_t i = 1; i < n; ++i) {
    uint64_t x = v[i];
    uint32_t j = i;
    for (; j > 0 && v[j - 1] > x; --j) v[j] = v[j - 1];
    v[j] = x;
  }
}

static uint64_t block_sector(uint64_t i, uint64_t blocks) {
  return (i % blocks) * BLOCK_SECTORS;
}

void guest_main(const struct hvm_start_info* info) {
  const char* c = pvh_cmdline(info);
  console_printf("rtt: cmdline: %s\n", c);
  uint64_t n = get_u64(c, "n", 256);
  if (n == 0 || n > MAX_REQUESTS) bad_cmdline("n");
  uint64_t warmup = get_u64(c, "warmup", 8);
  if (warmup > MAX_REQUESTS) bad_cmdline("warmup");
  enum virtio_irq_mode mode = VIRTIO_IRQ_POLL;
  if (cmdline_equals(c, "irq", "msix")) {
    mode = VIRTIO_IRQ_MSIX;
  } else if (cmdline_find(c, "irq", 0) && !cmdline_equals(c, "irq", "poll")) {
    bad_cmdline("irq");
  }
  uint64_t ecam = get_u64(c, "ecam", 0xe0000000u);
  uint64_t bar_remap = get_u64(c, "bar_remap", 0);
  bool check = get_bool(c, "check", true);
  struct virtio_blk_options options = {
      .indirect = get_bool(c, "indirect", true),
      .event_idx = get_bool(c, "event_idx", true),
      .discard = false,
      .write_zeroes = false,
      .queue_size = VIRTQ_MAX_SIZE,
  };
  uint64_t timeout_ms = get_u64(c, "timeout_ms", 3000);

  struct mp_info mp;
  const char* why = "";
  mp_find_cpus(&mp, &why);  // no table: one CPU, the default LAPIC
  irq_init(mp.lapic_paddr);

  if (!find_disk(ecam, bar_remap)) guest_debug_exit(EXIT_NO_DISK);
  struct virtio_dev* dev = &pci_dev.vdev;
  dev->irq_mode = mode;
  dev->vector = IRQ_DEVICE_VECTOR_BASE;
  dev->apic_id = (uint8_t)lapic_self_id();
  dev->timeout_ms = (uint32_t)timeout_ms;
  dev->irq_count = 0;
  if (!virtio_blk_init(&blk, dev, &options, &why)) fail("init", why);
  console_printf("rtt: pci %s features 0x%lx irq %s capacity %lu\n",
                 dev->location, (unsigned long)dev->negotiated,
                 virtio_irq_mode_name(mode), (unsigned long)blk.capacity);
  uint64_t blocks = blk.capacity / BLOCK_SECTORS;
  if (blocks == 0) fail("disk", "smaller than 4 KiB");

  for (uint64_t i = 0; i < warmup; ++i) {
    if (!virtio_blk_read(&blk, block_sector(i, blocks), buffer, BLOCK_SECTORS,
                         &why)) {
      fail("warm-up read", why);
    }
  }
  uint32_t notifications = blk.vq.notifications;
  uint32_t irq_waits = blk.vq.irq_waits;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t start = rdtsc();
    bool ok = virtio_blk_read(&blk, block_sector(i, blocks), buffer,
                              BLOCK_SECTORS, &why);
    cycles[i] = rdtsc() - start;
    if (!ok) fail("read", why);
  }
  notifications = blk.vq.notifications - notifications;
  irq_waits = blk.vq.irq_waits - irq_waits;
  // The last block read is still in the buffer.
  uint64_t last = (n - 1) % blocks;
  uint64_t found = 0;
  for (int k = 7; k >= 0; --k) found = found << 8 | buffer[k];
  if (check && found != last) {
    console_printf("rtt: FAIL: block %lu starts with %lu\n",
                   (unsigned long)last, (unsigned long)found);
    guest_debug_exit(GUEST_EXIT_FAILURE);
  }

  // After the timed loop: with the calibration before it, QEMU's reads
  // took 12-50 times longer (measured; the PIT's one-shot stays armed).
  const char* source = "";
  uint64_t khz = tsc_khz(&source);
  if (khz != 0) {
    console_printf("rtt: tsc %lu kHz (%s)\n", (unsigned long)khz, source);
  } else {
    console_puts("rtt: tsc unknown\n");
  }

  uint64_t sum = 0;
  for (uint64_t i = 0; i < n; ++i) sum += cycles[i];
  sort(cycles, (uint32_t)n);
  console_printf(
      "rtt: result n=%lu min=%lu median=%lu mean=%lu p90=%lu max=%lu "
      "tsc_khz=%lu tsc_source=%s irq=%s notifications=%u irq_waits=%u\n",
      (unsigned long)n, (unsigned long)cycles[0],
      (unsigned long)cycles[n / 2], (unsigned long)(sum / n),
      (unsigned long)cycles[n * 9 / 10], (unsigned long)cycles[n - 1],
      (unsigned long)khz, khz != 0 ? source : "unknown",
      virtio_irq_mode_name(mode), notifications, irq_waits);
  uint8_t vector = 0;
  if (irq_unexpected(&vector) != 0) {
    console_printf("rtt: FAIL: interrupts on unexpected vector 0x%x\n", vector);
    guest_debug_exit(GUEST_EXIT_FAILURE);
  }
  console_puts("rtt: ok\n");
  guest_debug_exit(0);
}
