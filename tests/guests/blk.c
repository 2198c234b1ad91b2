// blk.elf: finds every virtio-blk device on PCI bus 0 (modern virtio-pci)
// and in the virtio-mmio slots, and tests each one (blk_disk_test.c): read
// and check the host's pattern (blk_pattern.h), write, flush, read back,
// optionally reset mid-run, WRITE_ZEROES / DISCARD when offered.
//
// Command line (key=value; defaults are our VMM's layout, arch/x86_64/layout.h):
//   pci=ecam|cf8|both|off  config access; both = enumerate through each and
//                          compare, then use ECAM                  [ecam]
//   ecam=ADDR              ECAM base (QEMU q35: 0xb0000000)  [0xe0000000]
//   pci_buses=N            buses to scan                               [1]
//   bar_remap=ADDR         move every memory BAR of each virtio-pci
//                          function, packed from ADDR, before use     [off]
//   bar_remap64=ADDR       with bar_remap: 64-bit BARs go here instead
//                          (above 4 GiB they are mapped on demand)
//   pcicfg=0|1             check the PCI_CFG capability window         [1]
//   mmio=probe|cmdline|off probe slots by magic, or take Linux's
//                          virtio_mmio.device=<size>@<base>:<irq>    [probe]
//   mmio_base=ADDR mmio_stride=N mmio_slots=N mmio_gsi=N
//                          slot i at base + i*stride on GSI gsi + i
//                          [0xd0000000, 0x1000, 8, 16] (microvm: 0xfeb00000,
//                          0x200, 24, 5)
//   irq=poll|msix|intx|mmio-irq
//                          poll: no interrupts. Otherwise virtio-pci uses
//                          INTx for intx and MSI-X for msix/mmio-irq, and
//                          virtio-mmio always its GSI (edge).         [poll]
//   intx_gsi=N|line        INTx GSI: default {5,9,10,11}[device % 4];
//                          line = the Interrupt Line register
//   ioapic=ADDR ioapic2=ADDR ioapic2_gsi=N   IOAPICs [0xfec00000, none, 24]
//   indirect=0|1 event_idx=0|1 discard=0|1 write_zeroes=0|1
//                          negotiate when offered                     [1]
//   qsize=N                queue size bound (power of two)           [256]
//   read_sectors=R write_sectors=W   sectors [0,R) read and checked, [R,R+W)
//                          written (generation 1); sector R+W written then
//                          WRITE_ZEROES'd (reads back zero), R+W+1
//                          DISCARDed (content not checked), each only when
//                          offered; capacity must be >= R+W+2 (max 64 each)
//                                                                 [8, 8]
//   verify=0|1             check [0,R) against the host pattern        [1]
//   reset=0|1              reset and re-initialise after the first read [0]
//   timeout_ms=N           bound of every wait                       [3000]
//   disks=N                fail unless exactly N disks are found
//   durability=G           instead of the tests: G generations of writes,
//                          each flushed and reported on the first disk
//                          (blk_durability.h)                         [0]
//
// Output:
//   smp: <N> cpus up
//   irq: lapic timer ok              (irq != poll: IDT, LAPIC timer, iretq)
//   pci: <cf8|ecam>: <n> functions   (pci=both: pci: cf8 and ecam agree on <n> functions)
//   blk <pci BB:DD.F | mmio SLOT>: features ..., queue .., irq .., ...
//   blk <...>: reset and re-initialised                 (reset=1)
//   blk <...>: <n> requests, <n> notifications, <n> suppressed, <n> interrupts ...
//   blk <...>: capacity <sectors> serial <id or -> ok | ... FAIL: <why>
//   blk: <N> disks ok  |  blk: FAIL: ...
// Exit (debug-exit value; the VMM's status is 2v+1): 0 all disks ok;
// 100 a disk failed; 102 no disks or not the disks=N count; 103 bad command
// line; 101 CPU exception.
#include "blk_disk_test.h"
#include "blk_durability.h"
#include "runtime/guest.h"
#include "runtime/ioapic.h"
#include "runtime/irq.h"
#include "runtime/lapic.h"
#include "runtime/mp_table.h"
#include "runtime/pci.h"
#include "runtime/smp.h"
#include "runtime/virtio_mmio.h"
#include "runtime/virtio_pci.h"

