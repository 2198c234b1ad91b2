#include "runtime/virtio_blk.h"

#include "runtime/string.h"

// struct virtio_blk_config (5.2.4)
#define CONFIG_CAPACITY 0
#define CONFIG_SIZE_MAX 8
#define CONFIG_SEG_MAX 12
#define CONFIG_BLK_SIZE 20

// header + data buffers + segment + status
#define MAX_BUFS (2 + VIRTIO_BLK_MAX_DATA_BUFS + 1)

static bool device_writes_data(uint32_t type) {
  return type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
}

static bool has_segment(uint32_t type) {
  return type == VIRTIO_BLK_T_DISCARD || type == VIRTIO_BLK_T_WRITE_ZEROES;
}

// The descriptor list of one request, in the order the device reads it.
static uint32_t build(struct virtio_blk_io* io, struct virtq_buf* bufs) {
  uint32_t n = 0;
  bufs[n++] = (struct virtq_buf){&io->header, sizeof(io->header), false};
  for (uint32_t i = 0; i < io->data_bufs && i < VIRTIO_BLK_MAX_DATA_BUFS; ++i) {
    bufs[n++] = (struct virtq_buf){io->data[i], io->data_len[i],
                                   device_writes_data(io->type)};
  }
  if (has_segment(io->type)) {
    bufs[n++] = (struct virtq_buf){&io->segment, sizeof(io->segment), false};
  }
  bufs[n++] = (struct virtq_buf){(const void*)&io->status, 1, true};
  return n;
}

static void prepare(struct virtio_blk_io* io) {
  io->header.type = io->type;
  io->header.reserved = 0;
  io->header.sector = io->sector;
  io->segment.sector = io->sector;
  io->segment.num_sectors = io->num_sectors;
  io->segment.flags = 0;
  io->status = 0xff;  // not a status the device can return
  io->done = false;
  io->written = 0;
}

// What the device must report as used length: every byte it may write.
static bool written_ok(const struct virtio_blk_io* io) {
  uint32_t writable = 1;
  if (device_writes_data(io->type)) {
    for (uint32_t i = 0; i < io->data_bufs; ++i) writable += io->data_len[i];
  }
  if (io->type == VIRTIO_BLK_T_GET_ID) {
    return io->written >= 1 && io->written <= writable;
  }
  return io->written == writable;
}

bool virtio_blk_run(struct virtio_blk* blk, struct virtio_blk_io* ios,
                    uint32_t count, const char** why) {
  struct virtq* vq = &blk->vq;
  if (blk->broken) {
    *why = "an earlier request failed; the device needs a reset";
    return false;
  }
  // Cleared again only when every request has come back.
  blk->broken = true;
  for (uint32_t i = 0; i < count; ++i) prepare(&ios[i]);
  uint32_t next = 0;
  uint32_t completed = 0;
  while (completed < count) {
    uint32_t outstanding = 0;
    struct virtq_buf bufs[MAX_BUFS];
    while (next < count) {
      uint32_t n = build(&ios[next], bufs);
      if (!virtq_has_room(vq, n)) break;
      if (!virtq_add(vq, bufs, n, &ios[next])) {
        *why = "virtq_add refused a request";
        return false;
      }
      ++next;
      ++outstanding;
    }
    if (outstanding == 0) {
      *why = "a request needs more descriptors than the queue has";
      return false;
    }
    virtq_kick(vq);
    while (outstanding > 0) {
      if (!virtq_wait(vq, why)) return false;
      void* cookie;
      uint32_t len;
      const char* pop_why = 0;
      while (outstanding > 0 && virtq_pop_used(vq, &cookie, &len, &pop_why)) {
        struct virtio_blk_io* io = cookie;
        io->done = true;
        io->written = len;
        --outstanding;
        ++completed;
      }
      if (pop_why != 0) {
        *why = pop_why;
        return false;
      }
    }
  }
  blk->broken = false;
  for (uint32_t i = 0; i < count; ++i) {
    if (!written_ok(&ios[i])) {
      *why = "the device reported a wrong used length";
      return false;
    }
  }
  return true;
}

static bool run_one(struct virtio_blk* blk, struct virtio_blk_io* io,
                    const char** why) {
  if (!virtio_blk_run(blk, io, 1, why)) return false;
  if (io->status != VIRTIO_BLK_S_OK) {
    *why = io->status == VIRTIO_BLK_S_UNSUPP ? "request status UNSUPP"
           : io->status == VIRTIO_BLK_S_IOERR ? "request status IOERR"
                                              : "request status invalid";
    return false;
  }
  return true;
}

static struct virtio_blk_io* scratch(struct virtio_blk* blk, uint32_t type,
                                     uint64_t sector) {
  struct virtio_blk_io* io = &blk->scratch;
  memset(io, 0, sizeof(*io));
  io->type = type;
  io->sector = sector;
  return io;
}

