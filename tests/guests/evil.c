// evil.elf: a malicious virtio-blk driver. It attacks one disk (the
// "victim") in the way its command line names, checks from the guest side
// how the device reacted, then shows the VMM is still whole: the victim
// comes back after a reset, and a second, well-behaved disk (the "good"
// one, initialised before the attack and live throughout it) reads and
// writes correctly.
//
// Command line:
//   attack=NAME        one of the attacks in kAttacks below
//   victim=pci|mmio    the transport of the attacked disk             [pci]
// The victim is the first virtio-blk found on that transport, the good disk
// the first other one (PCI functions on bus 0 by device ID through ECAM at
// 0xe0000000, then virtio-mmio slots at 0xd0000000 + i * 0x1000). The host
// gives them the serials "victim" and "good" and images holding the
// blk_pattern.h pattern of disk 0 (victim) and disk 1 (good).
//
// What the device must do (virtio 1.2): a driver that breaks the ring
// protocol gets DEVICE_NEEDS_RESET and no used entry; a bad request gets an
// error status (IOERR/UNSUPP) with nothing written; a register write the
// driver is not allowed to make is refused (reads back what the device
// keeps). Nothing the guest does may write the images except its valid
// writes.
//
// Output: "evil: check <what>: ok" or "... FAIL: <detail>" per check, then
// "evil: <attack>: all <n> checks ok" or "evil: <attack>: <f> of <n> checks
// FAILED".
// Exit (debug-exit value): 0 all checks passed; 100 a check failed;
// 102 the two disks were not found; 103 bad command line.
#include <stdarg.h>

#include "blk_pattern.h"
#include "runtime/guest.h"
#include "runtime/irq.h"
#include "runtime/msix.h"
#include "runtime/pci.h"
#include "runtime/string.h"
#include "runtime/virtio_blk.h"
#include "runtime/virtio_mmio.h"
#include "runtime/virtio_pci.h"

#define EXIT_NO_DISKS 102
#define EXIT_BAD_CMDLINE 103

#define ECAM_BASE 0xe0000000u
#define MMIO_BASE 0xd0000000u
#define MMIO_STRIDE 0x1000u
#define MMIO_SLOTS 8
#define MMIO_GSI 16
#define LAPIC_PADDR 0xfee00000u
#define IOAPIC_PADDR 0xfec00000u

#define SECTOR VIRTIO_BLK_SECTOR_SIZE
#define VICTIM_PATTERN 0  // blk_pattern.h disk index of each image
#define GOOD_PATTERN 1
#define GEN_HOST 0
#define GEN_GUEST 1
// The good disk: generation 1 goes to [8, 12) before the attack and to
// [12, 16) after it.
#define GOOD_FIRST 8
#define GOOD_COUNT 8
// reset_mid_io writes generation 1 to [32, 64) of the victim.
#define RESET_FIRST 32
#define RESET_COUNT 32
#define SMALL_QUEUE 16

// virtio_pci common configuration offsets used directly.
#define COMMON_DRIVER_FEATURE_SELECT 8
#define COMMON_DRIVER_FEATURE 12
#define COMMON_CONFIG_MSIX_VECTOR 16
#define COMMON_DEVICE_STATUS 20
#define COMMON_QUEUE_SELECT 22
#define COMMON_QUEUE_MSIX_VECTOR 26
#define COMMON_QUEUE_DESC 32
#define VIRTIO_MSI_NO_VECTOR 0xffff
#define MMIO_REG_QUEUE_NOTIFY 0x050
#define MMIO_REG_QUEUE_SEL 0x030
#define MMIO_REG_QUEUE_DESC_LOW 0x080

struct disk {
  const char* name;
  struct virtio_dev* dev;
  struct virtio_pci_dev pci;
  struct virtio_mmio_dev mmio;
  bool is_pci;
  struct virtio_blk blk;
};

static struct disk victim __attribute__((section(".bss.noinit")));
static struct disk good __attribute__((section(".bss.noinit")));
static uint8_t buffer[RESET_COUNT * SECTOR]
    __attribute__((aligned(4096), section(".bss.noinit")));
static uint8_t big_buffer[8192]
    __attribute__((aligned(4096), section(".bss.noinit")));
// Indirect tables the attacks build (2048 entries = 32 KiB).
static struct virtq_desc table[2048]
    __attribute__((aligned(4096), section(".bss.noinit")));
static struct virtq_desc table2[4] __attribute__((aligned(16)));
// A stretch of RAM where a BAR is moved (aligned to the BAR size).
static uint8_t ram_window[0x8000]
    __attribute__((aligned(0x8000), section(".bss.noinit")));
static volatile uint32_t msi_target[4] __attribute__((aligned(16)));

struct request {
  struct {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
  } header;
  struct {
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags;
  } segment;
  volatile uint8_t status;
};
static struct request requests[RESET_COUNT];

static uint32_t checks, failures;