#define EXIT_DISK_FAILED GUEST_EXIT_FAILURE
#define EXIT_DISK_COUNT 102

#define MAX_PCI_FUNCTIONS 64
#define MAX_PCI_DISKS 8
#define MAX_MMIO_DISKS 8
#define MAX_MMIO_SLOTS 32
#define PCI_HEADER_DWORDS 16

static const uint32_t kIntxGsis[4] = {5, 9, 10, 11};

struct config {
  const char* cmdline;
  bool pci_on;
  bool pci_both;
  enum pci_access pci_access;
  uint64_t ecam;
  uint64_t pci_buses;
  uint64_t bar_remap;    // 0 = off
  uint64_t bar_remap64;  // 0 = with the 32-bit ones
  bool pcicfg;
  enum { MMIO_PROBE, MMIO_CMDLINE, MMIO_OFF } mmio;
  uint64_t mmio_base, mmio_stride, mmio_slots, mmio_gsi;
  enum virtio_irq_mode pci_irq;
  bool mmio_irq;
  bool intx_from_line;
  uint64_t intx_gsi;  // UINT64_MAX = the {5,9,10,11} table
  struct ioapic ioapics[2];
  uint32_t ioapic_count;
  uint64_t timeout_ms;
  uint64_t disks;  // UINT64_MAX = any number >= 1
  uint64_t durability;  // generations; 0 = off
  uint32_t apic_id;
  struct blk_test_options test;
};

static struct virtio_pci_dev pci_devs[MAX_PCI_DISKS];
static struct virtio_mmio_dev mmio_devs[MAX_MMIO_DISKS];
static struct virtio_dev* disks[MAX_PCI_DISKS + MAX_MMIO_DISKS];
static uint32_t disk_count;
static uint32_t probe_failures;

static __attribute__((noreturn)) void bad_cmdline(const char* key) {
  cmdline_bad_value("blk", key);
}

static uint64_t get_u64(const char* cmdline, const char* key, uint64_t def) {
  return cmdline_u64_or_exit(cmdline, "blk", key, def, 0, UINT64_MAX);
}

static bool get_bool(const char* cmdline, const char* key, bool def) {
  return cmdline_u64_or_exit(cmdline, "blk", key, def ? 1 : 0, 0, 1) == 1;
}

