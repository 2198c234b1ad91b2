// evil.elf's attacks on the virtqueue and the virtio transport: broken
// descriptor chains and rings (DEVICE_NEEDS_RESET, no used entry), queue
// and status register writes out of order (refused), a reset mid-I/O and a
// status storm.
#include "blk_pattern.h"
#include "evil.h"
#include "runtime/console.h"
#include "runtime/io.h"
#include "runtime/mp_table.h"
#include "runtime/paging.h"
#include "runtime/pci.h"
#include "runtime/smp.h"
#include "runtime/string.h"

static struct virtq_desc table2[4] __attribute__((aligned(16)));

void attack_desc_outside_ram(void) {
  // A read whose data buffer lies at 256 GiB (the guest has 64 MiB).
  expect_broken_chain("read into 0x4000000000", VIRTIO_BLK_T_IN,
                      0x4000000000ull, SECTOR, VIRTQ_DESC_F_WRITE);
}

void attack_desc_mmio_hole(void) {
  // A read whose data buffer is the good disk's register BAR (or its
  // virtio-mmio window): the device must not write device registers.
  uint64_t target = good.is_pci ? good.pci.common : good.mmio.base;
  expect_broken_chain("read into the other disk's registers", VIRTIO_BLK_T_IN,
                      target, SECTOR, VIRTQ_DESC_F_WRITE);
  check((good.dev->ops->device_features(good.dev) & VIRTIO_F_VERSION_1) != 0 &&
            (status_of(&good) & VIRTIO_STATUS_DRIVER_OK) != 0,
        "the good disk's registers are intact");
}

void attack_len_wrap(void) {
  // A write whose data buffer wraps the 64-bit address space.
  expect_broken_chain("write from 0xfffffffffffff000 +0x2000", VIRTIO_BLK_T_OUT,
                      0xfffffffffffff000ull, 0x2000, 0);
}