static void check(bool ok, const char* fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void check(bool ok, const char* fmt, ...) {
  ++checks;
  va_list args;
  va_start(args, fmt);
  console_puts("evil: check ");
  console_vprintf(fmt, args);
  va_end(args);
  if (ok) {
    console_puts(": ok\n");
  } else {
    ++failures;
    console_puts(": FAIL\n");
  }
}

static __attribute__((noreturn)) void bad_cmdline(const char* what) {
  console_printf("evil: FAIL: bad command line: %s\n", what);
  guest_debug_exit(EXIT_BAD_CMDLINE);
}

// --- Discovery --------------------------------------------------------------

static bool take_pci(struct disk* d, uint16_t bdf) {
  const char* why = "";
  if (!virtio_pci_probe(&d->pci, bdf, &why)) {
    console_printf("evil: pci %02x:%02x.%u: %s\n", PCI_BUS(bdf), PCI_DEV(bdf),
                   PCI_FN(bdf), why);
    return false;
  }
  d->dev = &d->pci.vdev;
  d->is_pci = true;
  return true;
}

static void find_disks(bool victim_on_pci) {
  static struct pci_function functions[32];
  pci_select(PCI_ACCESS_ECAM, ECAM_BASE);
  uint32_t n = pci_enumerate(PCI_ACCESS_ECAM, 1, functions, 32);
  for (uint32_t i = 0; i < n; ++i) {
    if (functions[i].vendor != VIRTIO_PCI_VENDOR ||
        functions[i].device != VIRTIO_PCI_MODERN_DEVICE_BASE + VIRTIO_ID_BLOCK) {
      continue;
    }
    if (victim_on_pci && victim.dev == 0) {
      take_pci(&victim, functions[i].bdf);
    } else if (good.dev == 0) {
      take_pci(&good, functions[i].bdf);
    }
  }
  for (uint32_t slot = 0; slot < MMIO_SLOTS; ++slot) {
    struct disk* d = !victim_on_pci && victim.dev == 0 ? &victim
                     : good.dev == 0                   ? &good
                                                       : 0;
    if (d == 0) break;
    const char* why = "";
    if (virtio_mmio_probe(&d->mmio, MMIO_BASE + slot * MMIO_STRIDE, slot,
                          MMIO_GSI + slot, &why) != VIRTIO_MMIO_FOUND ||
        d->mmio.vdev.device_type != VIRTIO_ID_BLOCK) {
      continue;
    }
    d->dev = &d->mmio.vdev;
    d->is_pci = false;
  }
  if (victim.dev == 0 || good.dev == 0) {
    console_printf("evil: FAIL: need a victim disk on %s and a second disk\n",
                   victim_on_pci ? "pci" : "mmio");
    guest_debug_exit(EXIT_NO_DISKS);
  }
  victim.name = "victim";
  good.name = "good";
  struct disk* both[2] = {&victim, &good};
  for (int i = 0; i < 2; ++i) {
    struct virtio_dev* dev = both[i]->dev;
    dev->irq_mode = VIRTIO_IRQ_POLL;
    dev->vector = (uint8_t)(IRQ_DEVICE_VECTOR_BASE + i);
    dev->apic_id = 0;
    dev->timeout_ms = 2000;
    dev->irq_count = 0;
    for (int k = 0; k < 8; ++k) dev->location[k] = 0;
  }
}

// --- Driver helpers -----------------------------------------------------------

static const struct virtio_blk_options kDefaultOptions = {
    .indirect = true,
    .event_idx = true,
    .discard = true,
    .write_zeroes = true,
    .queue_size = SMALL_QUEUE,
};

static bool init_disk(struct disk* d, const struct virtio_blk_options* options) {
  const char* why = "";
  bool ok = virtio_blk_init(&d->blk, d->dev, options, &why);
  if (!ok) console_printf("evil: %s: init: %s\n", d->name, why);
  return ok;
}

static uint8_t status_of(struct disk* d) { return d->dev->ops->get_status(d->dev); }

static uint16_t used_idx(const struct virtq* vq) {
  return ((const volatile uint16_t*)vq->used)[1];
}

// Waits (bounded, ~0.5 s) until the device shows DEVICE_NEEDS_RESET.
static bool wait_needs_reset(struct disk* d) {
  for (uint32_t i = 0; i < 100000; ++i) {
    if (status_of(d) & VIRTIO_STATUS_NEEDS_RESET) return true;
    cpu_relax();
  }
  return false;
}

// Gives the device time to act on a notify it should ignore.
static void settle(void) {
  for (uint32_t i = 0; i < 20000; ++i) cpu_relax();
}

// Places `head` in the next avail slot, publishes it and notifies.
static void raw_publish(struct virtq* vq, uint16_t head) {
  vq->avail[2 + (vq->avail_idx & (vq->size - 1))] = head;
  vq->avail_idx = (uint16_t)(vq->avail_idx + 1);
  compiler_barrier();
  vq->avail[1] = vq->avail_idx;
  vq->avail_kicked = vq->avail_idx;
  memory_barrier();
  vq->dev->ops->notify(vq->dev, vq->index);
}

static void set_desc(struct virtq_desc* d, const volatile void* addr,
                     uint32_t len, uint16_t flags, uint16_t next) {
  d->addr = (uint64_t)(uintptr_t)addr;
  d->len = len;
  d->flags = flags;
  d->next = next;
}

static struct request* prepare(uint32_t i, uint32_t type, uint64_t sector) {
  struct request* r = &requests[i];
  r->header.type = type;
  r->header.reserved = 0;
  r->header.sector = sector;
  r->status = 0xff;
  return r;
}

// Runs one well-formed request: header, `len` bytes of data at `data` (none
// when len is 0), a DISCARD/WRITE_ZEROES segment when `segment`, status.
// False (with the transport's reason printed) when it does not come back.
static bool request(struct disk* d, uint32_t type, uint64_t sector, void* data,
                    uint32_t len, bool segment, uint32_t num_sectors,
                    uint8_t* status, uint32_t* used_len) {
  struct request* r = prepare(0, type, sector);
  r->segment.sector = sector;
  r->segment.num_sectors = num_sectors;
  r->segment.flags = 0;
  struct virtq_buf bufs[4];
  uint32_t n = 0;
  bufs[n++] = (struct virtq_buf){&r->header, sizeof(r->header), false};
  if (len != 0) {
    bool device_writes = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
    bufs[n++] = (struct virtq_buf){data, len, device_writes};
  }
  if (segment) bufs[n++] = (struct virtq_buf){&r->segment, sizeof(r->segment), false};
  bufs[n++] = (struct virtq_buf){(const void*)&r->status, 1, true};
  struct virtq* vq = &d->blk.vq;
  const char* why = "";
  if (!virtq_add(vq, bufs, n, r)) {
    console_printf("evil: %s: no room in the queue\n", d->name);
    return false;
  }
  virtq_kick(vq);
  void* cookie = 0;
  uint32_t len_used = 0;
  if (!virtq_wait(vq, &why) || !virtq_pop_used(vq, &cookie, &len_used, &why)) {
    console_printf("evil: %s: request type %u: %s\n", d->name, type, why);
    return false;
  }
  *status = r->status;
  if (used_len) *used_len = len_used;
  return cookie == r;
}

static void fill_pattern(uint8_t* buf, uint32_t disk, uint32_t gen,
                         uint64_t first, uint32_t count) {
  uint32_t* words = (uint32_t*)buf;
  for (uint32_t s = 0; s < count; ++s) {
    for (uint32_t i = 0; i < BLK_PATTERN_WORDS_PER_SECTOR; ++i) {
      *words++ = blk_pattern_word(disk, gen, first + s, i);
    }
  }
}

static bool sector_is(const uint8_t* buf, uint32_t disk, uint32_t gen,
                      uint64_t sector) {
  const uint32_t* words = (const uint32_t*)buf;
  for (uint32_t i = 0; i < BLK_PATTERN_WORDS_PER_SECTOR; ++i) {
    if (words[i] != blk_pattern_word(disk, gen, sector, i)) return false;
  }
  return true;
}

// Reads `count` sectors from `first` and compares with generation `gen`.
static bool read_and_compare(struct disk* d, uint32_t disk, uint32_t gen,
                             uint64_t first, uint32_t count) {
  memset(buffer, 0, count * SECTOR);
  uint8_t status = 0xff;
  if (!request(d, VIRTIO_BLK_T_IN, first, buffer, count * SECTOR, false, 0,
               &status, 0) ||
      status != VIRTIO_BLK_S_OK) {
    return false;
  }
  for (uint32_t s = 0; s < count; ++s) {
    if (!sector_is(buffer + s * SECTOR, disk, gen, first + s)) return false;
  }
  return true;
}

static bool write_pattern(struct disk* d, uint32_t disk, uint64_t first,
                          uint32_t count) {
  fill_pattern(buffer, disk, GEN_GUEST, first, count);
  uint8_t status = 0xff;
  return request(d, VIRTIO_BLK_T_OUT, first, buffer, count * SECTOR, false, 0,
                 &status, 0) &&
         status == VIRTIO_BLK_S_OK;
}

// --- The attacks --------------------------------------------------------------
//
// Each starts with the victim initialised (kDefaultOptions: queue size 16,
// INDIRECT_DESC and EVENT_IDX negotiated, GET_ID done) unless it says
// otherwise, and may leave the victim in any state: the epilogue resets it.

// A request of three descriptors at ring slots 0..2 whose data descriptor is
// (addr, len, flags); publishes head 0 and expects DEVICE_NEEDS_RESET with
// no used entry and no status written.
static void expect_broken_chain(const char* what, uint32_t type, uint64_t addr,
                                uint32_t len, uint16_t data_flags) {
  struct virtq* vq = &victim.blk.vq;
  struct request* r = prepare(0, type, 0);
  uint16_t used_before = used_idx(vq);
  set_desc(&vq->desc[0], &r->header, sizeof(r->header), VIRTQ_DESC_F_NEXT, 1);
  vq->desc[1].addr = addr;
  vq->desc[1].len = len;
  vq->desc[1].flags = (uint16_t)(data_flags | VIRTQ_DESC_F_NEXT);
  vq->desc[1].next = 2;
  set_desc(&vq->desc[2], &r->status, 1, VIRTQ_DESC_F_WRITE, 0);
  raw_publish(vq, 0);
  check(wait_needs_reset(&victim), "%s: victim sets DEVICE_NEEDS_RESET", what);
  settle();
  check(used_idx(vq) == used_before && r->status == 0xff,
        "%s: no used entry, no status written", what);
}

static void attack_desc_outside_ram(void) {
  // A read whose data buffer lies at 256 GiB (the guest has 64 MiB).
  expect_broken_chain("read into 0x4000000000", VIRTIO_BLK_T_IN,
                      0x4000000000ull, SECTOR, VIRTQ_DESC_F_WRITE);
}

static void attack_desc_mmio_hole(void) {
  // A read whose data buffer is the good disk's register BAR (or its
  // virtio-mmio window): the device must not write device registers.
  uint64_t target = good.is_pci ? good.pci.common : good.mmio.base;
  expect_broken_chain("read into the other disk's registers", VIRTIO_BLK_T_IN,
                      target, SECTOR, VIRTQ_DESC_F_WRITE);
  check((good.dev->ops->device_features(good.dev) & VIRTIO_F_VERSION_1) != 0 &&
            (status_of(&good) & VIRTIO_STATUS_DRIVER_OK) != 0,
        "the good disk's registers are intact");
}

static void attack_len_wrap(void) {
  // A write whose data buffer wraps the 64-bit address space.
  expect_broken_chain("write from 0xfffffffffffff000 +0x2000", VIRTIO_BLK_T_OUT,
                      0xfffffffffffff000ull, 0x2000, 0);
}

static void attack_desc_loop(void) {
  // A write: header -> data 1 -> data 2 -> data 1 -> ...
  struct virtq* vq = &victim.blk.vq;
  struct request* r = prepare(0, VIRTIO_BLK_T_OUT, 0);
  fill_pattern(buffer, VICTIM_PATTERN, GEN_GUEST, 0, 2);
  uint16_t used_before = used_idx(vq);
  set_desc(&vq->desc[0], &r->header, sizeof(r->header), VIRTQ_DESC_F_NEXT, 1);
  set_desc(&vq->desc[1], buffer, SECTOR, VIRTQ_DESC_F_NEXT, 2);
  set_desc(&vq->desc[2], buffer + SECTOR, SECTOR, VIRTQ_DESC_F_NEXT, 1);
  raw_publish(vq, 0);
  check(wait_needs_reset(&victim), "descriptor loop: victim sets DEVICE_NEEDS_RESET");
  settle();
  check(used_idx(vq) == used_before, "descriptor loop: no used entry");
}

static void attack_chain_too_long(void) {
  // An indirect table of 2048 linked descriptors (no loop): longer than the
  // queue (16) and than any indirect table the device accepts (1024).
  struct virtq* vq = &victim.blk.vq;
  struct request* r = prepare(0, VIRTIO_BLK_T_OUT, 0);
  uint16_t used_before = used_idx(vq);
  set_desc(&table[0], &r->header, sizeof(r->header), VIRTQ_DESC_F_NEXT, 1);
  for (uint16_t i = 1; i < 2047; ++i) {
    set_desc(&table[i], buffer, 4, VIRTQ_DESC_F_NEXT, (uint16_t)(i + 1));
  }
  set_desc(&table[2047], &r->status, 1, VIRTQ_DESC_F_WRITE, 0);
  set_desc(&vq->desc[0], table, sizeof(table), VIRTQ_DESC_F_INDIRECT, 0);
  raw_publish(vq, 0);
  check(wait_needs_reset(&victim),
        "2048-descriptor chain: victim sets DEVICE_NEEDS_RESET");
  settle();
  check(used_idx(vq) == used_before && r->status == 0xff,
        "2048-descriptor chain: no used entry, no status written");

  // A direct chain through all 16 ring descriptors and on into the head
  // again: 17 descriptors and counting, after a reset.
  const char* why = "";
  if (!virtio_reset(victim.dev, &why) || !init_disk(&victim, &kDefaultOptions)) {
    check(false, "victim re-initialised for the direct chain");
    return;
  }
  used_before = used_idx(vq);
  r = prepare(0, VIRTIO_BLK_T_OUT, 0);
  set_desc(&vq->desc[0], &r->header, sizeof(r->header), VIRTQ_DESC_F_NEXT, 1);
  for (uint16_t i = 1; i < SMALL_QUEUE; ++i) {
    set_desc(&vq->desc[i], buffer, 4, VIRTQ_DESC_F_NEXT,
             (uint16_t)((i + 1) % SMALL_QUEUE));
  }
  raw_publish(vq, 0);
  check(wait_needs_reset(&victim),
        "chain longer than the queue: victim sets DEVICE_NEEDS_RESET");
  settle();
  check(used_idx(vq) == used_before, "chain longer than the queue: no used entry");
}

static void attack_nested_indirect(void) {
  struct virtq* vq = &victim.blk.vq;
  struct request* r = prepare(0, VIRTIO_BLK_T_IN, 0);
  uint16_t used_before = used_idx(vq);
  set_desc(&table2[0], &r->header, sizeof(r->header), VIRTQ_DESC_F_NEXT, 1);
  set_desc(&table2[1], buffer, SECTOR, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
  set_desc(&table2[2], &r->status, 1, VIRTQ_DESC_F_WRITE, 0);
  // table[0] names table2 as another indirect table.
  set_desc(&table[0], table2, 3 * sizeof(struct virtq_desc),
           VIRTQ_DESC_F_INDIRECT, 0);
  set_desc(&vq->desc[0], table, sizeof(struct virtq_desc), VIRTQ_DESC_F_INDIRECT, 0);
  memset(buffer, 0x5a, SECTOR);
  raw_publish(vq, 0);
  check(wait_needs_reset(&victim), "nested indirect table: victim sets DEVICE_NEEDS_RESET");
  settle();
  bool untouched = true;
  for (uint32_t i = 0; i < SECTOR; ++i) untouched &= buffer[i] == 0x5a;
  check(used_idx(vq) == used_before && r->status == 0xff && untouched,
        "nested indirect table: no used entry, nothing written");
}

static void attack_avail_jump(void) {
  // Valid writes in every slot, but the avail index jumps by 1000.
  struct virtq* vq = &victim.blk.vq;
  fill_pattern(buffer, VICTIM_PATTERN, GEN_GUEST, 0, 1);
  uint16_t used_before = used_idx(vq);
  for (uint16_t i = 0; i < 5; ++i) {
    struct request* r = prepare(i, VIRTIO_BLK_T_OUT, i);
    set_desc(&vq->desc[3 * i], &r->header, sizeof(r->header), VIRTQ_DESC_F_NEXT,
             (uint16_t)(3 * i + 1));
    set_desc(&vq->desc[3 * i + 1], buffer, SECTOR, VIRTQ_DESC_F_NEXT,
             (uint16_t)(3 * i + 2));
    set_desc(&vq->desc[3 * i + 2], &r->status, 1, VIRTQ_DESC_F_WRITE, 0);
  }
  for (uint16_t slot = 0; slot < vq->size; ++slot) {
    vq->avail[2 + slot] = (uint16_t)(3 * (slot % 5));
  }
  compiler_barrier();
  vq->avail[1] = (uint16_t)(vq->avail_idx + 1000);
  memory_barrier();
  vq->dev->ops->notify(vq->dev, 0);
  check(wait_needs_reset(&victim), "avail index +1000: victim sets DEVICE_NEEDS_RESET");
  settle();
  check(used_idx(vq) == used_before && requests[0].status == 0xff,
        "avail index +1000: no used entry, no status written");
}

static void attack_avail_head_out_of_range(void) {
  struct virtq* vq = &victim.blk.vq;
  uint16_t used_before = used_idx(vq);
  raw_publish(vq, 300);  // the queue has 16 descriptors
  check(wait_needs_reset(&victim), "avail entry names head 300: victim sets DEVICE_NEEDS_RESET");
  settle();
  check(used_idx(vq) == used_before, "avail entry names head 300: no used entry");
}

static void attack_readable_after_writable(void) {
  // A read whose status byte comes before a device-readable descriptor.
  struct virtq* vq = &victim.blk.vq;
  struct request* r = prepare(0, VIRTIO_BLK_T_IN, 0);
  uint16_t used_before = used_idx(vq);
  set_desc(&vq->desc[0], &r->header, sizeof(r->header), VIRTQ_DESC_F_NEXT, 1);
  set_desc(&vq->desc[1], buffer, SECTOR, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
  set_desc(&vq->desc[2], &r->segment, sizeof(r->segment), VIRTQ_DESC_F_NEXT, 3);
  set_desc(&vq->desc[3], &r->status, 1, VIRTQ_DESC_F_WRITE, 0);
  raw_publish(vq, 0);
  check(wait_needs_reset(&victim),
        "readable after writable: victim sets DEVICE_NEEDS_RESET");
  settle();
  check(used_idx(vq) == used_before && r->status == 0xff,
        "readable after writable: no used entry, no status written");
}

// Negotiates `features` (& offered) on the victim without setting up a queue.
static bool negotiate_only(uint64_t features) {
  const char* why = "";
  if (!virtio_negotiate(victim.dev, features, &why)) {
    console_printf("evil: victim: negotiate: %s\n", why);
    return false;
  }
  return true;
}

static void attack_qsize_not_pow2(void) {
  struct virtq* vq = &victim.blk.vq;
  const char* why = "";
  check(negotiate_only(VIRTIO_F_VERSION_1), "victim negotiated");
  bool enabled = victim.dev->ops->queue_enable(
      victim.dev, 0, 100, (uint64_t)(uintptr_t)vq->desc,
      (uint64_t)(uintptr_t)vq->avail, (uint64_t)(uintptr_t)vq->used, &why);
  check(!enabled, "queue size 100: queue_enable refused");
  check(wait_needs_reset(&victim), "queue size 100: victim sets DEVICE_NEEDS_RESET");
}

static void attack_queue_outside_ram(void) {
  struct virtq* vq = &victim.blk.vq;
  const char* why = "";
  check(negotiate_only(VIRTIO_F_VERSION_1), "victim negotiated");
  bool enabled = victim.dev->ops->queue_enable(
      victim.dev, 0, SMALL_QUEUE, 0x10000000000ull, (uint64_t)(uintptr_t)vq->avail,
      (uint64_t)(uintptr_t)vq->used, &why);
  check(!enabled, "descriptor table at 1 TiB: queue_enable refused");
  check(wait_needs_reset(&victim),
        "descriptor table at 1 TiB: victim sets DEVICE_NEEDS_RESET");

  // The used ring (which the device writes) in the MMIO hole, on the ECAM
  // window.
  if (!virtio_reset(victim.dev, &why)) check(false, "victim reset: %s", why);
  check(negotiate_only(VIRTIO_F_VERSION_1), "victim negotiated again");
  enabled = victim.dev->ops->queue_enable(
      victim.dev, 0, SMALL_QUEUE, (uint64_t)(uintptr_t)vq->desc,
      (uint64_t)(uintptr_t)vq->avail, ECAM_BASE, &why);
  check(!enabled, "used ring on the ECAM window: queue_enable refused");
  check(wait_needs_reset(&victim),
        "used ring on the ECAM window: victim sets DEVICE_NEEDS_RESET");
  check(pci_read16(PCI_BDF(0, 0, 0), PCI_VENDOR_ID) != 0xffff,
        "ECAM still answers (host bridge present)");
}

// A write request in ring slots 0..2 (not published).
static void build_write(struct virtq* vq) {
  struct request* r = prepare(0, VIRTIO_BLK_T_OUT, 0);
  fill_pattern(buffer, VICTIM_PATTERN, GEN_GUEST, 0, 1);
  set_desc(&vq->desc[0], &r->header, sizeof(r->header), VIRTQ_DESC_F_NEXT, 1);
  set_desc(&vq->desc[1], buffer, SECTOR, VIRTQ_DESC_F_NEXT, 2);
  set_desc(&vq->desc[2], &r->status, 1, VIRTQ_DESC_F_WRITE, 0);
}

// Resets the driver side of the victim's ring (no device involved).
static void clear_ring(struct virtq* vq) {
  vq->size = SMALL_QUEUE;
  vq->index = 0;
  vq->dev = victim.dev;
  vq->avail_idx = 0;
  vq->avail[0] = 0;
  vq->avail[1] = 0;
  vq->used[0] = 0;
}

static void attack_enable_before_features_ok(void) {
  struct virtq* vq = &victim.blk.vq;
  const char* why = "";
  if (!virtio_reset(victim.dev, &why)) check(false, "victim reset: %s", why);
  victim.dev->ops->set_status(victim.dev, VIRTIO_STATUS_ACKNOWLEDGE);
  victim.dev->ops->set_status(victim.dev,
                              VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
  clear_ring(vq);
  bool enabled = victim.dev->ops->queue_enable(
      victim.dev, 0, SMALL_QUEUE, (uint64_t)(uintptr_t)vq->desc,
      (uint64_t)(uintptr_t)vq->avail, (uint64_t)(uintptr_t)vq->used, &why);
  check(!enabled, "queue_enable before FEATURES_OK: refused");
  // Finish the handshake and kick the queue that never became ready.
  victim.dev->ops->set_driver_features(victim.dev, VIRTIO_F_VERSION_1);
  victim.dev->ops->set_status(victim.dev, VIRTIO_STATUS_ACKNOWLEDGE |
                                              VIRTIO_STATUS_DRIVER |
                                              VIRTIO_STATUS_FEATURES_OK);
  victim.dev->ops->set_status(
      victim.dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                      VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
  build_write(vq);
  raw_publish(vq, 0);
  settle();
  check(used_idx(vq) == 0 && requests[0].status == 0xff,
        "kick of the refused queue: ignored (no used entry, no status)");
}

static void attack_notify_unready(void) {
  struct virtq* vq = &victim.blk.vq;
  check(negotiate_only(VIRTIO_F_VERSION_1), "victim negotiated");
  clear_ring(vq);
  build_write(vq);
  // Kick before the queue is enabled and before DRIVER_OK.
  raw_publish(vq, 0);
  // A notify for queues the device does not have.
  if (victim.is_pci) {
    mmio_write16(victim.pci.notify + 4 * 5, 5);
    mmio_write16(victim.pci.notify + victim.pci.notify_length, 0);
  } else {
    mmio_write32(victim.mmio.base + MMIO_REG_QUEUE_NOTIFY, 5);
    mmio_write32(victim.mmio.base + MMIO_REG_QUEUE_NOTIFY, 0xffffffffu);
  }
  settle();
  check(used_idx(vq) == 0 && requests[0].status == 0xff,
        "kick before the queue is ready: ignored");
  // DRIVER_OK with the queue still disabled, kick again.
  uint8_t s = status_of(&victim);
  victim.dev->ops->set_status(victim.dev, (uint8_t)(s | VIRTIO_STATUS_DRIVER_OK));
  raw_publish(vq, 0);
  settle();
  check(used_idx(vq) == 0 && requests[0].status == 0xff,
        "kick of a disabled queue after DRIVER_OK: ignored");
  // Enabling after DRIVER_OK is too late.
  const char* why = "";
  bool enabled = victim.dev->ops->queue_enable(
      victim.dev, 0, SMALL_QUEUE, (uint64_t)(uintptr_t)vq->desc,
      (uint64_t)(uintptr_t)vq->avail, (uint64_t)(uintptr_t)vq->used, &why);
  check(!enabled, "queue_enable after DRIVER_OK: refused");
  raw_publish(vq, 0);
  settle();
  check(used_idx(vq) == 0 && requests[0].status == 0xff,
        "kick after the refused enable: ignored");
}

static void attack_features_after_ok(void) {
  struct virtq* vq = &victim.blk.vq;
  const char* why = "";
  // Negotiate without INDIRECT_DESC, then claim it after FEATURES_OK.
  check(negotiate_only(VIRTIO_F_VERSION_1 | VIRTIO_F_EVENT_IDX),
        "victim negotiated without INDIRECT_DESC");
  uint64_t negotiated = victim.dev->negotiated;
  victim.dev->ops->set_driver_features(
      victim.dev, negotiated | VIRTIO_F_INDIRECT_DESC | (1ull << 60));
  if (victim.is_pci) {
    mmio_write32(victim.pci.common + COMMON_DRIVER_FEATURE_SELECT, 0);
    uint32_t low = mmio_read32(victim.pci.common + COMMON_DRIVER_FEATURE);
    mmio_write32(victim.pci.common + COMMON_DRIVER_FEATURE_SELECT, 1);
    uint32_t high = mmio_read32(victim.pci.common + COMMON_DRIVER_FEATURE);
    check(((uint64_t)high << 32 | low) == negotiated,
          "driver_feature after FEATURES_OK: still the negotiated set");
  }
  // Clearing FEATURES_OK does not un-negotiate either.
  victim.dev->ops->set_status(victim.dev,
                              VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
  check((status_of(&victim) & VIRTIO_STATUS_FEATURES_OK) != 0,
        "status without FEATURES_OK: the bit stays set");
  if (!virtq_init(vq, victim.dev, 0, SMALL_QUEUE, false, &why) ||
      !virtio_driver_ok(victim.dev, &why)) {
    check(false, "victim queue set up: %s", why);
    return;
  }
  // An indirect descriptor: the device must treat it as not negotiated.
  struct request* r = prepare(0, VIRTIO_BLK_T_IN, 0);
  uint16_t used_before = used_idx(vq);
  set_desc(&table[0], &r->header, sizeof(r->header), VIRTQ_DESC_F_NEXT, 1);
  set_desc(&table[1], buffer, SECTOR, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
  set_desc(&table[2], &r->status, 1, VIRTQ_DESC_F_WRITE, 0);
  set_desc(&vq->desc[0], table, 3 * sizeof(struct virtq_desc), VIRTQ_DESC_F_INDIRECT, 0);
  raw_publish(vq, 0);
  check(wait_needs_reset(&victim),
        "indirect descriptor without INDIRECT_DESC: victim sets DEVICE_NEEDS_RESET");
  settle();
  check(used_idx(vq) == used_before && r->status == 0xff,
        "indirect descriptor without INDIRECT_DESC: no used entry");
}

static void attack_queue_regs_while_live(void) {
  // The queue is live: moving its rings must be ignored.
  struct virtq* vq = &victim.blk.vq;
  if (victim.is_pci) {
    mmio_write16(victim.pci.common + COMMON_QUEUE_SELECT, 0);
    mmio_write32(victim.pci.common + COMMON_QUEUE_DESC, 0x1000);
    check(mmio_read32(victim.pci.common + COMMON_QUEUE_DESC) ==
              (uint32_t)(uintptr_t)vq->desc,
          "queue_desc of a live queue: write refused");
  } else {
    mmio_write32(victim.mmio.base + MMIO_REG_QUEUE_SEL, 0);
    mmio_write32(victim.mmio.base + MMIO_REG_QUEUE_DESC_LOW, 0x1000);
  }
  check(read_and_compare(&victim, VICTIM_PATTERN, GEN_HOST, 0, 2),
        "victim still reads from the rings it was given");
}

static void attack_reset_mid_io(void) {
  // 32 single-sector writes in flight, then a reset without waiting.
  struct virtq* vq = &victim.blk.vq;
  static uint8_t data[RESET_COUNT][SECTOR]
      __attribute__((aligned(512), section(".bss.noinit")));
  uint32_t queued = 0;
  for (uint32_t i = 0; i < RESET_COUNT && virtq_has_room(vq, 3); ++i) {
    fill_pattern(data[i], VICTIM_PATTERN, GEN_GUEST, RESET_FIRST + i, 1);
    struct request* r = prepare(i, VIRTIO_BLK_T_OUT, RESET_FIRST + i);
    struct virtq_buf bufs[3] = {
        {&r->header, sizeof(r->header), false},
        {data[i], SECTOR, false},
        {(const void*)&r->status, 1, true},
    };
    if (!virtq_add(vq, bufs, 3, r)) break;
    ++queued;
  }
  virtq_kick(vq);
  victim.dev->ops->set_status(victim.dev, 0);
  uint16_t used_at_reset = used_idx(vq);
  check(status_of(&victim) == 0, "reset with %u writes in flight: status reads 0", queued);
  // After the reset the device must leave the old rings alone.
  vq->used[0] = 0xabcd0000u;
  settle();
  check(vq->used[0] == 0xabcd0000u, "old used ring untouched after reset (%u used at reset)",
        used_at_reset);
  if (!init_disk(&victim, &kDefaultOptions)) {
    check(false, "victim re-initialised");
    return;
  }
  // Each sector holds the old or the new data, whole.
  bool whole = true;
  memset(buffer, 0, sizeof(buffer));
  uint8_t status = 0xff;
  if (!request(&victim, VIRTIO_BLK_T_IN, RESET_FIRST, buffer, RESET_COUNT * SECTOR,
               false, 0, &status, 0) ||
      status != VIRTIO_BLK_S_OK) {
    whole = false;
  }
  uint32_t landed = 0;
  for (uint32_t s = 0; whole && s < RESET_COUNT; ++s) {
    const uint8_t* b = buffer + s * SECTOR;
    if (sector_is(b, VICTIM_PATTERN, GEN_GUEST, RESET_FIRST + s)) {
      ++landed;
    } else if (!sector_is(b, VICTIM_PATTERN, GEN_HOST, RESET_FIRST + s)) {
      whole = false;
    }
  }
  check(whole, "every sector is wholly old or wholly new (%u of %u writes landed)",
        landed, queued);
}

// --- Transport-level register attacks ---

static void attack_status_storm(void) {
  // 1500 pseudo-random status bytes: the latch order must hold throughout,
  // and DEVICE_NEEDS_RESET is never the driver's to set.
  uint32_t x = 0x12345678u;
  bool order_ok = true, no_forged_reset = true;
  for (uint32_t i = 0; i < 1500; ++i) {
    x = x * 1103515245u + 12345u;
    uint8_t value = (uint8_t)(x >> 16);
    if ((x >> 28) == 0) value = 0;  // a reset now and then
    victim.dev->ops->set_status(victim.dev, value);
    uint8_t s = status_of(&victim);
    if ((s & VIRTIO_STATUS_DRIVER) && !(s & VIRTIO_STATUS_ACKNOWLEDGE)) order_ok = false;
    if ((s & VIRTIO_STATUS_FEATURES_OK) && !(s & VIRTIO_STATUS_DRIVER)) order_ok = false;
    if ((s & VIRTIO_STATUS_DRIVER_OK) && !(s & VIRTIO_STATUS_FEATURES_OK)) order_ok = false;
    if (s & VIRTIO_STATUS_NEEDS_RESET) no_forged_reset = false;
  }
  check(order_ok, "1500 random status writes: latch order held");
  check(no_forged_reset, "1500 random status writes: NEEDS_RESET never forged");
  // 100 full bring-ups, each torn down by a reset while the queue is live.
  uint32_t ups = 0;
  for (uint32_t i = 0; i < 100; ++i) {
    const char* why = "";
    if (negotiate_only(VIRTIO_F_VERSION_1) &&
        virtq_init(&victim.blk.vq, victim.dev, 0, SMALL_QUEUE, false, &why) &&
        virtio_driver_ok(victim.dev, &why)) {
      ++ups;
    }
    victim.dev->ops->set_status(victim.dev, 0);
  }
  check(ups == 100, "100 bring-up/reset cycles: %u came up", ups);
}

// --- PCI attacks ---

static bool irq_arrived(void* before) {
  return victim.dev->irq_count != *(uint32_t*)before;
}

static void attack_msix_bad_address(void) {
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
  uint32_t irqs_before = victim.dev->irq_count;
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
  check(victim.dev->irq_count == irqs_before && msi_target[0] == 0x600df00du,
        "no interrupt delivered, RAM at the MSI address untouched");
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

static void attack_bar_on_ram(void) {
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

static void attack_bar_on_device(void) {
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

static void attack_pci_readonly_writes(void) {
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

// --- virtio-blk request attacks ---

static void expect_status(const char* what, uint32_t type, uint64_t sector, void* data,
                          uint32_t len, bool segment, uint32_t num, uint8_t want1,
                          uint8_t want2) {
  uint8_t status = 0xff;
  bool done = request(&victim, type, sector, data, len, segment, num, &status, 0);
  check(done && (status == want1 || status == want2), "%s: status %u", what, status);
}

static void attack_blk_sector_overflow(void) {
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

static void attack_blk_write_readonly(void) {
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

static void attack_getid_oversize(void) {
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

struct attack {
  const char* name;
  void (*run)(void);
  bool pci_only;
};

static const struct attack kAttacks[] = {
    {"desc_outside_ram", attack_desc_outside_ram, false},
    {"desc_mmio_hole", attack_desc_mmio_hole, false},
    {"len_wrap", attack_len_wrap, false},
    {"desc_loop", attack_desc_loop, false},
    {"chain_too_long", attack_chain_too_long, false},
    {"nested_indirect", attack_nested_indirect, false},
    {"avail_jump", attack_avail_jump, false},
    {"avail_head_out_of_range", attack_avail_head_out_of_range, false},
    {"readable_after_writable", attack_readable_after_writable, false},
    {"qsize_not_pow2", attack_qsize_not_pow2, false},
    {"queue_outside_ram", attack_queue_outside_ram, false},
    {"enable_before_features_ok", attack_enable_before_features_ok, false},
    {"notify_unready", attack_notify_unready, false},
    {"features_after_ok", attack_features_after_ok, false},
    {"queue_regs_while_live", attack_queue_regs_while_live, false},
    {"reset_mid_io", attack_reset_mid_io, false},
    {"status_storm", attack_status_storm, false},
    {"msix_bad_address", attack_msix_bad_address, true},
    {"bar_on_ram", attack_bar_on_ram, true},
    {"bar_on_device", attack_bar_on_device, true},
    {"pci_readonly_writes", attack_pci_readonly_writes, true},
    {"blk_sector_overflow", attack_blk_sector_overflow, false},
    {"blk_write_readonly", attack_blk_write_readonly, false},
    {"getid_oversize", attack_getid_oversize, false},
};

void guest_main(const struct hvm_start_info* info) {
  const char* cmdline = pvh_cmdline(info);
  console_printf("evil: cmdline: %s\n", cmdline);
  size_t len = 0;
  const char* name = cmdline_find(cmdline, "attack", &len);
  if (name == 0) bad_cmdline("attack=NAME missing");
  const struct attack* attack = 0;
  for (size_t i = 0; i < sizeof(kAttacks) / sizeof(kAttacks[0]); ++i) {
    const char* n = kAttacks[i].name;
    size_t k = 0;
    while (n[k] != '\0' && k < len && n[k] == name[k]) ++k;
    if (n[k] == '\0' && k == len) attack = &kAttacks[i];
  }
  if (attack == 0) bad_cmdline("unknown attack");
  bool victim_on_pci = !cmdline_equals(cmdline, "victim", "mmio");
  if (attack->pci_only && !victim_on_pci) bad_cmdline("this attack needs victim=pci");

  memset(&victim, 0, sizeof(victim));
  memset(&good, 0, sizeof(good));
  find_disks(victim_on_pci);

  // Both disks up; the good one does some work before the attack.
  check(init_disk(&good, &kDefaultOptions), "good disk initialised (%s)", good.dev->transport);
  check(init_disk(&victim, &kDefaultOptions), "victim initialised (%s)",
        victim.dev->transport);
  check(memcmp(victim.blk.serial, "victim", 7) == 0 && memcmp(good.blk.serial, "good", 5) == 0,
        "serials: victim \"%s\", good \"%s\"", victim.blk.serial, good.blk.serial);
  check(write_pattern(&good, GOOD_PATTERN, GOOD_FIRST, GOOD_COUNT / 2),
        "good disk: write before the attack");

  console_printf("evil: attack %s on the %s victim\n", attack->name, victim.dev->transport);
  attack->run();

  // The good disk never noticed.
  check((status_of(&good) & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)) == 0 &&
            (status_of(&good) & VIRTIO_STATUS_DRIVER_OK) != 0,
        "good disk status untouched");
  check(write_pattern(&good, GOOD_PATTERN, GOOD_FIRST + GOOD_COUNT / 2, GOOD_COUNT / 2),
        "good disk: write after the attack");
  uint8_t status = 0xff;
  check(request(&good, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, 0, &status, 0) &&
            status == VIRTIO_BLK_S_OK,
        "good disk: flush");
  check(read_and_compare(&good, GOOD_PATTERN, GEN_HOST, 0, GOOD_FIRST) &&
            read_and_compare(&good, GOOD_PATTERN, GEN_GUEST, GOOD_FIRST, GOOD_COUNT),
        "good disk: reads back the host's and its own data");

  // The victim recovers through a reset.
  const char* why = "";
  victim.dev->irq_mode = VIRTIO_IRQ_POLL;
  check(virtio_reset(victim.dev, &why), "victim reset reads back 0");
  check(init_disk(&victim, &kDefaultOptions) &&
            read_and_compare(&victim, VICTIM_PATTERN, GEN_HOST, 0, 4),
        "victim serves again after the reset");
  virtio_reset(victim.dev, &why);

  uint8_t vector = 0;
  uint32_t unexpected = irq_unexpected(&vector);
  check(unexpected == 0, "no interrupts on unexpected vectors (%u)", unexpected);
  if (failures != 0) {
    console_printf("evil: %s: %u of %u checks FAILED\n", attack->name, failures, checks);
    guest_debug_exit(GUEST_EXIT_FAILURE);
  }
  console_printf("evil: %s: all %u checks ok\n", attack->name, checks);
  guest_debug_exit(0);
}
