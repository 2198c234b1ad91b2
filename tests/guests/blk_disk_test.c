#include "blk_disk_test.h"

#include "blk_pattern.h"
#include "runtime/console.h"
#include "runtime/irq.h"
#include "runtime/string.h"

#define SECTOR VIRTIO_BLK_SECTOR_SIZE
#define GEN_HOST 0
#define GEN_GUEST 1

// One disk at a time: each device is reset before the next one reuses the
// rings and buffers.
static struct virtio_blk blk __attribute__((section(".bss.noinit")));
static uint8_t read_buffer[BLK_TEST_MAX_SECTORS * SECTOR]
    __attribute__((aligned(4096), section(".bss.noinit")));
static uint8_t write_buffer[BLK_TEST_MAX_SECTORS * SECTOR]
    __attribute__((aligned(4096), section(".bss.noinit")));
static struct virtio_blk_io ios[BLK_TEST_MAX_SECTORS];

static struct virtio_dev* current;  // for messages

static void fill(uint8_t* buf, uint32_t disk, uint32_t gen, uint64_t first,
                 uint32_t count) {
  uint32_t* words = (uint32_t*)buf;
  for (uint32_t s = 0; s < count; ++s) {
    for (uint32_t i = 0; i < BLK_PATTERN_WORDS_PER_SECTOR; ++i) {
      *words++ = blk_pattern_word(disk, gen, first + s, i);
    }
  }
}

// Compares, printing the first difference.
static bool check(const uint8_t* buf, uint32_t disk, uint32_t gen,
                  uint64_t first, uint32_t count, bool zeros) {
  const uint32_t* words = (const uint32_t*)buf;
  for (uint32_t s = 0; s < count; ++s) {
    for (uint32_t i = 0; i < BLK_PATTERN_WORDS_PER_SECTOR; ++i) {
      uint32_t want = zeros ? 0 : blk_pattern_word(disk, gen, first + s, i);
      uint32_t got = *words++;
      if (got != want) {
        console_printf("blk %s %s: sector %lu byte %u: got 0x%08x, want 0x%08x\n",
                       current->transport, current->location,
                       (unsigned long)(first + s), i * 4, got, want);
        return false;
      }
    }
  }
  return true;
}

// Reads [first, first + count) into read_buffer, in two data buffers when
// `split` (a 4-descriptor chain), else one.
static bool read_sectors(uint64_t first, uint32_t count, bool split,
                         const char** why) {
  memset(read_buffer, 0, count * SECTOR);
  struct virtio_blk_io* io = &ios[0];
  memset(io, 0, sizeof(*io));
  io->type = VIRTIO_BLK_T_IN;
  io->sector = first;
  uint32_t first_part = split && count >= 2 ? count / 2 : count;
  io->data[0] = read_buffer;
  io->data_len[0] = first_part * SECTOR;
  io->data_bufs = 1;
  if (first_part < count) {
    io->data[1] = read_buffer + first_part * SECTOR;
    io->data_len[1] = (count - first_part) * SECTOR;
    io->data_bufs = 2;
  }
  if (!virtio_blk_run(&blk, io, 1, why)) return false;
  if (io->status != VIRTIO_BLK_S_OK) {
    *why = "read failed (status not OK)";
    return false;
  }
  return true;
}

// Writes generation-1 data to [first, first + count) as one single-sector
// request each, queued together (the queue wraps when it is small).
static bool write_batch(uint32_t disk, uint64_t first, uint32_t count,
                        const char** why) {
  fill(write_buffer, disk, GEN_GUEST, first, count);
  for (uint32_t i = 0; i < count; ++i) {
    memset(&ios[i], 0, sizeof(ios[i]));
    ios[i].type = VIRTIO_BLK_T_OUT;
    ios[i].sector = first + i;
    ios[i].data[0] = write_buffer + i * SECTOR;
    ios[i].data_len[0] = SECTOR;
    ios[i].data_bufs = 1;
  }
  if (!virtio_blk_run(&blk, ios, count, why)) return false;
  for (uint32_t i = 0; i < count; ++i) {
    if (ios[i].status != VIRTIO_BLK_S_OK) {
      *why = "write failed (status not OK)";
      return false;
    }
  }
  return true;
}

static bool test_read_only(uint64_t sector, const char** why) {
  fill(write_buffer, 0, GEN_GUEST, sector, 1);
  struct virtio_blk_io* io = &ios[0];
  memset(io, 0, sizeof(*io));
  io->type = VIRTIO_BLK_T_OUT;
  io->sector = sector;
  io->data[0] = write_buffer;
  io->data_len[0] = SECTOR;
  io->data_bufs = 1;
  if (!virtio_blk_run(&blk, io, 1, why)) return false;
  if (io->status == VIRTIO_BLK_S_OK) {
    *why = "a write to a read-only disk succeeded";
    return false;
  }
  return true;
}

// Writes data to `sector`, zeroes it with WRITE_ZEROES, reads zeros back.
static bool test_write_zeroes(uint32_t disk, uint64_t sector,
                              const char** why) {
  if (!write_batch(disk, sector, 1, why)) return false;
  if (!virtio_blk_segment_op(&blk, VIRTIO_BLK_T_WRITE_ZEROES, sector, 1, why)) {
    return false;
  }
  if (!read_sectors(sector, 1, false, why)) return false;
  if (!check(read_buffer, disk, GEN_GUEST, sector, 1, true)) {
    *why = "WRITE_ZEROES left data behind";
    return false;
  }
  return true;
}