void attack_desc_loop(void) {
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

void attack_chain_too_long(void) {
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

void attack_nested_indirect(void) {
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

void attack_avail_jump(void) {
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

void attack_avail_head_out_of_range(void) {
  struct virtq* vq = &victim.blk.vq;
  uint16_t used_before = used_idx(vq);
  raw_publish(vq, 300);  // the queue has 16 descriptors
  check(wait_needs_reset(&victim), "avail entry names head 300: victim sets DEVICE_NEEDS_RESET");
  settle();
  check(used_idx(vq) == used_before, "avail entry names head 300: no used entry");
}

void attack_readable_after_writable(void) {
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

void attack_qsize_not_pow2(void) {
  struct virtq* vq = &victim.blk.vq;
  const char* why = "";
  check(negotiate_only(VIRTIO_F_VERSION_1), "victim negotiated");
  bool enabled = victim.dev->ops->queue_enable(
      victim.dev, 0, 100, (uint64_t)(uintptr_t)vq->desc,
      (uint64_t)(uintptr_t)vq->avail, (uint64_t)(uintptr_t)vq->used, &why);
  check(!enabled, "queue size 100: queue_enable refused");
  check(wait_needs_reset(&victim), "queue size 100: victim sets DEVICE_NEEDS_RESET");
}

void attack_queue_outside_ram(void) {
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

void attack_enable_before_features_ok(void) {
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

void attack_notify_unready(void) {
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

void attack_features_after_ok(void) {
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

void attack_queue_regs_while_live(void) {
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

void attack_reset_mid_io(void) {
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

void attack_status_storm(void) {
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

// --- Two CPUs: resets racing the device's queue processing ---

#define RACE_ROUNDS 150
static volatile uint32_t race_go, race_done, race_bringups;

// On the AP: reset and bring the victim up again, over and over, on the
// rings the BSP keeps kicking.
static void race_resetter(void) {
  while (!race_go) cpu_relax();
  struct virtq* vq = &victim.blk.vq;
  struct virtio_dev* dev = victim.dev;
  for (uint32_t i = 0; i < RACE_ROUNDS; ++i) {
    dev->ops->set_status(dev, 0);
    dev->ops->set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE);
    dev->ops->set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    dev->ops->set_driver_features(dev, VIRTIO_F_VERSION_1);
    uint8_t s = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK;
    dev->ops->set_status(dev, s);
    const char* why = "";
    if (dev->ops->queue_enable(dev, 0, SMALL_QUEUE, (uint64_t)(uintptr_t)vq->desc,
                               (uint64_t)(uintptr_t)vq->avail, (uint64_t)(uintptr_t)vq->used,
                               &why)) {
      dev->ops->set_status(dev, (uint8_t)(s | VIRTIO_STATUS_DRIVER_OK));
      race_bringups = race_bringups + 1;
    }
    for (uint32_t k = 0; k < 200 + (i % 7) * 100; ++k) cpu_relax();
  }
  race_done = 1;
}

void attack_reset_race(void) {
  struct mp_info mp;
  const char* why = "";
  if (!mp_find_cpus(&mp, &why) || mp.cpu_count < 2) {
    check(false, "two CPUs (%s)", why);
    return;
  }
  // Fixed ring contents: four writes of generation 1 to sectors 32..35 at
  // heads 0, 3, 6, 9, and every avail slot names one of them, so whatever
  // the device pops after any reset is one of these writes.
  struct virtq* vq = &victim.blk.vq;
  static uint8_t data[4][SECTOR] __attribute__((aligned(512), section(".bss.noinit")));
  for (uint16_t i = 0; i < 4; ++i) {
    fill_pattern(data[i], VICTIM_PATTERN, GEN_GUEST, RESET_FIRST + i, 1);
    struct request* r = prepare(i, VIRTIO_BLK_T_OUT, RESET_FIRST + i);
    set_desc(&vq->desc[3 * i], &r->header, sizeof(r->header), VIRTQ_DESC_F_NEXT,
             (uint16_t)(3 * i + 1));
    set_desc(&vq->desc[3 * i + 1], data[i], SECTOR, VIRTQ_DESC_F_NEXT, (uint16_t)(3 * i + 2));
    set_desc(&vq->desc[3 * i + 2], &r->status, 1, VIRTQ_DESC_F_WRITE, 0);
  }
  for (uint16_t slot = 0; slot < SMALL_QUEUE; ++slot) {
    vq->avail[2 + slot] = (uint16_t)(3 * (slot % 4));
  }
  vq->avail[0] = VIRTQ_AVAIL_F_NO_INTERRUPT;
  smp_ap_work = race_resetter;
  uint32_t up = smp_start_aps(&mp);
  check(up >= 2, "%u CPUs up", up);
  if (up < 2) return;
  race_go = 1;
  // Meanwhile: kick with avail indices 0..16 in turn (some the device
  // takes as new chains, some as a jump past the queue size).
  uint32_t kicks = 0;
  while (!race_done && kicks < 200000) {
    vq->avail[1] = (uint16_t)((kicks * 3) % (SMALL_QUEUE + 1));
    memory_barrier();
    victim.dev->ops->notify(victim.dev, 0);
    ++kicks;
    for (uint32_t k = 0; k < 50; ++k) cpu_relax();
  }
  check(race_done, "%u reset/bring-up rounds (%u came up) raced %u kicks", RACE_ROUNDS,
        race_bringups, kicks);
  check(virtio_reset(victim.dev, &why), "victim resets after the race");
}

// --- RAM split around the MMIO hole (run with more than 3 GiB) ---

#define LOW_RAM_END 0xc0000000ull
#define HIGH_RAM_START 0x100000000ull

void attack_desc_straddles_hole(void) {
  const char* why = "";
  // A write whose data runs from the end of low RAM into the hole.
  expect_broken_chain("write from low RAM into the MMIO hole", VIRTIO_BLK_T_OUT,
                      LOW_RAM_END - 0x800, 0x1000, 0);
  if (!virtio_reset(victim.dev, &why) || !init_disk(&victim, &kDefaultOptions)) {
    check(false, "victim re-initialised");
    return;
  }
  // One that runs from the top of the hole into high RAM.
  expect_broken_chain("write from the MMIO hole into high RAM", VIRTIO_BLK_T_OUT,
                      HIGH_RAM_START - 0x800, 0x1000, 0);
  if (!virtio_reset(victim.dev, &why) || !init_disk(&victim, &kDefaultOptions)) {
    check(false, "victim re-initialised");
    return;
  }
  // A read wholly in high RAM is fine.
  if (!paging_map_mmio(HIGH_RAM_START, 0x1000)) {
    check(false, "high RAM mapped");
    return;
  }
  uint8_t* high = (uint8_t*)(uintptr_t)HIGH_RAM_START;
  memset(high, 0, SECTOR);
  uint8_t status = 0xff;
  bool done = request(&victim, VIRTIO_BLK_T_IN, 0, high, SECTOR, false, 0, &status, 0);
  check(done && status == VIRTIO_BLK_S_OK && sector_is(high, VICTIM_PATTERN, GEN_HOST, 0),
        "a read into high RAM at 4 GiB: status %u, data right", status);
}

// --- Two CPUs: a driver that never lets its queue run dry ---

#define FLOOD_QUEUE 256
static volatile uint32_t flood_go, flood_stop, flood_done;
static volatile uint32_t flood_rounds;

// On the AP: keep the victim's avail index 256 ahead of what the device has
// used (never more than the queue size, so never a protocol error), all
// slots naming one cheap request, until told to stop.
static void flooder(void) {
  while (!flood_go) cpu_relax();
  struct virtq* vq = &victim.blk.vq;
  uint32_t rounds = 0;
  while (!flood_stop && rounds < 2000000) {
    vq->avail[1] = (uint16_t)(used_idx(vq) + FLOOD_QUEUE);
    if ((rounds & 255) == 0) victim.dev->ops->notify(victim.dev, 0);
    ++rounds;
  }
  flood_rounds = rounds;
  flood_done = 1;
}

void attack_notify_flood(void) {
  struct mp_info mp;
  const char* why = "";
  if (!mp_find_cpus(&mp, &why) || mp.cpu_count < 2) {
    check(false, "two CPUs (%s)", why);
    return;
  }
  // A queue of 256, so that one refresh of the index is 256 requests.
  struct virtio_blk_options options = kDefaultOptions;
  options.queue_size = FLOOD_QUEUE;
  if (!virtio_reset(victim.dev, &why) || !init_disk(&victim, &options)) {
    check(false, "victim re-initialised with a queue of %u", FLOOD_QUEUE);
    return;
  }
  // Head 0: a request of an unknown type (answered UNSUPP, no disk I/O).
  struct virtq* vq = &victim.blk.vq;
  struct request* r = prepare(0, 0x7fff, 0);
  set_desc(&vq->desc[0], &r->header, sizeof(r->header), VIRTQ_DESC_F_NEXT, 1);
  set_desc(&vq->desc[1], &r->status, 1, VIRTQ_DESC_F_WRITE, 0);
  for (uint16_t slot = 0; slot < FLOOD_QUEUE; ++slot) vq->avail[2 + slot] = 0;
  vq->avail[0] = VIRTQ_AVAIL_F_NO_INTERRUPT;
  smp_ap_work = flooder;
  uint32_t up = smp_start_aps(&mp);
  check(up >= 2, "%u CPUs up", up);
  if (up < 2) return;
  uint16_t used_before = used_idx(vq);
  flood_go = 1;
  for (uint32_t k = 0; k < 20000; ++k) cpu_relax();
  // The good disk must keep serving while the victim's queue never empties.
  bool served = read_and_compare(&good, GOOD_PATTERN, GEN_HOST, 0, 1) &&
                read_and_compare(&good, GOOD_PATTERN, GEN_HOST, 1, 1);
  uint16_t used_during = (uint16_t)(used_idx(vq) - used_before);
  flood_stop = 1;
  for (uint32_t k = 0; k < 1000000 && !flood_done; ++k) cpu_relax();
  check(served, "the good disk served while the victim's queue never ran dry (%u victim "
        "requests meanwhile)", used_during);
  check(flood_done, "the flooding CPU stopped after %u rounds", flood_rounds);
}
