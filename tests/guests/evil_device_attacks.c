// evil.elf's attacks on the PCI function (MSI-X table, BAR placement,
// read-only config space) and on virtio-blk's request handling (sector
// ranges, a read-only disk, GET_ID buffers).
#include "blk_pattern.h"
#include "evil.h"
#include "runtime/console.h"
#include "runtime/io.h"
#include "runtime/irq.h"
#include "runtime/mp_table.h"
#include "runtime/msix.h"
#include "runtime/pci.h"
#include "runtime/smp.h"
#include "runtime/string.h"

static uint8_t big_buffer[8192] __attribute__((aligned(4096), section(".bss.noinit")));
// A stretch of RAM where a BAR is moved (aligned to the BAR size).
static uint8_t ram_window[0x8000] __attribute__((aligned(0x8000), section(".bss.noinit")));
static volatile uint32_t msi_target[4] __attribute__((aligned(16)));

static bool irq_arrived(void* before) {
  return victim.dev->irq_count != *(uint32_t*)before;
}

void attack_msix_bad_address(void) {
  struct msix* m = &victim.pci.msix;
  if (!victim.pci.has_msix) {
    check(false, "victim has MSI-X");
    return;
  }
  irq_init(LAPIC_PADDR);
  // A vector past the table is refused with NO_VECTOR (4.1.4.3.1).
  mmio_write16(victim.pci.common + COMMON_CONFIG_MSIX_VECTOR, 0x7ff);
  check(mmio_read16(victim.pci.common + COMMON_CONFIG_MSIX_VECTOR) == VIRTIO_MSI_NO_VECTOR,
        "config_msix_vector 0x7ff: reads back NO_VECTOR");
  // Interrupts on, event_idx off (used flags then always ask for them).
  struct virtio_blk_options options = kDefaultOptions;
  options.event_idx = false;
  victim.dev->irq_mode = VIRTIO_IRQ_MSIX;
  if (!init_disk(&victim, &options)) {
    check(false, "victim initialised with MSI-X");
    return;
  }
  mmio_write16(victim.pci.common + COMMON_QUEUE_SELECT, 0);
  mmio_write16(victim.pci.common + COMMON_QUEUE_MSIX_VECTOR, 0x7ff);
  check(mmio_read16(victim.pci.common + COMMON_QUEUE_MSIX_VECTOR) == VIRTIO_MSI_NO_VECTOR,
        "queue_msix_vector 0x7ff: reads back NO_VECTOR");
  mmio_write16(victim.pci.common + COMMON_QUEUE_MSIX_VECTOR, 1);
  // Take the interrupt of the last request of the set-up, if it is still
  // pending, before counting.
  uint32_t irqs_before = victim.dev->irq_count;
  irq_wait(irq_arrived, &irqs_before, 100);
  irqs_before = victim.dev->irq_count;
  // Entry 1 (the queue's) aimed at guest RAM, entry 0 at nothing; plus
  // writes the table must ignore (bad widths, the read-only PBA).
  msi_target[0] = 0x600df00du;
  uint64_t t = m->table;
  mmio_write32(t + 16 + 0, (uint32_t)(uintptr_t)msi_target);
  mmio_write32(t + 16 + 4, 0);
  mmio_write32(t + 16 + 8, 0x41);
  mmio_write32(t + 0, 0xdead0000u);
  mmio_write32(t + 4, 0xffffffffu);
  mmio_write32(t + 8, 0x42);
  mmio_write8(t + 16 + 12, 0);
  mmio_write16(t + 2, 0xffff);
  mmio_write32(t + 0x2000, 0xffffffffu);  // the PBA
  // Requests, polled: they complete; the interrupts go nowhere.
  victim.blk.vq.interrupts = false;
  bool ok = true;
  for (int i = 0; i < 4; ++i) ok &= read_and_compare(&victim, VICTIM_PATTERN, GEN_HOST, 0, 1);
  check(ok, "requests with a bogus MSI-X address complete");
  irq_wait(irq_arrived, &irqs_before, 300);  // a stray one would show here
  check(victim.dev->irq_count == irqs_before, "no interrupt delivered (%u)",
        victim.dev->irq_count - irqs_before);
  check(msi_target[0] == 0x600df00du, "RAM at the MSI address untouched");
  // A good entry again: interrupts come back.
  msix_set_entry(m, 1, 0, victim.dev->vector);
  msix_unmask_entry(m, 1);
  victim.blk.vq.interrupts = true;
  bool read_ok = read_and_compare(&victim, VICTIM_PATTERN, GEN_HOST, 1, 1);
  // The request may be used before the guest waits: take the interrupt.
  irq_wait(irq_arrived, &irqs_before, 1000);
  check(read_ok && victim.dev->irq_count > irqs_before,
        "a valid MSI-X entry delivers again (read %s, %u interrupts)",
        read_ok ? "ok" : "failed", victim.dev->irq_count - irqs_before);
  msix_disable(m);
  victim.dev->irq_mode = VIRTIO_IRQ_POLL;
}

