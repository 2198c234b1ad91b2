// A virtio-blk client (virtio 1.x 5.2): configuration, request batches on
// queue 0, and the request types IN, OUT, FLUSH, GET_ID, DISCARD and
// WRITE_ZEROES.
#ifndef VMM_TESTS_GUESTS_RUNTIME_VIRTIO_BLK_H_
#define VMM_TESTS_GUESTS_RUNTIME_VIRTIO_BLK_H_

#include <stdbool.h>
#include <stdint.h>

#include "runtime/virtio.h"
#include "runtime/virtqueue.h"

#define VIRTIO_BLK_F_SIZE_MAX (1ull << 1)
#define VIRTIO_BLK_F_SEG_MAX (1ull << 2)
#define VIRTIO_BLK_F_RO (1ull << 5)
#define VIRTIO_BLK_F_BLK_SIZE (1ull << 6)
#define VIRTIO_BLK_F_FLUSH (1ull << 9)
#define VIRTIO_BLK_F_TOPOLOGY (1ull << 10)
#define VIRTIO_BLK_F_DISCARD (1ull << 13)
#define VIRTIO_BLK_F_WRITE_ZEROES (1ull << 14)

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_SECTOR_SIZE 512
#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_MAX_DATA_BUFS 2

struct virtio_blk_options {
  bool indirect;      // negotiate INDIRECT_DESC when offered
  bool event_idx;     // negotiate RING_EVENT_IDX when offered
  bool discard;       // negotiate DISCARD when offered
  bool write_zeroes;  // negotiate WRITE_ZEROES when offered
  uint16_t queue_size;  // upper bound for the queue size
};

// One request. The header, discard/write-zeroes segment and status live
// here, so these must be in static memory: they stay in the device's hands
// until the batch completes or the device is reset.
struct virtio_blk_io {
  uint32_t type;
  uint64_t sector;
  uint32_t num_sectors;  // DISCARD / WRITE_ZEROES
  void* data[VIRTIO_BLK_MAX_DATA_BUFS];
  uint32_t data_len[VIRTIO_BLK_MAX_DATA_BUFS];
  uint32_t data_bufs;
  // Filled in by the driver / the device.
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
  bool done;
  uint32_t written;  // used length reported by the device
};

struct virtio_blk {
  struct virtq vq;
  struct virtio_dev* dev;
  struct virtio_blk_options options;
  uint64_t capacity;  // 512-byte sectors
  uint32_t blk_size;
  uint32_t seg_max;   // 0 = no limit given
  uint32_t size_max;  // 0 = no limit given
  bool read_only;
  bool has_flush;
  bool has_discard;
  bool has_write_zeroes;
  char serial[VIRTIO_BLK_ID_BYTES + 1];  // "" when GET_ID gave nothing
  // After a transport failure (a timeout, a bad used entry) requests may
  // still be in the device's hands: nothing more is queued until the device
  // is reset and virtio_blk_init runs again.
  bool broken;
  // Device-visible memory of the one-request helpers (never the stack:
  // a request that times out must not point into a dead frame).
  struct virtio_blk_io scratch;
  uint8_t id[VIRTIO_BLK_ID_BYTES];
};

// Negotiates, reads the configuration, sets up queue 0, DRIVER_OK, then
// asks for the serial (GET_ID). Also the way back after a reset.
bool virtio_blk_init(struct virtio_blk* blk, struct virtio_dev* dev,
                     const struct virtio_blk_options* options,
                     const char** why);

// Runs `count` requests: queues as many as fit, kicks once, collects every
// completion, repeats. Checks each used length; per-request status is left
// in ios[i].status. False (with *why) on a transport-level failure.
bool virtio_blk_run(struct virtio_blk* blk, struct virtio_blk_io* ios,
                    uint32_t count, const char** why);

// One-request helpers; false with *why on failure or a non-OK status.
bool virtio_blk_read(struct virtio_blk* blk, uint64_t sector, void* buf,
                     uint32_t sectors, const char** why);
bool virtio_blk_write(struct virtio_blk* blk, uint64_t sector,
                      const void* buf, uint32_t sectors, const char** why);
bool virtio_blk_flush(struct virtio_blk* blk, const char** why);
bool virtio_blk_segment_op(struct virtio_blk* blk, uint32_t type,
                           uint64_t sector, uint32_t sectors,
                           const char** why);

#endif  // VMM_TESTS_GUESTS_RUNTIME_VIRTIO_BLK_H_
