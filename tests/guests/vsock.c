// vsock.elf: a minimal virtio-vsock driver (virtio 1.x 5.10) that checks a
// stream echo in each direction against the host side of vmm's vsock
// (Firecracker's Unix-socket protocol; tests/kvm/vsock_test.cc plays the
// host):
//   1. listens on port 1234: accepts the host's connection (REQUEST ->
//      RESPONSE), echoes every byte it receives (within the device's
//      credit; a CREDIT_REQUEST is answered with CREDIT_UPDATE), and answers
//      the host's SHUTDOWN with RST;
//   2. connects to host port 5678, sends "ping from the guest", expects the
//      same bytes back, then shuts down and waits for the host's RST.
// Polled (no interrupts); credit: buf_alloc 4 KiB, fwd_cnt = bytes read.
//
// Command line (key=value):
//   transport=pci|mmio   where the device is            [pci]
//   cid=N                fail unless the config says N  [any]
//   timeout_ms=N         bound of every wait            [20000]
//
// Output: "vsock <pci BB:DD.F|mmio N>: cid <n>", "vsock: listening on 1234",
// "vsock: echoed <n> bytes on 1234", "vsock: answered <n> credit requests",
// "vsock: 5678 echo ok", "vsock: ok".
// Exit (debug-exit value; the VMM's status is 2v+1): 0 ok; 100 a check
// failed; 102 no vsock device; 103 bad command line.
#include "runtime/guest.h"
#include "runtime/string.h"
#include "runtime/virtio_find.h"
#include "runtime/virtqueue.h"

#define VIRTIO_ID_VSOCK 19
#define EXIT_NO_DEVICE 102

#define HOST_CID 2
#define LISTEN_PORT 1234
#define HOST_PORT 5678
#define LOCAL_PORT 49152
// Small on purpose: the host sends more than this, so the device must stop
// at our credit, ask (CREDIT_REQUEST) and resume on our CREDIT_UPDATE.
#define BUF_ALLOC 4096
#define RX_BUFS 8
#define RX_PAYLOAD 1024
#define QSIZE 16

// virtio 1.x 5.10.6: the packet header, little-endian.
struct virtio_vsock_hdr {
  uint64_t src_cid;
  uint64_t dst_cid;
  uint32_t src_port;
  uint32_t dst_port;
  uint32_t len;
  uint16_t type;
  uint16_t op;
  uint32_t flags;
  uint32_t buf_alloc;
  uint32_t fwd_cnt;
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_vsock_hdr) == 44, "vsock header is 44 bytes");

#define VIRTIO_VSOCK_TYPE_STREAM 1
#define VIRTIO_VSOCK_OP_REQUEST 1
#define VIRTIO_VSOCK_OP_RESPONSE 2
#define VIRTIO_VSOCK_OP_RST 3
#define VIRTIO_VSOCK_OP_SHUTDOWN 4
#define VIRTIO_VSOCK_OP_RW 5
#define VIRTIO_VSOCK_OP_CREDIT_UPDATE 6
#define VIRTIO_VSOCK_OP_CREDIT_REQUEST 7
#define VIRTIO_VSOCK_SHUTDOWN_RCV 1
#define VIRTIO_VSOCK_SHUTDOWN_SEND 2

struct packet {
  struct virtio_vsock_hdr hdr;
  uint8_t data[RX_PAYLOAD];
} __attribute__((packed));

static struct virtio_dev* dev;
static struct virtq rxq, txq;
static struct packet rx_bufs[RX_BUFS];
static struct virtio_vsock_hdr tx_hdr;
static uint8_t tx_data[RX_PAYLOAD];
static uint64_t guest_cid;
static uint32_t fwd_cnt;  // payload bytes consumed on the current connection
static uint32_t sent_fwd_cnt;  // fwd_cnt in our last header
// The host's credit on the current connection, from its last header.
static uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
static uint32_t credit_requests;  // CREDIT_REQUESTs answered

static __attribute__((noreturn)) void fail(const char* what, const char* why) {
  console_printf("vsock: FAIL: %s%s%s\n", what, why[0] ? ": " : "", why);
  guest_debug_exit(GUEST_EXIT_FAILURE);
}

static void give_rx(struct packet* p) {
  struct virtq_buf buf = {p, sizeof(*p), true};
  if (!virtq_add(&rxq, &buf, 1, p)) fail("rx queue full", "");
}