static void parse_config(const char* c, struct config* config) {
  config->cmdline = c;
  config->pci_on = true;
  config->pci_both = false;
  config->pci_access = PCI_ACCESS_ECAM;
  if (cmdline_equals(c, "pci", "cf8")) {
    config->pci_access = PCI_ACCESS_CF8;
  } else if (cmdline_equals(c, "pci", "both")) {
    config->pci_both = true;
  } else if (cmdline_equals(c, "pci", "off")) {
    config->pci_on = false;
  } else if (cmdline_find(c, "pci", 0) && !cmdline_equals(c, "pci", "ecam")) {
    bad_cmdline("pci");
  }
  config->ecam = get_u64(c, "ecam", 0xe0000000u);
  config->pci_buses = get_u64(c, "pci_buses", 1);
  config->bar_remap = get_u64(c, "bar_remap", 0);
  config->bar_remap64 = get_u64(c, "bar_remap64", 0);
  config->pcicfg = get_bool(c, "pcicfg", true);

  config->mmio = MMIO_PROBE;
  if (cmdline_equals(c, "mmio", "cmdline")) {
    config->mmio = MMIO_CMDLINE;
  } else if (cmdline_equals(c, "mmio", "off")) {
    config->mmio = MMIO_OFF;
  } else if (cmdline_find(c, "mmio", 0) && !cmdline_equals(c, "mmio", "probe")) {
    bad_cmdline("mmio");
  }
  config->mmio_base = get_u64(c, "mmio_base", 0xd0000000u);
  config->mmio_stride = get_u64(c, "mmio_stride", 0x1000);
  config->mmio_slots = get_u64(c, "mmio_slots", 8);
  config->mmio_gsi = get_u64(c, "mmio_gsi", 16);
  if (config->mmio_slots > MAX_MMIO_SLOTS || config->mmio_stride < 0x100) {
    bad_cmdline("mmio_slots/mmio_stride");
  }

  config->pci_irq = VIRTIO_IRQ_POLL;
  config->mmio_irq = false;
  if (cmdline_equals(c, "irq", "msix") || cmdline_equals(c, "irq", "mmio-irq")) {
    config->pci_irq = VIRTIO_IRQ_MSIX;
    config->mmio_irq = true;
  } else if (cmdline_equals(c, "irq", "intx")) {
    config->pci_irq = VIRTIO_IRQ_INTX;
    config->mmio_irq = true;
  } else if (cmdline_find(c, "irq", 0) && !cmdline_equals(c, "irq", "poll")) {
    bad_cmdline("irq");
  }
  config->intx_from_line = cmdline_equals(c, "intx_gsi", "line");
  config->intx_gsi = config->intx_from_line ? UINT64_MAX
                                            : get_u64(c, "intx_gsi", UINT64_MAX);
  config->ioapics[0].paddr = (uint32_t)get_u64(c, "ioapic", IOAPIC_DEFAULT_PADDR);
  config->ioapics[0].gsi_base = 0;
  config->ioapic_count = 1;
  uint64_t ioapic2 = get_u64(c, "ioapic2", 0);
  if (ioapic2 != 0) {
    config->ioapics[1].paddr = (uint32_t)ioapic2;
    config->ioapics[1].gsi_base = (uint32_t)get_u64(c, "ioapic2_gsi", 24);
    config->ioapic_count = 2;
  }
  config->timeout_ms = get_u64(c, "timeout_ms", 3000);
  config->disks = get_u64(c, "disks", UINT64_MAX);
  config->durability = get_u64(c, "durability", 0);
  if (config->durability > UINT32_MAX) bad_cmdline("durability");

  struct blk_test_options* t = &config->test;
  t->blk.indirect = get_bool(c, "indirect", true);
  t->blk.event_idx = get_bool(c, "event_idx", true);
  t->blk.discard = get_bool(c, "discard", true);
  t->blk.write_zeroes = get_bool(c, "write_zeroes", true);
  uint64_t qsize = get_u64(c, "qsize", VIRTQ_MAX_SIZE);
  if (qsize == 0 || qsize > VIRTQ_MAX_SIZE) bad_cmdline("qsize");
  t->blk.queue_size = (uint16_t)qsize;
  uint64_t r = get_u64(c, "read_sectors", 8);
  uint64_t w = get_u64(c, "write_sectors", 8);
  if (r > BLK_TEST_MAX_SECTORS) bad_cmdline("read_sectors");
  if (w > BLK_TEST_MAX_SECTORS) bad_cmdline("write_sectors");
  t->read_sectors = (uint32_t)r;
  t->write_sectors = (uint32_t)w;
  t->verify = get_bool(c, "verify", true);
  t->reset = get_bool(c, "reset", false);
}

// The IOAPIC that owns `gsi` (the first one when none does: routing then
// fails with a clear message).
static struct ioapic ioapic_for(const struct config* config, uint32_t gsi) {
  for (uint32_t i = 0; i < config->ioapic_count; ++i) {
    const struct ioapic* io = &config->ioapics[i];
    if (gsi >= io->gsi_base && gsi - io->gsi_base < ioapic_pins(io)) return *io;
  }
  return config->ioapics[0];
}

static void set_common(struct virtio_dev* dev, const struct config* config,
                       enum virtio_irq_mode mode) {
  dev->irq_mode = mode;
  dev->vector = (uint8_t)(IRQ_DEVICE_VECTOR_BASE + disk_count);
  dev->apic_id = (uint8_t)config->apic_id;
  dev->timeout_ms = (uint32_t)config->timeout_ms;
  dev->irq_count = 0;
}

