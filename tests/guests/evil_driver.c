// evil.elf's driver helpers: requests, raw ring writes, checks.
#include <stdarg.h>

#include "blk_pattern.h"
#include "evil.h"
#include "runtime/console.h"
#include "runtime/io.h"
#include "runtime/string.h"

struct disk victim __attribute__((section(".bss.noinit")));
struct disk good __attribute__((section(".bss.noinit")));
uint8_t buffer[RESET_COUNT * SECTOR] __attribute__((aligned(4096), section(".bss.noinit")));
struct virtq_desc table[2048] __attribute__((aligned(4096), section(".bss.noinit")));
struct request requests[RESET_COUNT];
uint32_t checks, failures;

void check(bool ok, const char* fmt, ...) {
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

const struct virtio_blk_options kDefaultOptions = {
    .indirect = true,
    .event_idx = true,
    .discard = true,
    .write_zeroes = true,
    .queue_size = SMALL_QUEUE,
};

bool init_disk(struct disk* d, const struct virtio_blk_options* options) {
  const char* why = "";
  bool ok = virtio_blk_init(&d->blk, d->dev, options, &why);
  if (!ok) console_printf("evil: %s: init: %s\n", d->name, why);
  return ok;
}

uint8_t status_of(struct disk* d) { return d->dev->ops->get_status(d->dev); }

uint16_t used_idx(const struct virtq* vq) {
  return ((const volatile uint16_t*)vq->used)[1];
}

// Waits (bounded, ~0.5 s) until the device shows DEVICE_NEEDS_RESET.
bool wait_needs_reset(struct disk* d) {
  for (uint32_t i = 0; i < 100000; ++i) {
    if (status_of(d) & VIRTIO_STATUS_NEEDS_RESET) return true;
    cpu_relax();
  }
  return false;
}

// Gives the device time to act on a notify it should ignore.
void settle(void) {
  for (uint32_t i = 0; i < 20000; ++i) cpu_relax();
}

// Places `head` in the next avail slot, publishes it and notifies.
void raw_publish(struct virtq* vq, uint16_t head) {
  vq->avail[2 + (vq->avail_idx & (vq->size - 1))] = head;
  vq->avail_idx = (uint16_t)(vq->avail_idx + 1);
  compiler_barrier();
  vq->avail[1] = vq->avail_idx;
  vq->avail_kicked = vq->avail_idx;
  memory_barrier();
  vq->dev->ops->notify(vq->dev, vq->index);
}

void set_desc(struct virtq_desc* d, const volatile void* addr,
                     uint32_t len, uint16_t flags, uint16_t next) {
  d->addr = (uint64_t)(uintptr_t)addr;
  d->len = len;
  d->flags = flags;
  d->next = next;
}

struct request* prepare(uint32_t i, uint32_t type, uint64_t sector) {
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
bool request(struct disk* d, uint32_t type, uint64_t sector, void* data,
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

void fill_pattern(uint8_t* buf, uint32_t disk, uint32_t gen,
                         uint64_t first, uint32_t count) {
  uint32_t* words = (uint32_t*)buf;
  for (uint32_t s = 0; s < count; ++s) {
    for (uint32_t i = 0; i < BLK_PATTERN_WORDS_PER_SECTOR; ++i) {
      *words++ = blk_pattern_word(disk, gen, first + s, i);
    }
  }
}

bool sector_is(const uint8_t* buf, uint32_t disk, uint32_t gen,
                      uint64_t sector) {
  const uint32_t* words = (const uint32_t*)buf;
  for (uint32_t i = 0; i < BLK_PATTERN_WORDS_PER_SECTOR; ++i) {
    if (words[i] != blk_pattern_word(disk, gen, sector, i)) return false;
  }
  return true;
}

// Reads `count` sectors from `first` and compares with generation `gen`.
bool read_and_compare(struct disk* d, uint32_t disk, uint32_t gen,
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

bool write_pattern(struct disk* d, uint32_t disk, uint64_t first,
                          uint32_t count) {
  fill_pattern(buffer, disk, GEN_GUEST, first, count);
  uint8_t status = 0xff;
  return request(d, VIRTIO_BLK_T_OUT, first, buffer, count * SECTOR, false, 0,
                 &status, 0) &&
         status == VIRTIO_BLK_S_OK;
}

void expect_broken_chain(const char* what, uint32_t type, uint64_t addr,
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

bool negotiate_only(uint64_t features) {
  const char* why = "";
  if (!virtio_negotiate(victim.dev, features, &why)) {
    console_printf("evil: victim: negotiate: %s\n", why);
    return false;
  }
  return true;
}

void expect_status(const char* what, uint32_t type, uint64_t sector, void* data,
                          uint32_t len, bool segment, uint32_t num, uint8_t want1,
                          uint8_t want2) {
  uint8_t status = 0xff;
  bool done = request(&victim, type, sector, data, len, segment, num, &status, 0);
  check(done && (status == want1 || status == want2), "%s: status %u", what, status);
}