static bool victim_registers_answer(void) {
  return (victim.dev->ops->device_features(victim.dev) & VIRTIO_F_VERSION_1) != 0;
}

void attack_bar_on_ram(void) {
  struct pci_bar bar;
  pci_bar_read(victim.pci.bdf, 0, &bar);
  memset(ram_window, 0x3c, sizeof(ram_window));
  uint64_t ram = (uint64_t)(uintptr_t)ram_window;
  pci_bar_assign(victim.pci.bdf, 0, ram, true);
  // RAM keeps priority: reads see RAM, writes (common config, notify) land
  // in RAM and nowhere else.
  bool ram_reads = mmio_read32(ram) == 0x3c3c3c3cu &&
                   mmio_read8(ram + COMMON_DEVICE_STATUS) == 0x3c;
  mmio_write8(ram + COMMON_DEVICE_STATUS, 0);
  mmio_write16(ram + 0x3000, 0);
  check(ram_reads, "BAR over RAM: reads see RAM");
  pci_bar_assign(victim.pci.bdf, 0, bar.address, true);
  check(victim_registers_answer() &&
            (status_of(&victim) & VIRTIO_STATUS_DRIVER_OK) != 0,
        "BAR back in place: registers answer, the status write went to RAM");
  check(read_and_compare(&victim, VICTIM_PATTERN, GEN_HOST, 0, 1),
        "victim serves after its BAR returned");
}

void attack_bar_on_device(void) {
  struct pci_bar bar;
  pci_bar_read(victim.pci.bdf, 0, &bar);
  uint64_t targets[2] = {good.is_pci ? good.pci.common : good.mmio.base, ECAM_BASE};
  const char* names[2] = {"the good disk's registers", "the ECAM window"};
  for (int i = 0; i < 2; ++i) {
    // BAR-sized alignment: the start of the good disk's BAR, or ECAM.
    uint64_t target = targets[i] & ~(bar.size - 1);
    pci_bar_assign(victim.pci.bdf, 0, target, true);
    bool other_intact =
        i == 0 ? (good.dev->ops->get_status(good.dev) & VIRTIO_STATUS_DRIVER_OK) != 0 &&
                     (good.dev->ops->device_features(good.dev) & VIRTIO_F_VERSION_1) != 0
               : pci_read16(victim.pci.bdf, PCI_VENDOR_ID) == VIRTIO_PCI_VENDOR;
    check(other_intact, "BAR onto %s: refused, it still answers as before", names[i]);
  }
  pci_bar_assign(victim.pci.bdf, 0, bar.address, true);
  check(victim_registers_answer(), "BAR back in place: victim registers answer");
  check(read_and_compare(&victim, VICTIM_PATTERN, GEN_HOST, 0, 1),
        "victim serves after its BAR returned");
}