static void print_location(char* out, uint16_t bdf) {
  const char* hex = "0123456789abcdef";
  uint32_t bus = PCI_BUS(bdf), dev = PCI_DEV(bdf);
  out[0] = hex[bus >> 4];
  out[1] = hex[bus & 15];
  out[2] = ':';
  out[3] = hex[dev >> 4];
  out[4] = hex[dev & 15];
  out[5] = '.';
  out[6] = (char)('0' + PCI_FN(bdf));
  out[7] = '\0';
}

static void print_decimal(char* out, uint32_t value) {
  char digits[12];
  int n = 0;
  do {
    digits[n++] = (char)('0' + value % 10);
    value /= 10;
  } while (value != 0);
  while (n > 0) *out++ = digits[--n];
  *out = '\0';
}

// Moves every memory BAR of `bdf`, naturally aligned: 32-bit BARs upwards
// from *next32, 64-bit ones from *next64.
static void remap_bars(uint16_t bdf, uint64_t* next32, uint64_t* next64) {
  for (uint32_t i = 0; i < 6; ++i) {
    struct pci_bar bar;
    if (!pci_bar_read(bdf, i, &bar)) continue;
    if (bar.is_io || bar.size == 0) {
      if (bar.is_64bit) ++i;
      continue;
    }
    uint64_t* next = bar.is_64bit ? next64 : next32;
    uint64_t address = (*next + bar.size - 1) & ~(bar.size - 1);
    pci_bar_assign(bdf, i, address, bar.is_64bit);
    *next = address + bar.size;
    struct pci_bar moved;
    pci_bar_read(bdf, i, &moved);
    console_printf("pci %02x:%02x.%u: BAR%u 0x%lx -> 0x%lx%s\n", PCI_BUS(bdf),
                   PCI_DEV(bdf), PCI_FN(bdf), i, (unsigned long)bar.address,
                   (unsigned long)moved.address,
                   moved.address == address ? "" : " (did not stick)");
    if (bar.is_64bit) ++i;
  }
}

static bool same_functions(const struct pci_function* a, uint32_t na,
                           const struct pci_function* b, uint32_t nb) {
  if (na != nb) {
    console_printf("pci: FAIL: cf8 finds %u functions, ecam %u\n", na, nb);
    return false;
  }
  for (uint32_t i = 0; i < na; ++i) {
    if (a[i].bdf != b[i].bdf) {
      console_printf("pci: FAIL: function %u is %04x via cf8, %04x via ecam\n",
                     i, a[i].bdf, b[i].bdf);
      return false;
    }
    for (uint16_t reg = 0; reg < PCI_HEADER_DWORDS * 4; reg += 4) {
      uint32_t x = pci_read32_via(PCI_ACCESS_CF8, a[i].bdf, reg);
      uint32_t y = pci_read32_via(PCI_ACCESS_ECAM, a[i].bdf, reg);
      if (x != y) {
        console_printf("pci: FAIL: %04x reg 0x%02x: cf8 0x%08x, ecam 0x%08x\n",
                       a[i].bdf, reg, x, y);
        return false;
      }
    }
  }
  return true;
}