static bool find_device(const char* cmdline) {
  const bool mmio = cmdline_equals(cmdline, "transport", "mmio");
  struct virtio_find_options o = {.pci = !mmio, .mmio = mmio};
  struct virtio_dev* found[VIRTIO_FIND_MAX];
  uint32_t failed = 0;
  if (virtio_find(VIRTIO_ID_VSOCK, &o, found, &failed) == 0) return false;
  dev = found[0];
  console_printf("vsock %s: found\n", dev->location);
  return true;
}

// Sends one packet (header + `len` bytes of tx_data) and waits until the
// device has taken it.
static void send(uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t len,
                 uint32_t flags) {
  memset(&tx_hdr, 0, sizeof(tx_hdr));
  tx_hdr.src_cid = guest_cid;
  tx_hdr.dst_cid = HOST_CID;
  tx_hdr.src_port = src_port;
  tx_hdr.dst_port = dst_port;
  tx_hdr.len = len;
  tx_hdr.type = VIRTIO_VSOCK_TYPE_STREAM;
  tx_hdr.op = op;
  tx_hdr.flags = flags;
  tx_hdr.buf_alloc = BUF_ALLOC;
  tx_hdr.fwd_cnt = fwd_cnt;
  sent_fwd_cnt = fwd_cnt;
  struct virtq_buf bufs[2] = {{&tx_hdr, sizeof(tx_hdr), false}, {tx_data, len, false}};
  if (!virtq_add(&txq, bufs, len ? 2 : 1, &tx_hdr)) fail("tx queue full", "");
  virtq_kick(&txq);
  const char* why = "";
  if (!virtq_wait(&txq, &why)) fail("tx", why);
  void* cookie;
  uint32_t used;
  if (!virtq_pop_used(&txq, &cookie, &used, &why)) fail("tx pop", why);
}

// The next packet from the device, copied to *out; its buffer goes back.
static void receive(struct packet* out) {
  const char* why = "";
  if (!virtq_wait(&rxq, &why)) fail("waiting for a packet", why);
  void* cookie;
  uint32_t len;
  if (!virtq_pop_used(&rxq, &cookie, &len, &why)) fail("rx pop", why);
  struct packet* p = cookie;
  if (len < sizeof(p->hdr) || len > sizeof(*p) || p->hdr.len != len - sizeof(p->hdr)) {
    fail("rx packet with a bad length", "");
  }
  memcpy(out, p, len);
  if (p->hdr.src_cid != HOST_CID || p->hdr.dst_cid != guest_cid) {
    fail("rx packet with wrong cids", "");
  }
  give_rx(p);
  virtq_kick(&rxq);
}

// Waits for a packet on connection (local, peer) that is not a credit
// update; RW payload counts as consumed at once.
static void receive_on(uint32_t local, uint32_t peer, struct packet* p) {
  for (;;) {
    receive(p);
    if (p->hdr.dst_port != local || p->hdr.src_port != peer) {
      fail("packet for an unexpected connection", "");
    }
    peer_buf_alloc = p->hdr.buf_alloc;
    peer_fwd_cnt = p->hdr.fwd_cnt;
    if (p->hdr.op == VIRTIO_VSOCK_OP_RW) {
      fwd_cnt += p->hdr.len;
      // Never more in flight than the credit we granted.
      if ((uint32_t)(fwd_cnt - sent_fwd_cnt) > BUF_ALLOC) fail("the device exceeded our credit", "");
    }
    if (p->hdr.op == VIRTIO_VSOCK_OP_CREDIT_REQUEST) {
      send(VIRTIO_VSOCK_OP_CREDIT_UPDATE, local, peer, 0, 0);
      ++credit_requests;
      continue;
    }
    if (p->hdr.op != VIRTIO_VSOCK_OP_CREDIT_UPDATE) return;
  }
}

static void serve_echo(void) {
  static struct packet p;
  console_printf("vsock: listening on %u\n", LISTEN_PORT);
  receive(&p);
  if (p.hdr.op != VIRTIO_VSOCK_OP_REQUEST || p.hdr.dst_port != LISTEN_PORT) {
    fail("expected a REQUEST to port 1234", "");
  }
  uint32_t peer = p.hdr.src_port;
  fwd_cnt = sent_fwd_cnt = tx_cnt = 0;
  peer_buf_alloc = p.hdr.buf_alloc;
  peer_fwd_cnt = p.hdr.fwd_cnt;
  send(VIRTIO_VSOCK_OP_RESPONSE, LISTEN_PORT, peer, 0, 0);
  uint32_t echoed = 0;
  for (;;) {
    receive_on(LISTEN_PORT, peer, &p);
    if (p.hdr.op == VIRTIO_VSOCK_OP_RW) {
      // The host socket takes what we send at once, so the device's credit
      // (its buf_alloc minus what is not yet in the socket) never runs out
      // here; a device that says otherwise fails the test.
      if ((uint32_t)(tx_cnt - peer_fwd_cnt) + p.hdr.len > peer_buf_alloc) {
        fail("the device's credit ran out", "");
      }
      memcpy(tx_data, p.data, p.hdr.len);
      send(VIRTIO_VSOCK_OP_RW, LISTEN_PORT, peer, p.hdr.len, 0);
      tx_cnt += p.hdr.len;
      echoed += p.hdr.len;
    } else if (p.hdr.op == VIRTIO_VSOCK_OP_SHUTDOWN) {
      send(VIRTIO_VSOCK_OP_RST, LISTEN_PORT, peer, 0, 0);
      break;
    } else {
      fail("unexpected op on the echo connection", "");
    }
  }
  if (echoed == 0) fail("the host sent nothing to echo", "");
  console_printf("vsock: echoed %u bytes on %u\n", echoed, LISTEN_PORT);
  console_printf("vsock: answered %u credit requests\n", credit_requests);
}

