#include "blk_durability.h"

#include "blk_pattern.h"
#include "runtime/console.h"
#include "runtime/string.h"

#define SECTOR VIRTIO_BLK_SECTOR_SIZE
#define DATA_BLOCKS 2
#define MAX_BLOCK 4096
#define DISK 0

static struct virtio_blk blk __attribute__((section(".bss.noinit")));
static uint8_t data[DATA_BLOCKS * MAX_BLOCK]
    __attribute__((aligned(4096), section(".bss.noinit")));
static uint8_t header[MAX_BLOCK]
    __attribute__((aligned(4096), section(".bss.noinit")));
static struct virtio_blk_io ios[2];
static uint32_t unit;  // sectors per block (the device's blk_size)

static void fill(uint8_t* buf, uint32_t gen, uint64_t first, uint32_t count) {
  uint32_t* words = (uint32_t*)buf;
  for (uint32_t s = 0; s < count; ++s) {
    for (uint32_t i = 0; i < BLK_PATTERN_WORDS_PER_SECTOR; ++i) {
      *words++ = blk_pattern_word(DISK, gen, first + s, i);
    }
  }
}

static void set_write(struct virtio_blk_io* io, uint64_t sector, void* buf,
                      uint32_t sectors) {
  memset(io, 0, sizeof(*io));
  io->type = VIRTIO_BLK_T_OUT;
  io->sector = sector;
  io->data[0] = buf;
  io->data_len[0] = sectors * SECTOR;
  io->data_bufs = 1;
}

static bool generation(uint32_t g, const char** why) {
  uint64_t first = (1 + (uint64_t)(g - 1) * DATA_BLOCKS) * unit;
  fill(data, g, first, DATA_BLOCKS * unit);
  fill(header, g, 0, unit);
  set_write(&ios[0], first, data, DATA_BLOCKS * unit);
  set_write(&ios[1], 0, header, unit);
  if (!virtio_blk_run(&blk, ios, 2, why)) return false;
  if (ios[0].status != VIRTIO_BLK_S_OK || ios[1].status != VIRTIO_BLK_S_OK) {
    *why = "write failed (status not OK)";
    return false;
  }
  // virtio_blk_flush fails unless the FLUSH completed with status OK.
  return virtio_blk_flush(&blk, why);
}

bool blk_durability_run(struct virtio_dev* dev,
                        const struct virtio_blk_options* options,
                        uint32_t generations) {
  const char* why = "";
  bool ok = virtio_blk_init(&blk, dev, options, &why);
  if (ok && !blk.has_flush) {
    why = "the device does not offer FLUSH";
    ok = false;
  } else if (ok && blk.read_only) {
    why = "the disk is read-only";
    ok = false;
  } else if (ok && (blk.blk_size % SECTOR != 0 || blk.blk_size > MAX_BLOCK)) {
    why = "blk_size is not a multiple of 512 up to 4096";
    ok = false;
  }
  unit = blk.blk_size / SECTOR;
  if (ok && blk.capacity < (1 + (uint64_t)generations * DATA_BLOCKS) * unit) {
    why = "capacity is below 1 + 2 * generations blocks";
    ok = false;
  }
  if (ok) console_printf("durability: block %u bytes\n", blk.blk_size);
  for (uint32_t g = 1; ok && g <= generations; ++g) {
    ok = generation(g, &why);
    if (ok) console_printf("durability: flushed %u\n", g);
  }
  if (!ok) {
    console_printf("durability: FAIL: %s\n", why);
    return false;
  }
  console_printf("durability: %u generations flushed\n", generations);
  return true;
}