static bool data_io(struct virtio_blk* blk, uint32_t type, uint64_t sector,
                    void* buf, uint32_t sectors, const char** why) {
  struct virtio_blk_io* io = scratch(blk, type, sector);
  io->data[0] = buf;
  io->data_len[0] = sectors * VIRTIO_BLK_SECTOR_SIZE;
  io->data_bufs = 1;
  return run_one(blk, io, why);
}

bool virtio_blk_read(struct virtio_blk* blk, uint64_t sector, void* buf,
                     uint32_t sectors, const char** why) {
  return data_io(blk, VIRTIO_BLK_T_IN, sector, buf, sectors, why);
}

bool virtio_blk_write(struct virtio_blk* blk, uint64_t sector,
                      const void* buf, uint32_t sectors, const char** why) {
  return data_io(blk, VIRTIO_BLK_T_OUT, sector, (void*)buf, sectors, why);
}

bool virtio_blk_flush(struct virtio_blk* blk, const char** why) {
  return run_one(blk, scratch(blk, VIRTIO_BLK_T_FLUSH, 0), why);
}

bool virtio_blk_segment_op(struct virtio_blk* blk, uint32_t type,
                           uint64_t sector, uint32_t sectors,
                           const char** why) {
  struct virtio_blk_io* io = scratch(blk, type, sector);
  io->num_sectors = sectors;
  return run_one(blk, io, why);
}

// GET_ID: a device that does not support it answers UNSUPP (serial "");
// only a transport failure is an error.
static bool read_serial(struct virtio_blk* blk, const char** why) {
  memset(blk->id, 0, sizeof(blk->id));
  struct virtio_blk_io* io = scratch(blk, VIRTIO_BLK_T_GET_ID, 0);
  io->data[0] = blk->id;
  io->data_len[0] = sizeof(blk->id);
  io->data_bufs = 1;
  blk->serial[0] = '\0';
  if (!virtio_blk_run(blk, io, 1, why)) return false;
  if (io->status != VIRTIO_BLK_S_OK) return true;
  // Up to 20 bytes, NUL-terminated only when shorter.
  uint32_t n = 0;
  for (; n < VIRTIO_BLK_ID_BYTES && blk->id[n] != 0; ++n) {
    uint8_t c = blk->id[n];
    blk->serial[n] = c > ' ' && c < 0x7f ? (char)c : '?';
  }
  blk->serial[n] = '\0';
  return true;
}

bool virtio_blk_init(struct virtio_blk* blk, struct virtio_dev* dev,
                     const struct virtio_blk_options* options,
                     const char** why) {
  blk->dev = dev;
  blk->options = *options;
  uint64_t wanted = VIRTIO_BLK_F_SIZE_MAX | VIRTIO_BLK_F_SEG_MAX |
                    VIRTIO_BLK_F_RO | VIRTIO_BLK_F_BLK_SIZE |
                    VIRTIO_BLK_F_FLUSH;
  if (options->indirect) wanted |= VIRTIO_F_INDIRECT_DESC;
  if (options->event_idx) wanted |= VIRTIO_F_EVENT_IDX;
  if (options->discard) wanted |= VIRTIO_BLK_F_DISCARD;
  if (options->write_zeroes) wanted |= VIRTIO_BLK_F_WRITE_ZEROES;
  if (!virtio_negotiate(dev, wanted, why)) return false;

  uint64_t features = dev->negotiated;
  blk->capacity = virtio_config_read64(dev, CONFIG_CAPACITY);
  blk->size_max = features & VIRTIO_BLK_F_SIZE_MAX
                      ? virtio_config_read(dev, CONFIG_SIZE_MAX, 4)
                      : 0;
  blk->seg_max = features & VIRTIO_BLK_F_SEG_MAX
                     ? virtio_config_read(dev, CONFIG_SEG_MAX, 4)
                     : 0;
  blk->blk_size = features & VIRTIO_BLK_F_BLK_SIZE
                      ? virtio_config_read(dev, CONFIG_BLK_SIZE, 4)
                      : VIRTIO_BLK_SECTOR_SIZE;
  blk->read_only = (features & VIRTIO_BLK_F_RO) != 0;
  blk->has_flush = (features & VIRTIO_BLK_F_FLUSH) != 0;
  blk->has_discard = (features & VIRTIO_BLK_F_DISCARD) != 0;
  blk->has_write_zeroes = (features & VIRTIO_BLK_F_WRITE_ZEROES) != 0;

  blk->broken = false;
  if (!virtq_init(&blk->vq, dev, 0, options->queue_size, options->indirect,
                  why)) {
    virtio_set_failed(dev);
    return false;
  }
  if (!virtio_driver_ok(dev, why)) return false;
  return read_serial(blk, why);
}
