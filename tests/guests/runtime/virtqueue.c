#include "runtime/virtqueue.h"

#include "runtime/deadline.h"
#include "runtime/io.h"
#include "runtime/irq.h"

// Interrupts that wake the driver without a used buffer (a configuration
// change, a shared INTx) are tolerated this many times per wait.
#define MAX_EMPTY_WAKEUPS 16

// Index helpers over the raw ring arrays.
#define AVAIL_FLAGS(vq) ((vq)->avail[0])
#define AVAIL_IDX(vq) ((vq)->avail[1])
#define AVAIL_RING(vq, i) ((vq)->avail[2 + (i)])
#define USED_EVENT(vq) ((vq)->avail[2 + (vq)->size])

// The used ring is declared as 32-bit words; its 16-bit fields are read
// through a type that may alias them.
typedef uint16_t __attribute__((may_alias)) u16_alias;

static uint16_t used_flags(const struct virtq* vq) {
  return ((const volatile u16_alias*)vq->used)[0];
}
static uint16_t used_idx(const struct virtq* vq) {
  return ((const volatile u16_alias*)vq->used)[1];
}
static uint16_t avail_event(const struct virtq* vq) {
  return ((const volatile u16_alias*)&vq->used[1 + 2 * vq->size])[0];
}

// virtio 1.x 2.7.10: notify when new_idx passed event_idx since old.
static bool need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old) {
  return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old);
}

bool virtq_init(struct virtq* vq, struct virtio_dev* dev, uint16_t index,
                uint16_t max_size, bool want_indirect, const char** why) {
  uint16_t device_max = dev->ops->queue_max_size(dev, index);
  if (device_max == 0) {
    *why = "queue not available";
    return false;
  }
  uint16_t size = device_max < max_size ? device_max : max_size;
  if (size > VIRTQ_MAX_SIZE) size = VIRTQ_MAX_SIZE;
  while (size & (size - 1)) size &= (uint16_t)(size - 1);  // power of two
  if (size == 0) {
    *why = "queue size 0";
    return false;
  }

  vq->dev = dev;
  vq->index = index;
  vq->size = size;
  vq->use_indirect = want_indirect && (dev->negotiated & VIRTIO_F_INDIRECT_DESC);
  vq->event_idx = (dev->negotiated & VIRTIO_F_EVENT_IDX) != 0;
  vq->interrupts = dev->irq_mode != VIRTIO_IRQ_POLL;
  for (uint16_t i = 0; i < size; ++i) {
    vq->desc[i].next = (uint16_t)(i + 1);
    vq->cookie[i] = 0;
  }
  vq->free_head = 0;
  vq->num_free = size;
  vq->avail_idx = 0;
  vq->avail_kicked = 0;
  vq->last_used = 0;
  vq->notifications = 0;
  vq->notifications_suppressed = 0;
  vq->indirect_chains = 0;
  vq->direct_chains = 0;
  vq->irq_waits = 0;

  AVAIL_IDX(vq) = 0;
  // Polling: ask for no interrupts. With event indices the flag must be 0
  // and a used_event just behind us keeps the device quiet instead.
  AVAIL_FLAGS(vq) =
      vq->interrupts || vq->event_idx ? 0 : VIRTQ_AVAIL_F_NO_INTERRUPT;
  USED_EVENT(vq) = vq->interrupts ? 0 : 0xffff;
  vq->used[0] = 0;                  // flags and idx
  vq->used[1 + 2 * size] = 0;       // avail_event
  compiler_barrier();

  return dev->ops->queue_enable(dev, index, size,
                                (uint64_t)(uintptr_t)vq->desc,
                                (uint64_t)(uintptr_t)vq->avail,
                                (uint64_t)(uintptr_t)vq->used, why);
}

bool virtq_has_room(const struct virtq* vq, uint32_t count) {
  if (vq->use_indirect && count > 1 && count <= VIRTQ_MAX_INDIRECT) {
    return vq->num_free >= 1;
  }
  return vq->num_free >= count;
}

static void fill(struct virtq_desc* d, const struct virtq_buf* buf,
                 bool last, uint16_t next) {
  d->addr = (uint64_t)(uintptr_t)buf->addr;
  d->len = buf->len;
  d->flags = (uint16_t)((buf->device_writes ? VIRTQ_DESC_F_WRITE : 0) |
                        (last ? 0 : VIRTQ_DESC_F_NEXT));
  d->next = last ? 0 : next;
}