static bool irq_counted(void* dev) {
  return ((struct virtio_dev*)dev)->irq_count != 0;
}

// When every completion was already in the used ring, the driver never
// halted and the device's interrupts may still be pending at the LAPIC
// (interrupts are off outside waits): give them a moment to arrive.
static bool interrupt_seen(struct virtio_dev* dev) {
  return dev->irq_count != 0 || irq_wait(irq_counted, dev, 100);
}

static bool test_writes(uint32_t disk, uint32_t r, uint32_t w,
                        const char** why);

static bool run(struct virtio_dev* dev, uint32_t disk,
                const struct blk_test_options* o, const char** why) {
  if (!virtio_blk_init(&blk, dev, &o->blk, why)) return false;
  console_printf(
      "blk %s %s: features 0x%lx of 0x%lx, queue %u, irq %s, indirect %u, "
      "event_idx %u, blk_size %u%s\n",
      dev->transport, dev->location, (unsigned long)dev->negotiated,
      (unsigned long)dev->offered, blk.vq.size,
      virtio_irq_mode_name(dev->irq_mode), blk.vq.use_indirect ? 1u : 0u,
      blk.vq.event_idx ? 1u : 0u, blk.blk_size, blk.read_only ? ", ro" : "");
  uint32_t r = o->read_sectors;
  uint32_t w = o->write_sectors;
  if (blk.capacity < (uint64_t)r + w + 2) {
    *why = "capacity is below the sectors the test uses (read + write + 2)";
    return false;
  }
  // Two data buffers make a 4-descriptor chain: only when the device takes
  // two segments and the chain fits (indirect, or a queue of 4 or more).
  bool split = (blk.seg_max == 0 || blk.seg_max >= 2) &&
               (blk.vq.use_indirect || blk.vq.size >= 4);
  if (r > 0) {
    if (!read_sectors(0, r, split, why)) return false;
    if (o->verify && !check(read_buffer, disk, GEN_HOST, 0, r, false)) {
      *why = "sectors differ from the host-written pattern";
      return false;
    }
  }
  if (o->reset) {
    // Mid-run reset: status 0, then the whole initialisation again.
    if (!virtio_reset(dev, why)) return false;
    if (!virtio_blk_init(&blk, dev, &o->blk, why)) return false;
    console_printf("blk %s %s: reset and re-initialised\n", dev->transport,
                   dev->location);
    if (r > 0 && !read_sectors(0, r, false, why)) return false;
    if (r > 0 && o->verify &&
        !check(read_buffer, disk, GEN_HOST, 0, r, false)) {
      *why = "sectors differ from the host-written pattern after reset";
      return false;
    }
  }
  if (blk.read_only) {
    if (!test_read_only(r, why)) return false;
  } else if (!test_writes(disk, r, w, why)) {
    return false;
  }
  uint8_t status = dev->ops->get_status(dev);
  if (status & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)) {
    *why = "device status reports NEEDS_RESET or FAILED";
    return false;
  }
  if (dev->irq_mode != VIRTIO_IRQ_POLL && !interrupt_seen(dev)) {
    *why = "no interrupt arrived";
    return false;
  }
  return true;
}

static bool test_writes(uint32_t disk, uint32_t r, uint32_t w,
                        const char** why) {
  if (w > 0) {
    if (!write_batch(disk, r, w, why)) return false;
    if (blk.has_flush && !virtio_blk_flush(&blk, why)) return false;
    if (!read_sectors(r, w, false, why)) return false;
    if (!check(read_buffer, disk, GEN_GUEST, r, w, false)) {
      *why = "read-back differs from what was written";
      return false;
    }
  }
  if (blk.has_write_zeroes && !test_write_zeroes(disk, r + w, why)) {
    return false;
  }
  if (blk.has_discard &&
      !virtio_blk_segment_op(&blk, VIRTIO_BLK_T_DISCARD, r + w + 1, 1, why)) {
    return false;
  }
  return true;
}

bool blk_test_disk(struct virtio_dev* dev, uint32_t index,
                   const struct blk_test_options* options) {
  current = dev;
  blk.capacity = 0;
  blk.serial[0] = '\0';
  blk.vq.direct_chains = blk.vq.indirect_chains = 0;
  blk.vq.notifications = blk.vq.notifications_suppressed = 0;
  blk.vq.irq_waits = 0;
  dev->irq_count = 0;
  const char* why = "";
  bool ok = run(dev, index, options, &why);
  console_printf(
      "blk %s %s: %u requests, %u notifications, %u suppressed, %u interrupts"
      " (%u waits woken by one)\n",
      dev->transport, dev->location,
      blk.vq.direct_chains + blk.vq.indirect_chains, blk.vq.notifications,
      blk.vq.notifications_suppressed, dev->irq_count, blk.vq.irq_waits);
  const char* reset_why = "";
  if (!virtio_reset(dev, &reset_why) && ok) {
    ok = false;
    why = reset_why;
  }
  const char* serial = blk.serial[0] != '\0' ? blk.serial : "-";
  if (ok) {
    console_printf("blk %s %s: capacity %lu serial %s ok\n", dev->transport,
                   dev->location, (unsigned long)blk.capacity, serial);
  } else {
    console_printf("blk %s %s: capacity %lu serial %s FAIL: %s\n",
                   dev->transport, dev->location, (unsigned long)blk.capacity,
                   serial, why);
  }
  return ok;
}