void attack_pci_readonly_writes(void) {
  uint16_t bdf = victim.pci.bdf;
  // Dwords that are entirely read-only, and the read-only bytes of the
  // capabilities (virtio caps except PCI_CFG's window, the MSI-X table and
  // PBA locations).
  static uint16_t regs[48];
  uint32_t n = 0;
  regs[n++] = 0x00;  // vendor, device
  regs[n++] = 0x08;  // revision, class
  regs[n++] = 0x2c;  // subsystem
  regs[n++] = 0x34;  // capability pointer
  for (uint8_t cap = pci_find_capability(bdf, PCI_CAP_ID_VENDOR, 0); cap != 0 && n + 4 < 48;
       cap = pci_find_capability(bdf, PCI_CAP_ID_VENDOR, cap)) {
    if (pci_read8(bdf, cap + 3) == 5) continue;  // PCI_CFG: its window is writable
    regs[n++] = cap;
    regs[n++] = (uint16_t)(cap + 4);
    regs[n++] = (uint16_t)(cap + 8);
    regs[n++] = (uint16_t)(cap + 12);
  }
  uint8_t msix_cap = pci_find_capability(bdf, PCI_CAP_ID_MSIX, 0);
  if (msix_cap != 0) {
    regs[n++] = (uint16_t)(msix_cap + 4);
    regs[n++] = (uint16_t)(msix_cap + 8);
  }
  static uint32_t before[48];
  for (uint32_t i = 0; i < n; ++i) before[i] = pci_read32(bdf, regs[i]);
  uint16_t msix_control = msix_cap ? pci_read16(bdf, msix_cap + 2) : 0;
  uint8_t pin = pci_read8(bdf, PCI_INTERRUPT_PIN);
  for (uint32_t i = 0; i < n; ++i) {
    pci_write32(bdf, regs[i], 0xffffffffu);
    pci_write16(bdf, regs[i], 0);
    pci_write8(bdf, (uint16_t)(regs[i] + 3), 0x5a);
  }
  pci_write8(bdf, PCI_INTERRUPT_PIN, 4);
  pci_write8(bdf, PCI_HEADER_TYPE, 0x80);  // claim multi-function
  if (msix_cap) pci_write16(bdf, msix_cap + 2, 0x07ff);  // table size bits
  pci_write32(bdf, 0x30, 0xffffffffu);    // expansion ROM: none
  pci_write32(bdf, 0x100, 0xffffffffu);   // extended config space
  pci_write32(bdf, 0xffc, 0xffffffffu);
  uint32_t changed = 0;
  for (uint32_t i = 0; i < n; ++i) {
    if (pci_read32(bdf, regs[i]) != before[i]) {
      console_printf("evil: config 0x%02x: 0x%08x -> 0x%08x\n", regs[i], before[i],
                     pci_read32(bdf, regs[i]));
      ++changed;
    }
  }
  check(changed == 0, "%u read-only config dwords written: all unchanged", n);
  check(pci_read8(bdf, PCI_INTERRUPT_PIN) == pin, "interrupt pin unchanged");
  check((pci_read8(bdf, PCI_HEADER_TYPE) & 0x80) == 0, "header type still single-function");
  check(!msix_cap || (pci_read16(bdf, msix_cap + 2) & 0x7ff) == (msix_control & 0x7ff),
        "MSI-X table size unchanged");
  check(pci_read32(bdf, 0x30) == 0, "expansion ROM BAR reads 0");
  check(pci_read16(PCI_BDF(0, PCI_DEV(bdf), 1), PCI_VENDOR_ID) == 0xffff,
        "no function 1 appeared");
  const char* why = "";
  check(virtio_pci_probe(&victim.pci, bdf, &why), "victim probes again: %s", why);
}
void attack_blk_sector_overflow(void) {
  uint64_t cap = victim.blk.capacity;
  fill_pattern(buffer, VICTIM_PATTERN, GEN_GUEST, 0, 2);
  expect_status("read at capacity", VIRTIO_BLK_T_IN, cap, buffer, SECTOR, false, 0,
                VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_IOERR);
  expect_status("read across the end", VIRTIO_BLK_T_IN, cap - 1, buffer, 2 * SECTOR, false,
                0, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_IOERR);
  expect_status("write at sector 2^64-1", VIRTIO_BLK_T_OUT, ~0ull, buffer, SECTOR, false, 0,
                VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_IOERR);
  expect_status("write at sector 2^55 (x512 wraps to 0)", VIRTIO_BLK_T_OUT, 1ull << 55,
                buffer, SECTOR, false, 0, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_IOERR);
  expect_status("write across the end", VIRTIO_BLK_T_OUT, cap - 1, buffer, 2 * SECTOR,
                false, 0, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_IOERR);
  expect_status("write of half a sector", VIRTIO_BLK_T_OUT, 0, buffer, SECTOR / 2, false,
                0, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_IOERR);
  if (victim.blk.has_write_zeroes) {
    expect_status("write zeroes across the end", VIRTIO_BLK_T_WRITE_ZEROES, cap - 1, 0, 0,
                  true, 2, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_IOERR);
    expect_status("write zeroes at 2^63", VIRTIO_BLK_T_WRITE_ZEROES, 1ull << 63, 0, 0,
                  true, 1, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_IOERR);
  }
  if (victim.blk.has_discard) {
    expect_status("discard of 2^32-1 sectors", VIRTIO_BLK_T_DISCARD, 0, 0, 0, true,
                  0xffffffffu, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_IOERR);
  }
  expect_status("unknown request type 0x7fff", 0x7fff, 0, 0, 0, false, 0,
                VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_S_UNSUPP);
  check((status_of(&victim) & VIRTIO_STATUS_NEEDS_RESET) == 0,
        "bad requests are answered, the device stays usable");
}