static void connect_and_check(void) {
  static const char kMessage[] = "ping from the guest";
  const uint32_t len = sizeof(kMessage) - 1;
  static struct packet p;
  fwd_cnt = sent_fwd_cnt = tx_cnt = 0;  // counters are per connection
  send(VIRTIO_VSOCK_OP_REQUEST, LOCAL_PORT, HOST_PORT, 0, 0);
  receive_on(LOCAL_PORT, HOST_PORT, &p);
  if (p.hdr.op != VIRTIO_VSOCK_OP_RESPONSE) fail("connect to host port 5678 refused", "");
  memcpy(tx_data, kMessage, len);
  send(VIRTIO_VSOCK_OP_RW, LOCAL_PORT, HOST_PORT, len, 0);
  static uint8_t got[sizeof(kMessage)];
  uint32_t have = 0;
  while (have < len) {
    receive_on(LOCAL_PORT, HOST_PORT, &p);
    if (p.hdr.op != VIRTIO_VSOCK_OP_RW || have + p.hdr.len > len) {
      fail("expected the echo of our bytes", "");
    }
    memcpy(got + have, p.data, p.hdr.len);
    have += p.hdr.len;
  }
  if (memcmp(got, kMessage, len) != 0) fail("the echo differs from what we sent", "");
  console_printf("vsock: %u echo ok\n", HOST_PORT);
  send(VIRTIO_VSOCK_OP_SHUTDOWN, LOCAL_PORT, HOST_PORT, 0,
       VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND);
  receive_on(LOCAL_PORT, HOST_PORT, &p);
  if (p.hdr.op != VIRTIO_VSOCK_OP_RST) fail("expected RST after our SHUTDOWN", "");
}

void guest_main(const struct hvm_start_info* info) {
  const char* cmdline = pvh_cmdline(info);
  console_printf("vsock: cmdline: %s\n", cmdline);
  uint64_t timeout_ms = 20000;
  uint64_t want_cid = 0;
  if ((cmdline_find(cmdline, "timeout_ms", 0) && !cmdline_get_u64(cmdline, "timeout_ms", &timeout_ms)) ||
      (cmdline_find(cmdline, "cid", 0) && !cmdline_get_u64(cmdline, "cid", &want_cid))) {
    console_puts("vsock: FAIL: bad command line\n");
    guest_debug_exit(GUEST_EXIT_BAD_CMDLINE);
  }
  if (!find_device(cmdline)) {
    console_puts("vsock: FAIL: no virtio-vsock device\n");
    guest_debug_exit(EXIT_NO_DEVICE);
  }
  dev->irq_mode = VIRTIO_IRQ_POLL;
  dev->timeout_ms = (uint32_t)timeout_ms;
  const char* why = "";
  if (!virtio_negotiate(dev, 0, &why)) fail("negotiate", why);
  guest_cid = virtio_config_read64(dev, 0);
  console_printf("vsock: cid %lu\n", (unsigned long)guest_cid);
  if (want_cid != 0 && guest_cid != want_cid) fail("config guest_cid differs", "");
  if (!virtq_init(&rxq, dev, 0, QSIZE, false, &why)) fail("rx queue", why);
  if (!virtq_init(&txq, dev, 1, QSIZE, false, &why)) fail("tx queue", why);
  if (!virtio_driver_ok(dev, &why)) fail("DRIVER_OK", why);
  for (int i = 0; i < RX_BUFS; ++i) give_rx(&rx_bufs[i]);
  virtq_kick(&rxq);

  serve_echo();
  connect_and_check();
  console_puts("vsock: ok\n");
  guest_debug_exit(0);
}