static void find_pci_disks(const struct config* config) {
  static struct pci_function functions[MAX_PCI_FUNCTIONS];
  pci_select(config->pci_access, config->ecam);
  uint32_t n = pci_enumerate(config->pci_access, (uint32_t)config->pci_buses,
                             functions, MAX_PCI_FUNCTIONS);
  if (config->pci_both) {
    static struct pci_function via_cf8[MAX_PCI_FUNCTIONS];
    uint32_t n_cf8 = pci_enumerate(PCI_ACCESS_CF8, (uint32_t)config->pci_buses,
                                   via_cf8, MAX_PCI_FUNCTIONS);
    if (!same_functions(via_cf8, n_cf8, functions, n)) {
      ++probe_failures;
      return;
    }
    console_printf("pci: cf8 and ecam agree on %u functions\n", n);
  } else {
    console_printf("pci: %s: %u functions\n", pci_access_name(config->pci_access),
                   n);
  }
  uint64_t next32 = config->bar_remap;
  uint64_t next64 = config->bar_remap64;
  uint64_t* next64_ptr = config->bar_remap64 != 0 ? &next64 : &next32;
  for (uint32_t i = 0; i < n; ++i) {
    const struct pci_function* f = &functions[i];
    if (f->vendor != VIRTIO_PCI_VENDOR ||
        f->device != VIRTIO_PCI_MODERN_DEVICE_BASE + VIRTIO_ID_BLOCK) {
      continue;
    }
    char location[16];
    print_location(location, f->bdf);
    uint32_t slot = disk_count;
    if (slot >= MAX_PCI_DISKS) {
      console_printf("blk pci %s: skipped (more than %u pci disks)\n",
                     location, MAX_PCI_DISKS);
      continue;
    }
    if (config->bar_remap != 0) remap_bars(f->bdf, &next32, next64_ptr);
    struct virtio_pci_dev* dev = &pci_devs[slot];
    const char* why = "";
    if (!virtio_pci_probe(dev, f->bdf, &why) ||
        (config->pcicfg && !virtio_pci_check_cfg_window(dev, &why))) {
      console_printf("blk pci %s: capacity 0 serial - FAIL: %s\n", location,
                     why);
      ++probe_failures;
      continue;
    }
    for (int k = 0; k < 8; ++k) dev->vdev.location[k] = location[k];
    set_common(&dev->vdev, config, config->pci_irq);
    if (config->intx_from_line) {
      dev->intx_gsi = pci_read8(f->bdf, PCI_INTERRUPT_LINE);
    } else if (config->intx_gsi != UINT64_MAX) {
      dev->intx_gsi = (uint32_t)config->intx_gsi;
    } else {
      dev->intx_gsi = kIntxGsis[PCI_DEV(f->bdf) % 4];
    }
    dev->ioapic = ioapic_for(config, dev->intx_gsi);
    disks[disk_count++] = &dev->vdev;
  }
}

static void add_mmio(const struct config* config, uint64_t base, uint32_t slot,
                     uint32_t gsi) {
  static uint32_t mmio_count;
  if (mmio_count >= MAX_MMIO_DISKS) return;
  struct virtio_mmio_dev* dev = &mmio_devs[mmio_count];
  const char* why = "";
  enum virtio_mmio_probe_result result =
      virtio_mmio_probe(dev, base, slot, gsi, &why);
  if (result == VIRTIO_MMIO_EMPTY) return;
  print_decimal(dev->vdev.location, slot);
  if (result == VIRTIO_MMIO_UNSUPPORTED) {
    console_printf("blk mmio %s: capacity 0 serial - FAIL: %s\n",
                   dev->vdev.location, why);
    ++probe_failures;
    return;
  }
  if (dev->vdev.device_type != VIRTIO_ID_BLOCK) return;
  set_common(&dev->vdev, config,
             config->mmio_irq ? VIRTIO_IRQ_GSI : VIRTIO_IRQ_POLL);
  dev->ioapic = ioapic_for(config, gsi);
  disks[disk_count++] = &dev->vdev;
  ++mmio_count;
}

static void find_mmio_disks(const struct config* config) {
  if (config->mmio == MMIO_PROBE) {
    for (uint32_t i = 0; i < config->mmio_slots; ++i) {
      add_mmio(config, config->mmio_base + i * config->mmio_stride, i,
               (uint32_t)(config->mmio_gsi + i));
    }
    return;
  }
  // mmio=cmdline: the announced windows, in ascending address order (as
  // probing finds them); the slot number is derived from mmio_base and
  // mmio_stride when the window lies on that grid.
  struct announced {
    uint64_t base;
    uint32_t irq;
  } found[MAX_MMIO_SLOTS];
  uint32_t count = 0;
  for (size_t n = 0; count < MAX_MMIO_SLOTS; ++n) {
    size_t len = 0;
    const char* value =
        cmdline_find_nth(config->cmdline, "virtio_mmio.device", n, &len);
    if (value == 0) break;
    uint64_t size;
    if (!virtio_mmio_parse_device(value, len, &size, &found[count].base,
                                  &found[count].irq)) {
      bad_cmdline("virtio_mmio.device");
    }
    // Insertion sort by base.
    uint32_t i = count++;
    for (; i > 0 && found[i - 1].base > found[i].base; --i) {
      struct announced t = found[i - 1];
      found[i - 1] = found[i];
      found[i] = t;
    }
  }
  for (uint32_t i = 0; i < count; ++i) {
    uint64_t base = found[i].base;
    uint64_t slot = i;
    if (base >= config->mmio_base &&
        (base - config->mmio_base) % config->mmio_stride == 0) {
      slot = (base - config->mmio_base) / config->mmio_stride;
    }
    add_mmio(config, base, (uint32_t)slot, found[i].irq);
  }
}