void attack_blk_write_readonly(void) {
  check(victim.blk.read_only, "victim offers VIRTIO_BLK_F_RO");
  fill_pattern(buffer, VICTIM_PATTERN, GEN_GUEST, 0, 1);
  expect_status("write to a read-only disk", VIRTIO_BLK_T_OUT, 0, buffer, SECTOR, false, 0,
                VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_IOERR);
  expect_status("write zeroes to a read-only disk", VIRTIO_BLK_T_WRITE_ZEROES, 0, 0, 0,
                true, 1, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_UNSUPP);
  expect_status("discard on a read-only disk", VIRTIO_BLK_T_DISCARD, 0, 0, 0, true, 1,
                VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_UNSUPP);
  // A driver that does not acknowledge RO gets the same answer.
  const char* why = "";
  if (!virtio_reset(victim.dev, &why) || !negotiate_only(VIRTIO_F_VERSION_1) ||
      !virtq_init(&victim.blk.vq, victim.dev, 0, SMALL_QUEUE, false, &why) ||
      !virtio_driver_ok(victim.dev, &why)) {
    check(false, "victim set up without RO: %s", why);
    return;
  }
  check((victim.dev->negotiated & VIRTIO_BLK_F_RO) == 0, "RO not acknowledged");
  expect_status("write without RO acknowledged", VIRTIO_BLK_T_OUT, 0, buffer, SECTOR, false,
                0, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_IOERR);
}

