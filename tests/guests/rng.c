// rng.elf: finds every virtio-rng device (modern virtio-pci on bus 0 and
// the virtio-mmio slots), asks each for random bytes a few times and checks
// what came back: some bytes, not all zero, not all equal, and different
// from one request to the next.
//
// Command line:
//   pci=ecam|off  mmio=probe|off   where to look              [ecam, probe]
//   devices=N     fail unless exactly N devices are found     [any, >= 1]
//   requests=N    requests per device (1..16)                  [4]
//   bytes=N       buffer size per request (1..256)            [64]
//   timeout_ms=N  bound of every wait                         [5000]
//   irq=on|off    interrupts (MSI-X / the mmio GSI) or polling [off]
// Output:
//   rng <pci|mmio>: <n> bytes in <r> requests ok | ... FAIL: <why>
//   rng: <N> devices ok | rng: FAIL: ...
// Exit (debug-exit; the VMM's status is 2v+1): 0 ok, 100 a check failed,
// 102 no device or not the devices=N count, 103 bad command line.
#include "runtime/guest.h"
#include "runtime/irq.h"
#include "runtime/lapic.h"
#include "runtime/mp_table.h"
#include "runtime/virtio_find.h"
#include "runtime/virtqueue.h"

#define VIRTIO_ID_RNG 4
#define EXIT_COUNT 102
#define MAX_BYTES 256
#define MAX_REQUESTS 16

static struct virtq vq;
static uint8_t buffers[MAX_REQUESTS][MAX_BYTES] __attribute__((aligned(64)));

static uint64_t get_u64(const char* c, const char* key, uint64_t def, uint64_t min,
                        uint64_t max) {
  return cmdline_u64_or_exit(c, "rng", key, def, min, max);
}

struct irq_seen {
  struct virtio_dev* dev;
  uint32_t count;
};

static bool irq_changed(void* arg) {
  struct irq_seen* seen = arg;
  return seen->dev->irq_count != seen->count;
}

static bool test_device(struct virtio_dev* dev, uint32_t requests, uint32_t bytes,
                        const char** why) {
  if (!virtio_negotiate(dev, VIRTIO_F_VERSION_1, why)) return false;
  if (!virtq_init(&vq, dev, 0, 16, false, why)) {
    virtio_set_failed(dev);
    return false;
  }
  if (!virtio_driver_ok(dev, why)) return false;
  uint32_t total = 0;
  for (uint32_t r = 0; r < requests; ++r) {
    for (uint32_t i = 0; i < bytes; ++i) buffers[r][i] = 0;
    struct virtq_buf buf = {buffers[r], bytes, true};
    if (!virtq_add(&vq, &buf, 1, buffers[r])) {
      *why = "virtq_add refused a request";
      return false;
    }
    const uint32_t irqs_before = dev->irq_count;
    virtq_kick(&vq);
    // With interrupts, each used buffer must come with one: wait for it
    // before looking at the ring (the device may well be faster than us).
    struct irq_seen seen = {dev, irqs_before};
    if (dev->irq_mode != VIRTIO_IRQ_POLL && !irq_wait(irq_changed, &seen, dev->timeout_ms)) {
      *why = virtq_has_used(&vq) ? "a used buffer came without an interrupt"
                                 : "timed out waiting for the device";
      return false;
    }
    if (!virtq_wait(&vq, why)) return false;
    void* cookie;
    uint32_t len;
    if (!virtq_pop_used(&vq, &cookie, &len, why)) {
      if (*why == 0 || **why == 0) *why = "no used buffer";
      return false;
    }
    if (cookie != buffers[r] || len == 0 || len > bytes) {
      *why = "bad used entry (cookie or length)";
      return false;
    }
    bool all_equal = true, all_zero = true;
    for (uint32_t i = 0; i < len; ++i) {
      all_equal &= buffers[r][i] == buffers[r][0];
      all_zero &= buffers[r][i] == 0;
    }
    if (len >= 8 && (all_zero || all_equal)) {
      *why = "the bytes are not random (all zero or all equal)";
      return false;
    }
    if (r > 0 && len >= 8) {
      bool same = true;
      for (uint32_t i = 0; i < 8; ++i) same &= buffers[r][i] == buffers[r - 1][i];
      if (same) {
        *why = "two requests got the same bytes";
        return false;
      }
    }
    total += len;
  }
  console_printf("rng %s: %u bytes in %u requests ok, %u interrupts\n", dev->location,
                 total, requests, dev->irq_count);
  return true;
}

void guest_main(const struct hvm_start_info* info) {
  const char* c = pvh_cmdline(info);
  console_printf("rng: cmdline: %s\n", c);
  struct virtio_find_options o;
  const char* bad_key = "";
  if (!virtio_find_options_from_cmdline(c, &o, &bad_key)) cmdline_bad_value("rng", bad_key);

  uint64_t want = get_u64(c, "devices", 0, 0, VIRTIO_FIND_MAX);
  uint32_t requests = (uint32_t)get_u64(c, "requests", 4, 1, MAX_REQUESTS);
  uint32_t bytes = (uint32_t)get_u64(c, "bytes", 64, 1, MAX_BYTES);

  struct virtio_dev* devs[VIRTIO_FIND_MAX];
  uint32_t failed = 0;
  uint32_t n = virtio_find(VIRTIO_ID_RNG, &o, devs, &failed);
  for (uint32_t i = 0; i < n; ++i) {
    const char* why = "";
    if (!test_device(devs[i], requests, bytes, &why)) {
      console_printf("rng %s: FAIL: %s\n", devs[i]->location, why);
      ++failed;
    }
  }
  if (failed != 0) {
    console_printf("rng: FAIL: %u devices failed\n", failed);
    guest_debug_exit(GUEST_EXIT_FAILURE);
  }
  if (n == 0 || (want != 0 && n != want)) {
    console_printf("rng: FAIL: found %u devices\n", n);
    guest_debug_exit(EXIT_COUNT);
  }
  console_printf("rng: %u devices ok\n", n);
  guest_debug_exit(0);
}
