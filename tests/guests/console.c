// console.elf: drives the virtio console (port 0, no MULTIPORT) found on
// virtio-pci bus 0 or in a virtio-mmio slot: prints a known line through the
// transmit queue, then (echo=1) waits for host input on the receive queue
// and sends it back, prefixed, once a newline arrives.
//
// Command line:
//   pci=ecam|off  mmio=probe|off   where to look              [ecam, probe]
//   echo=0|1      wait for a line of input and echo it        [1]
//   lines=N       extra numbered lines to print (0..10000)     [0]
//   start=0|1     wait for a line of input before printing     [0]
//   timeout_ms=N  bound of each output wait                   [5000]
//   input_ms=N    bound of the wait for input                 [30000]
//   irq=on|off    interrupts (MSI-X / the mmio GSI) or polling [off]
// Output on the virtio console:
//   console: hello from the guest over <pci|mmio>
//   console: line <i> of <N>                 (lines=N)
//   console: echo <the input line>           (echo=1)
// and on COM1: console <pci|mmio>: ok | ... FAIL: <why>, size <cols>x<rows>.
// Exit (debug-exit): 0 ok, 100 failed, 102 no console, 103 bad command line.
#include "runtime/guest.h"
#include "runtime/irq.h"
#include "runtime/lapic.h"
#include "runtime/mp_table.h"
#include "runtime/virtio_find.h"
#include "runtime/virtqueue.h"

#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_CONSOLE_F_SIZE (1ull << 0)
#define EXIT_COUNT 102
#define RX_BUFFERS 4
#define RX_BYTES 32
#define MAX_LINE 128

static struct virtq rxq, txq;
static uint8_t rx_buf[RX_BUFFERS][RX_BYTES] __attribute__((aligned(64)));
static char tx_buf[MAX_LINE + 32];
static char line[MAX_LINE];

static uint64_t get_u64(const char* c, const char* key, uint64_t def, uint64_t min,
                        uint64_t max) {
  return cmdline_u64_or_exit(c, "console", key, def, min, max);
}

static uint32_t append(char* out, uint32_t at, const char* s) {
  while (*s != 0 && at < MAX_LINE + 30) out[at++] = *s++;
  return at;
}