void attack_getid_oversize(void) {
  memset(big_buffer, 0xaa, sizeof(big_buffer));
  uint8_t status = 0xff;
  uint32_t used = 0;
  bool done = request(&victim, VIRTIO_BLK_T_GET_ID, 0, big_buffer, sizeof(big_buffer), false,
                      0, &status, &used);
  check(done && status == VIRTIO_BLK_S_OK && used <= VIRTIO_BLK_ID_BYTES + 1,
        "8 KiB GET_ID buffer: OK, used length %u", used);
  bool rest = true;
  for (uint32_t i = VIRTIO_BLK_ID_BYTES; i < sizeof(big_buffer); ++i) rest &= big_buffer[i] == 0xaa;
  check(memcmp(big_buffer, "victim", 6) == 0 && rest,
        "GET_ID wrote the serial and not a byte past 20");
  // GET_ID with only a status byte, and with a device-readable "buffer".
  done = request(&victim, VIRTIO_BLK_T_GET_ID, 0, 0, 0, false, 0, &status, &used);
  check(done && used == 1 && status == VIRTIO_BLK_S_OK,
        "GET_ID without a buffer: status %u, used length %u", status, used);
  // A GET_ID buffer longer than the guest's RAM.
  expect_broken_chain("GET_ID buffer of 4 GiB - 1", VIRTIO_BLK_T_GET_ID,
                      (uint64_t)(uintptr_t)big_buffer, 0xffffffffu, VIRTQ_DESC_F_WRITE);
}

// struct virtio_pci_cfg_cap fields (4.1.4.9).
#define CFG_CAP_BAR 4
#define CFG_CAP_OFFSET 8
#define CFG_CAP_LENGTH 12
#define CFG_CAP_DATA 16

static void set_window(uint8_t cap, uint8_t bar, uint32_t offset, uint32_t length) {
  pci_write8(victim.pci.bdf, (uint16_t)(cap + CFG_CAP_BAR), bar);
  pci_write32(victim.pci.bdf, (uint16_t)(cap + CFG_CAP_OFFSET), offset);
  pci_write32(victim.pci.bdf, (uint16_t)(cap + CFG_CAP_LENGTH), length);
}

void attack_pci_cfg_window(void) {
  uint16_t bdf = victim.pci.bdf;
  uint8_t cap = victim.pci.pci_cfg_cap;
  if (cap == 0) {
    check(false, "victim has a PCI_CFG capability");
    return;
  }
  // Windows that must not reach the BAR: each write of 0 through them would
  // reset the device if it reached device_status.
  static const struct {
    uint8_t bar;
    uint32_t offset, length;
  } bad[] = {
      {5, COMMON_DEVICE_STATUS, 1},    // a BAR the function does not have
      {0, COMMON_DEVICE_STATUS, 0},    // lengths the spec does not allow
      {0, COMMON_DEVICE_STATUS, 3},
      {0, COMMON_DEVICE_STATUS, 8},
      {0, COMMON_DEVICE_STATUS + 1, 2},  // misaligned
      {0, 0x8000, 4},                  // past the BAR
      {0, 0xfffffffcu, 4},             // offset + length wraps 32 bits
  };
  uint8_t status = status_of(&victim);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
    set_window(cap, bad[i].bar, bad[i].offset, bad[i].length);
    pci_write32(bdf, (uint16_t)(cap + CFG_CAP_DATA), 0);
    (void)pci_read32(bdf, (uint16_t)(cap + CFG_CAP_DATA));
  }
  check(status_of(&victim) == status, "7 malformed PCI_CFG windows: writes refused (status 0x%x)",
        status_of(&victim));
  // A proper window reads the status.
  set_window(cap, 0, COMMON_DEVICE_STATUS, 1);
  check(pci_read8(bdf, (uint16_t)(cap + CFG_CAP_DATA)) == status,
        "a proper window reads device_status");
  // Kick queue 0 through the window: the request completes (slow path).
  struct pci_bar bar;
  pci_bar_read(bdf, 0, &bar);
  struct virtq* vq = &victim.blk.vq;
  struct request* r = prepare(0, VIRTIO_BLK_T_IN, 0);
  struct virtq_buf bufs[3] = {
      {&r->header, sizeof(r->header), false},
      {buffer, SECTOR, true},
      {(const void*)&r->status, 1, true},
  };
  memset(buffer, 0, SECTOR);
  bool ok = virtq_add(vq, bufs, 3, r);
  compiler_barrier();
  vq->avail[1] = vq->avail_idx;
  vq->avail_kicked = vq->avail_idx;
  memory_barrier();
  set_window(cap, 0, (uint32_t)(victim.pci.queue_notify[0] - bar.address), 2);
  pci_write32(bdf, (uint16_t)(cap + CFG_CAP_DATA), 0);
  const char* why = "";
  void* cookie = 0;
  uint32_t len = 0;
  ok = ok && virtq_wait(vq, &why) && virtq_pop_used(vq, &cookie, &len, &why) && cookie == r &&
       r->status == VIRTIO_BLK_S_OK && sector_is(buffer, VICTIM_PATTERN, GEN_HOST, 0);
  check(ok, "a read kicked through the PCI_CFG window completes%s%s", ok ? "" : ": ", why);
}