static bool three_ticks(void* start) {
  return irq_timer_ticks() - *(uint32_t*)start >= 3;
}

// Before any device interrupt: the CPU side alone (IDT, LAPIC timer,
// hlt wake-up, iretq) must work, or no device result means anything.
static void check_timer_interrupts(void) {
  uint32_t start = irq_timer_ticks();
  if (!irq_wait(three_ticks, &start, 1000)) {
    console_printf("irq: FAIL: %u LAPIC timer interrupts in ~1 s\n",
                   irq_timer_ticks() - start);
    guest_debug_exit(GUEST_EXIT_FAILURE);
  }
  console_puts("irq: lapic timer ok\n");
}

void guest_main(const struct hvm_start_info* info) {
  const char* cmdline = pvh_cmdline(info);
  console_printf("blk: cmdline: %s\n", cmdline);
  static struct config config;
  parse_config(cmdline, &config);

  struct mp_info mp;
  const char* why = "";
  if (!mp_find_cpus(&mp, &why)) {
    console_printf("mp: %s; assuming one cpu\n", why);
  }
  uint32_t up = smp_start_aps(&mp);
  if (up != mp.cpu_count) {
    console_printf("smp: FAIL: %u of %u cpus up\n", up, mp.cpu_count);
    guest_debug_exit(GUEST_EXIT_FAILURE);
  }
  console_printf("smp: %u cpus up\n", up);
  irq_init(mp.lapic_paddr);
  config.apic_id = lapic_self_id();
  if (config.pci_irq != VIRTIO_IRQ_POLL) check_timer_interrupts();

  if (config.pci_on) find_pci_disks(&config);
  if (config.mmio != MMIO_OFF) find_mmio_disks(&config);

  if (config.durability != 0) {
    if (disk_count == 0) {
      console_puts("durability: FAIL: no disk\n");
      guest_debug_exit(EXIT_DISK_COUNT);
    }
    bool ok = blk_durability_run(disks[0], &config.test.blk,
                                 (uint32_t)config.durability);
    guest_debug_exit(ok ? 0 : EXIT_DISK_FAILED);
  }

  uint32_t failed = probe_failures;
  for (uint32_t i = 0; i < disk_count; ++i) {
    if (!blk_test_disk(disks[i], i, &config.test)) ++failed;
  }
  uint32_t total = disk_count + probe_failures;
  uint8_t vector = 0;
  uint32_t unexpected = irq_unexpected(&vector);
  if (unexpected != 0) {
    console_printf("blk: FAIL: %u interrupts on unexpected vectors (last 0x%x)\n",
                   unexpected, vector);
    guest_debug_exit(EXIT_DISK_FAILED);
  }
  if (failed != 0) {
    console_printf("blk: FAIL: %u of %u disks failed\n", failed, total);
    guest_debug_exit(EXIT_DISK_FAILED);
  }
  if (total == 0 || (config.disks != UINT64_MAX && total != config.disks)) {
    console_printf("blk: FAIL: found %u disks, expected %s%lu\n", total,
                   config.disks == UINT64_MAX ? "at least " : "",
                   (unsigned long)(config.disks == UINT64_MAX ? 1 : config.disks));
    guest_debug_exit(EXIT_DISK_COUNT);
  }
  console_printf("blk: %u disks ok\n", total);
  guest_debug_exit(0);
}