bool virtq_add(struct virtq* vq, const struct virtq_buf* bufs, uint32_t count,
               void* cookie) {
  if (count == 0 || cookie == 0) return false;
  if (!virtq_has_room(vq, count)) return false;
  uint16_t head = vq->free_head;
  if (vq->use_indirect && count > 1 && count <= VIRTQ_MAX_INDIRECT) {
    struct virtq_desc* table = vq->indirect[head];
    for (uint32_t i = 0; i < count; ++i) {
      fill(&table[i], &bufs[i], i + 1 == count, (uint16_t)(i + 1));
    }
    vq->free_head = vq->desc[head].next;
    vq->desc[head].addr = (uint64_t)(uintptr_t)table;
    vq->desc[head].len = count * sizeof(struct virtq_desc);
    vq->desc[head].flags = VIRTQ_DESC_F_INDIRECT;
    vq->chain_descs[head] = 1;
    vq->num_free = (uint16_t)(vq->num_free - 1);
    ++vq->indirect_chains;
  } else {
    uint16_t i = head;
    for (uint32_t n = 0; n < count; ++n) {
      uint16_t next = vq->desc[i].next;  // free-list link
      fill(&vq->desc[i], &bufs[n], n + 1 == count, next);
      if (n + 1 == count) vq->free_head = next;
      i = next;
    }
    vq->chain_descs[head] = (uint16_t)count;
    vq->num_free = (uint16_t)(vq->num_free - count);
    ++vq->direct_chains;
  }
  vq->cookie[head] = cookie;
  AVAIL_RING(vq, vq->avail_idx & (vq->size - 1)) = head;
  vq->avail_idx = (uint16_t)(vq->avail_idx + 1);
  return true;
}

void virtq_kick(struct virtq* vq) {
  uint16_t old = vq->avail_kicked;
  uint16_t now = vq->avail_idx;
  // x86 keeps stores in order: the ring entries reach memory before idx.
  compiler_barrier();
  AVAIL_IDX(vq) = now;
  vq->avail_kicked = now;
  // The device may stop polling between our store and our load of its
  // suppression hint: order them (store-load).
  memory_barrier();
  bool notify = vq->event_idx ? need_event(avail_event(vq), now, old)
                              : (used_flags(vq) & VIRTQ_USED_F_NO_NOTIFY) == 0;
  if (notify) {
    vq->dev->ops->notify(vq->dev, vq->index);
    ++vq->notifications;
  } else {
    ++vq->notifications_suppressed;
  }
}

bool virtq_has_used(const struct virtq* vq) {
  return used_idx(vq) != vq->last_used;
}

bool virtq_pop_used(struct virtq* vq, void** cookie, uint32_t* len,
                    const char** why) {
  if (!virtq_has_used(vq)) return false;
  compiler_barrier();  // read the entry only after seeing idx move
  uint32_t slot = vq->last_used & (vq->size - 1);
  uint32_t id = vq->used[1 + 2 * slot];
  *len = vq->used[2 + 2 * slot];
  if (id >= vq->size || vq->cookie[id] == 0) {
    *why = "device returned a used id that is not an outstanding head";
    return false;
  }
  *cookie = vq->cookie[id];
  vq->cookie[id] = 0;
  // Return the head's ring descriptors to the free list.
  uint16_t last = (uint16_t)id;
  for (uint16_t n = 1; n < vq->chain_descs[id]; ++n) last = vq->desc[last].next;
  vq->desc[last].next = vq->free_head;
  vq->free_head = (uint16_t)id;
  vq->num_free = (uint16_t)(vq->num_free + vq->chain_descs[id]);
  vq->last_used = (uint16_t)(vq->last_used + 1);
  if (vq->interrupts && vq->event_idx) {
    USED_EVENT(vq) = vq->last_used;  // interrupt me for the next one
  } else if (vq->event_idx) {
    USED_EVENT(vq) = (uint16_t)(vq->last_used - 1);  // stay quiet
  }
  return true;
}

static bool poll_used(struct virtq* vq, const char** why) {
  struct deadline deadline =
      deadline_start((uint64_t)vq->dev->timeout_ms * 3000000ull);
  while (!virtq_has_used(vq)) {
    if (deadline_expired(&deadline)) {
      *why = "timed out polling the used ring";
      return false;
    }
    cpu_relax();
  }
  return true;
}

struct irq_wait_state {
  struct virtio_dev* dev;
  uint32_t seen;
};

static bool irq_arrived(void* arg) {
  struct irq_wait_state* state = arg;
  return state->dev->irq_count != state->seen;
}

bool virtq_wait(struct virtq* vq, const char** why) {
  if (!vq->interrupts) return poll_used(vq, why);
  for (int wakeups = 0; wakeups < MAX_EMPTY_WAKEUPS; ++wakeups) {
    if (virtq_has_used(vq)) return true;
    // Interrupts are wanted (used_event = last_used, or no NO_INTERRUPT
    // flag); check again after noting the count, so a completion that
    // raced with us is not slept through.
    struct irq_wait_state state = {vq->dev, vq->dev->irq_count};
    memory_barrier();
    if (virtq_has_used(vq)) return true;
    if (!irq_wait(irq_arrived, &state, vq->dev->timeout_ms)) {
      *why = virtq_has_used(vq) ? "the device used a buffer but sent no interrupt"
                                : "timed out waiting for the device's interrupt";
      return false;
    }
    if (virtq_has_used(vq)) {
      ++vq->irq_waits;
      return true;
    }
  }
  *why = "interrupts keep arriving without used buffers";
  return false;
}