void attack_config_port_garbage(void) {
  // 0xCF8/0xCFC and ECAM abuse that must reach no function: disabled
  // CONFIG_ADDRESS, absent buses/devices/functions, odd widths and
  // offsets, the PIIX reset register at 0xCF9, an 8-byte ECAM read.
  uint32_t x = 0x9e3779b9u;
  for (uint32_t i = 0; i < 300; ++i) {
    x = x * 1664525u + 1013904223u;
    // Bit 31 clear (disabled), or a device number >= 20 (none there).
    uint32_t address = (i & 1) ? (x & 0x7fffffffu) : (0x80000000u | (x & 0xff0000u) |
                                                      (20u + (x >> 27) % 12) << 11 |
                                                      (x & 0x7ff));
    outl(0xcf8, address);
    outl(0xcfc, x);
    outw((uint16_t)(0xcfc + ((x >> 8) & 3)), (uint16_t)x);
    outb((uint16_t)(0xcfc + ((x >> 12) & 3)), (uint8_t)x);
    (void)inl(0xcfc);
    (void)inw(0xcfe);
    (void)inb(0xcff);
  }
  outb(0xcf9, 0x06);  // a PC's reset control: not ours, ignored
  outw(0xcf8, 0xffff);
  outb(0xcfb, 0x80);
  volatile uint64_t sink = *(volatile uint64_t*)(uintptr_t)(ECAM_BASE + (victim.pci.bdf << 12));
  (void)sink;
  mmio_write32(ECAM_BASE + (31u << 15) + (7u << 12) + 0xffc, 0xffffffffu);
  mmio_write16(ECAM_BASE + 0x0ffffffeu, 0xffff);  // the last bytes of bus 255
  outl(0xcf8, 0x80000000u | ((uint32_t)victim.pci.bdf << 8));
  check(inw(0xcfc) == VIRTIO_PCI_VENDOR && pci_read16(good.is_pci ? good.pci.bdf : victim.pci.bdf,
                                                      PCI_VENDOR_ID) == VIRTIO_PCI_VENDOR,
        "after 300 rounds of garbage, 0xCF8/0xCFC and ECAM still reach the disks");
  check(victim_registers_answer() && read_and_compare(&victim, VICTIM_PATTERN, GEN_HOST, 0, 1),
        "victim still serves");
}

// --- Two CPUs: the BAR moving under a running device ---

#define BAR_RACE_ROUNDS 60
static volatile uint32_t bar_race_go, bar_race_done;
static uint64_t bar_home, bar_away;