static uint32_t append_u32(char* out, uint32_t at, uint32_t v) {
  char digits[12];
  int n = 0;
  do {
    digits[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) out[at++] = digits[--n];
  return at;
}

// Sends tx_buf[0, len) and waits until the device has consumed it.
static bool send(uint32_t len, const char** why) {
  struct virtq_buf buf = {tx_buf, len, false};
  if (!virtq_add(&txq, &buf, 1, tx_buf)) {
    *why = "virtq_add refused an output buffer";
    return false;
  }
  virtq_kick(&txq);
  if (!virtq_wait(&txq, why)) return false;
  void* cookie;
  uint32_t used;
  if (!virtq_pop_used(&txq, &cookie, &used, why) || cookie != tx_buf) {
    if (*why == 0 || **why == 0) *why = "bad used entry on the transmit queue";
    return false;
  }
  return true;
}

static bool post_rx(uint32_t i, const char** why) {
  struct virtq_buf buf = {rx_buf[i], RX_BYTES, true};
  if (!virtq_add(&rxq, &buf, 1, rx_buf[i])) {
    *why = "virtq_add refused a receive buffer";
    return false;
  }
  return true;
}

// Collects input until a newline; the line (without it) goes to `line`.
static bool receive_line(uint32_t input_ms, uint32_t output_ms, uint32_t* len,
                         const char** why) {
  *len = 0;
  for (;;) {
    rxq.dev->timeout_ms = input_ms;
    bool ok = virtq_wait(&rxq, why);
    rxq.dev->timeout_ms = output_ms;
    if (!ok) return false;
    void* cookie;
    uint32_t used;
    if (!virtq_pop_used(&rxq, &cookie, &used, why) || used > RX_BYTES) {
      if (*why == 0 || **why == 0) *why = "bad used entry on the receive queue";
      return false;
    }
    uint8_t* bytes = cookie;
    bool end = false;
    for (uint32_t i = 0; i < used && !end; ++i) {
      end = bytes[i] == '\n' || bytes[i] == '\r';
      if (!end && *len < MAX_LINE - 1) line[(*len)++] = (char)bytes[i];
    }
    // Give the buffer back (bytes after a newline are dropped).
    if (!post_rx((uint32_t)((uint8_t(*)[RX_BYTES])cookie - rx_buf), why)) return false;
    virtq_kick(&rxq);
    if (end) return true;
  }
}

static bool run(struct virtio_dev* dev, const char* c, const char** why) {
  if (!virtio_negotiate(dev, VIRTIO_F_VERSION_1 | VIRTIO_CONSOLE_F_SIZE, why)) return false;
  if (dev->negotiated & VIRTIO_CONSOLE_F_SIZE) {
    console_printf("console %s: size %ux%u\n", dev->location, virtio_config_read(dev, 0, 2),
                   virtio_config_read(dev, 2, 2));
  }
  if (!virtq_init(&rxq, dev, 0, 16, false, why) || !virtq_init(&txq, dev, 1, 16, false, why)) {
    virtio_set_failed(dev);
    return false;
  }
  if (!virtio_driver_ok(dev, why)) return false;
  // Receive buffers first, as Linux does: input is welcome from now on.
  for (uint32_t i = 0; i < RX_BUFFERS; ++i) {
    if (!post_rx(i, why)) return false;
  }
  virtq_kick(&rxq);

  const uint32_t input_ms = (uint32_t)get_u64(c, "input_ms", 30000, 1, 600000);
  uint32_t len;
  if (get_u64(c, "start", 0, 0, 1) == 1 && !receive_line(input_ms, dev->timeout_ms, &len, why)) {
    return false;
  }
  uint32_t n = append(tx_buf, 0, "console: hello from the guest over ");
  n = append(tx_buf, n, dev->location);
  n = append(tx_buf, n, "\n");
  if (!send(n, why)) return false;
  uint32_t lines = (uint32_t)get_u64(c, "lines", 0, 0, 10000);
  for (uint32_t i = 1; i <= lines; ++i) {
    n = append(tx_buf, 0, "console: line ");
    n = append_u32(tx_buf, n, i);
    n = append(tx_buf, n, " of ");
    n = append_u32(tx_buf, n, lines);
    n = append(tx_buf, n, "\n");
    if (!send(n, why)) return false;
  }
  if (get_u64(c, "echo", 1, 0, 1) == 1) {
    if (!receive_line(input_ms, dev->timeout_ms, &len, why)) {
      return false;
    }
    n = append(tx_buf, 0, "console: echo ");
    for (uint32_t i = 0; i < len; ++i) tx_buf[n++] = line[i];
    n = append(tx_buf, n, "\n");
    if (!send(n, why)) return false;
    line[len] = 0;
    console_printf("console %s: received \"%s\"\n", dev->location, line);
  }
  return true;
}

void guest_main(const struct hvm_start_info* info) {
  const char* c = pvh_cmdline(info);
  console_printf("console: cmdline: %s\n", c);
  struct virtio_find_options o;
  const char* bad_key = "";
  if (!virtio_find_options_from_cmdline(c, &o, &bad_key)) cmdline_bad_value("console", bad_key);

  struct virtio_dev* devs[VIRTIO_FIND_MAX];
  uint32_t failed = 0;
  uint32_t n = virtio_find(VIRTIO_ID_CONSOLE, &o, devs, &failed);
  if (n == 0) {
    console_printf("console: FAIL: no virtio console found\n");
    guest_debug_exit(EXIT_COUNT);
  }
  const char* why = "";
  if (failed != 0 || !run(devs[0], c, &why)) {
    console_printf("console %s: FAIL: %s\n", devs[0]->location, why);
    guest_debug_exit(GUEST_EXIT_FAILURE);
  }
  console_printf("console %s: ok, %u interrupts\n", devs[0]->location, devs[0]->irq_count);
  guest_debug_exit(0);
}
