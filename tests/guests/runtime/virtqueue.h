// A split virtqueue (virtio 1.x 2.7) in static guest memory: descriptor
// table, available and used rings, a free list, direct chains or indirect
// tables, notification suppression both ways (flags or event indices).
#ifndef VMM_TESTS_GUESTS_RUNTIME_VIRTQUEUE_H_
#define VMM_TESTS_GUESTS_RUNTIME_VIRTQUEUE_H_

#include <stdbool.h>
#include <stdint.h>

#include "runtime/virtio.h"

#define VIRTQ_MAX_SIZE 256
#define VIRTQ_MAX_INDIRECT 4  // descriptors per indirect table

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

struct virtq_desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};

struct virtq_used_elem {
  uint32_t id;
  uint32_t len;
};

// One buffer of a request, in the order the device sees them (all
// device-readable ones first).
struct virtq_buf {
  const void* addr;
  uint32_t len;
  bool device_writes;
};

struct virtq {
  // Rings (the device reads and writes these).
  struct virtq_desc desc[VIRTQ_MAX_SIZE] __attribute__((aligned(4096)));
  struct virtq_desc indirect[VIRTQ_MAX_SIZE][VIRTQ_MAX_INDIRECT]
      __attribute__((aligned(16)));
  // flags, idx, ring[size], used_event
  volatile uint16_t avail[2 + VIRTQ_MAX_SIZE + 1] __attribute__((aligned(4)));
  // flags/idx, ring[size] (8 bytes each), avail_event
  volatile uint32_t used[1 + 2 * VIRTQ_MAX_SIZE + 1]
      __attribute__((aligned(4)));

  // Driver state.
  struct virtio_dev* dev;
  uint16_t index;
  uint16_t size;
  bool use_indirect;  // INDIRECT_DESC negotiated and wanted
  bool event_idx;     // RING_EVENT_IDX negotiated
  bool interrupts;    // dev->irq_mode != POLL
  uint16_t free_head;
  uint16_t num_free;
  uint16_t avail_idx;       // next avail slot (not yet published)
  uint16_t avail_kicked;    // avail idx at the last kick
  uint16_t last_used;
  void* cookie[VIRTQ_MAX_SIZE];
  uint16_t chain_descs[VIRTQ_MAX_SIZE];  // ring descriptors a head holds
  // Counters.
  uint32_t notifications;
  uint32_t notifications_suppressed;
  uint32_t indirect_chains;
  uint32_t direct_chains;
  uint32_t irq_waits;  // waits that slept and were woken by the device
};

// Sets the queue up at the device (size: min(max_size, device maximum),
// rounded down to a power of two) and resets the driver state.
bool virtq_init(struct virtq* vq, struct virtio_dev* dev, uint16_t index,
                uint16_t max_size, bool want_indirect, const char** why);

// Queues a request made of `count` buffers. Returns false when there is no
// room (the caller kicks and reaps first) or the request is malformed.
bool virtq_add(struct virtq* vq, const struct virtq_buf* bufs, uint32_t count,
               void* cookie);
// Descriptors free for the next virtq_add of `count` buffers?
bool virtq_has_room(const struct virtq* vq, uint32_t count);

// Publishes everything added since the last kick and notifies the device
// unless it asked not to be (USED_F_NO_NOTIFY or avail_event).
void virtq_kick(struct virtq* vq);

// True when the device has used a buffer we have not collected yet.
bool virtq_has_used(const struct virtq* vq);

// Collects one used buffer: its cookie and the bytes the device wrote.
// False when there is none; *why set when the device returned a bad id.
bool virtq_pop_used(struct virtq* vq, void** cookie, uint32_t* len,
                    const char** why);

// Waits (bounded by dev->timeout_ms or a spin budget) until a used buffer is
// there: by polling, or by halting until the device's interrupt.
bool virtq_wait(struct virtq* vq, const char** why);

#endif  // VMM_TESTS_GUESTS_RUNTIME_VIRTQUEUE_H_