// On the AP: move the victim's BAR away and back, toggle its memory decode
// and MSI-X, rewrite an MSI-X entry, while the BSP keeps the queue busy.
static void bar_mover(void) {
  while (!bar_race_go) cpu_relax();
  uint16_t bdf = victim.pci.bdf;
  uint8_t msix_cap = pci_find_capability(bdf, PCI_CAP_ID_MSIX, 0);
  for (uint32_t i = 0; i < BAR_RACE_ROUNDS; ++i) {
    pci_bar_assign(bdf, 0, bar_away, true);
    uint16_t command = pci_read16(bdf, PCI_COMMAND);
    pci_write16(bdf, PCI_COMMAND, (uint16_t)(command & ~PCI_COMMAND_MEMORY));
    pci_write16(bdf, PCI_COMMAND, command);
    pci_bar_assign(bdf, 0, bar_home, true);
    if (victim.pci.has_msix) {
      mmio_write32(victim.pci.msix.table + 16 * (i % 2) + 8, 0x30 + i);
    }
    if (msix_cap != 0) {
      uint16_t control = pci_read16(bdf, (uint16_t)(msix_cap + 2));
      pci_write16(bdf, (uint16_t)(msix_cap + 2), (uint16_t)(control ^ 0x8000));
      pci_write16(bdf, (uint16_t)(msix_cap + 2), control);
    }
  }
  bar_race_done = 1;
}

void attack_bar_race(void) {
  struct mp_info mp;
  const char* why = "";
  if (!mp_find_cpus(&mp, &why) || mp.cpu_count < 2) {
    check(false, "two CPUs (%s)", why);
    return;
  }
  struct pci_bar bar;
  pci_bar_read(victim.pci.bdf, 0, &bar);
  bar_home = bar.address;
  bar_away = bar.address + 0x100000;
  // One read of sector 32 at head 0; every avail slot names it. The BSP
  // publishes the next one only when the last came back, and kicks the
  // home address whether the BAR is there or not.
  struct virtq* vq = &victim.blk.vq;
  struct request* r = prepare(0, VIRTIO_BLK_T_IN, RESET_FIRST);
  set_desc(&vq->desc[0], &r->header, sizeof(r->header), VIRTQ_DESC_F_NEXT, 1);
  set_desc(&vq->desc[1], buffer, SECTOR, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
  set_desc(&vq->desc[2], &r->status, 1, VIRTQ_DESC_F_WRITE, 0);
  for (uint16_t slot = 0; slot < SMALL_QUEUE; ++slot) vq->avail[2 + slot] = 0;
  uint16_t start = used_idx(vq);
  vq->avail_idx = start;
  vq->avail[1] = start;
  smp_ap_work = bar_mover;
  uint32_t up = smp_start_aps(&mp);
  check(up >= 2, "%u CPUs up", up);
  if (up < 2) return;
  bar_race_go = 1;
  uint32_t kicks = 0;
  while (!bar_race_done && kicks < 200000) {
    if (used_idx(vq) == vq->avail_idx) {
      vq->avail_idx = (uint16_t)(vq->avail_idx + 1);
      compiler_barrier();
      vq->avail[1] = vq->avail_idx;
    }
    memory_barrier();
    victim.dev->ops->notify(victim.dev, 0);
    ++kicks;
    for (uint32_t k = 0; k < 50; ++k) cpu_relax();
  }
  // Let the last one come back.
  for (uint32_t k = 0; k < 100000 && used_idx(vq) != vq->avail_idx; ++k) {
    victim.dev->ops->notify(victim.dev, 0);
    cpu_relax();
  }
  uint16_t done = (uint16_t)(used_idx(vq) - start);
  check(bar_race_done, "%u BAR moves raced %u kicks, %u reads done", BAR_RACE_ROUNDS, kicks, done);
  check(done > 0 && used_idx(vq) == vq->avail_idx &&
            (status_of(&victim) & VIRTIO_STATUS_NEEDS_RESET) == 0,
        "the device kept its queue through the moves (no reset needed)");
  // The driver's bookkeeping in line with the device again (one chain per
  // read, head 0 free), then a normal request.
  vq->last_used = used_idx(vq);
  check(read_and_compare(&victim, VICTIM_PATTERN, GEN_HOST, 0, 1),
        "the victim serves a normal read after the race");
}
