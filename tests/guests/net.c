// net.elf: brings up the first virtio-net device on the transport its
// command line names and talks to the host at the other end of the tap:
// an ARP request for 10.0.0.1 from 10.0.0.2, the reply, then an ICMP echo
// to the MAC the reply gave and the echo reply.
//
// Command line (key=value):
//   transport=pci|mmio   where to look for the device                  [pci]
//   merged=0|1           negotiate MRG_RXBUF when offered                [1]
//   ping=0|1             send the ICMP echo after the ARP reply          [1]
//   serve=N              then answer ARP requests for 10.0.0.2 and ICMP
//                        echo requests to it until N echo requests were
//                        answered (the host pings the guest)             [0]
//   irq=poll|msix|mmio-irq   poll the used rings, or sleep until the
//                        device's interrupt: MSI-X (pci), its GSI through
//                        the IOAPIC (mmio)                            [poll]
//   timeout_ms=N         bound of every wait                         [5000]
//   ecam=ADDR mmio_base=ADDR mmio_stride=N mmio_slots=N   the VMM's layout
//                        [0xe0000000, 0xd0000000, 0x1000, 8]
//
// Output:
//   net <pci BB:DD.F | mmio SLOT>: mac xx:xx:xx:xx:xx:xx link up, merged 0|1, ctrl 0|1
//   net: arp reply from 10.0.0.1 at xx:xx:xx:xx:xx:xx
//   net: echo reply from 10.0.0.1 seq 1
//   net: answered <n> echo requests          (serve=N)
//   net: ok (<n> frames received, <n> interrupts)  |  net: FAIL: <why>
// Exit (debug-exit value; the VMM's status is 2v+1): 0 ok; 100 a check
// failed; 102 no virtio-net device; 103 bad command line.
#include "runtime/guest.h"
#include "runtime/ioapic.h"
#include "runtime/irq.h"
#include "runtime/lapic.h"
#include "runtime/mp_table.h"
#include "runtime/pci.h"
#include "runtime/string.h"
#include "runtime/virtio_mmio.h"
#include "runtime/virtio_net.h"
#include "runtime/virtio_pci.h"

#define EXIT_NO_DEVICE 102
#define MAX_PCI_FUNCTIONS 64
// Frames we let go by (IPv6 router and neighbour traffic from the host...)
// before giving up on an answer.
#define MAX_OTHER_FRAMES 64

static const uint8_t kGuestIp[4] = {10, 0, 0, 2};
static const uint8_t kHostIp[4] = {10, 0, 0, 1};
static const uint8_t kBroadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static struct virtio_pci_dev pci_dev;
static struct virtio_mmio_dev mmio_dev;
static struct virtio_net net;
static uint8_t frame[VIRTIO_NET_MAX_FRAME];
static uint8_t reply[VIRTIO_NET_MAX_FRAME];

static __attribute__((noreturn)) void fail(const char* what, const char* why) {
  console_printf("net: FAIL: %s: %s\n", what, why);
  guest_debug_exit(GUEST_EXIT_FAILURE);
}

static __attribute__((noreturn)) void bad_cmdline(const char* key) {
  cmdline_bad_value("net", key);
}

static uint64_t get_u64(const char* cmdline, const char* key, uint64_t def) {
  return cmdline_u64_or_exit(cmdline, "net", key, def, 0, UINT64_MAX);
}

static struct virtio_dev* find_pci(uint64_t ecam) {
  static struct pci_function functions[MAX_PCI_FUNCTIONS];
  pci_select(PCI_ACCESS_ECAM, ecam);
  uint32_t n = pci_enumerate(PCI_ACCESS_ECAM, 1, functions, MAX_PCI_FUNCTIONS);
  for (uint32_t i = 0; i < n; ++i) {
    if (functions[i].vendor != VIRTIO_PCI_VENDOR ||
        functions[i].device != VIRTIO_PCI_MODERN_DEVICE_BASE + VIRTIO_ID_NET) {
      continue;
    }
    const char* why = "";
    if (!virtio_pci_probe(&pci_dev, functions[i].bdf, &why)) fail("pci probe", why);
    const uint16_t bdf = functions[i].bdf;
    const char* hex = "0123456789abcdef";
    char* l = pci_dev.vdev.location;
    l[0] = hex[PCI_BUS(bdf) >> 4];
    l[1] = hex[PCI_BUS(bdf) & 15];
    l[2] = ':';
    l[3] = hex[PCI_DEV(bdf) >> 4];
    l[4] = hex[PCI_DEV(bdf) & 15];
    l[5] = '.';
    l[6] = (char)('0' + PCI_FN(bdf));
    l[7] = '\0';
    return &pci_dev.vdev;
  }
  return 0;
}

static struct virtio_dev* find_mmio(uint64_t base, uint64_t stride, uint64_t slots) {
  for (uint32_t i = 0; i < slots; ++i) {
    const char* why = "";
    enum virtio_mmio_probe_result r =
        virtio_mmio_probe(&mmio_dev, base + i * stride, i, 16 + i, &why);
    if (r == VIRTIO_MMIO_EMPTY) continue;
    if (r == VIRTIO_MMIO_UNSUPPORTED) fail("mmio probe", why);
    if (mmio_dev.vdev.device_type != VIRTIO_ID_NET) continue;
    mmio_dev.vdev.location[0] = (char)('0' + i % 10);
    mmio_dev.vdev.location[1] = '\0';
    return &mmio_dev.vdev;
  }
  return 0;
}

static void put16(uint8_t* p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t* p) { return (uint16_t)((p[0] << 8) | p[1]); }

// The Internet checksum (RFC 1071) of `len` bytes.
static uint16_t inet_checksum(const uint8_t* p, uint32_t len) {
  uint32_t sum = 0;
  for (uint32_t i = 0; i + 1 < len; i += 2) sum += get16(p + i);
  if (len & 1) sum += (uint32_t)p[len - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

static void ethernet(uint8_t* f, const uint8_t* dst, uint16_t type) {
  memcpy(f, dst, 6);
  memcpy(f + 6, net.mac, 6);
  put16(f + 12, type);
}

static void print_mac(const char* prefix, const uint8_t* mac, const char* suffix) {
  console_printf("%s%02x:%02x:%02x:%02x:%02x:%02x%s", prefix, mac[0], mac[1], mac[2], mac[3],
                 mac[4], mac[5], suffix);
}

// Receives until `match` accepts a frame; other frames are skipped.
static void await(bool (*match)(const uint8_t*, uint32_t), const char* what) {
  for (int i = 0; i < MAX_OTHER_FRAMES; ++i) {
    uint32_t len = 0;
    const char* why = "";
    if (!virtio_net_recv(&net, reply, sizeof(reply), &len, &why)) fail(what, why);
    if (len <= sizeof(reply) && match(reply, len)) return;
  }
  fail(what, "only other frames arrived");
}

static uint8_t host_mac[6];

static bool is_arp_reply(const uint8_t* f, uint32_t len) {
  const uint8_t* a = f + 14;
  if (len < 42 || get16(f + 12) != 0x0806 || memcmp(f, net.mac, 6) != 0) return false;
  if (get16(a) != 1 || get16(a + 2) != 0x0800 || a[4] != 6 || a[5] != 4 || get16(a + 6) != 2) {
    return false;
  }
  if (memcmp(a + 14, kHostIp, 4) != 0 || memcmp(a + 18, net.mac, 6) != 0 ||
      memcmp(a + 24, kGuestIp, 4) != 0) {
    return false;
  }
  memcpy(host_mac, a + 8, 6);
  return true;
}

#define ECHO_ID 0x766d  // "vm"
#define ECHO_SEQ 1
#define ECHO_PAYLOAD 32

static bool is_echo_reply(const uint8_t* f, uint32_t len) {
  const uint8_t* ip = f + 14;
  if (len < 14 + 20 + 8 + ECHO_PAYLOAD || get16(f + 12) != 0x0800) return false;
  if (ip[0] != 0x45 || ip[9] != 1 || memcmp(ip + 12, kHostIp, 4) != 0 ||
      memcmp(ip + 16, kGuestIp, 4) != 0) {
    return false;
  }
  const uint8_t* icmp = ip + 20;
  if (icmp[0] != 0 || get16(icmp + 4) != ECHO_ID || get16(icmp + 6) != ECHO_SEQ) return false;
  for (uint32_t i = 0; i < ECHO_PAYLOAD; ++i) {
    if (icmp[8 + i] != (uint8_t)(i * 3)) return false;
  }
  return inet_checksum(icmp, 8 + ECHO_PAYLOAD) == 0;
}

static void arp(void) {
  memset(frame, 0, sizeof(frame));
  ethernet(frame, kBroadcast, 0x0806);
  uint8_t* a = frame + 14;
  put16(a, 1);          // Ethernet
  put16(a + 2, 0x0800);  // IPv4
  a[4] = 6;
  a[5] = 4;
  put16(a + 6, 1);  // request
  memcpy(a + 8, net.mac, 6);
  memcpy(a + 14, kGuestIp, 4);
  memcpy(a + 24, kHostIp, 4);
  const char* why = "";
  if (!virtio_net_send(&net, frame, 60, &why)) fail("send arp request", why);
  await(is_arp_reply, "arp reply");
  print_mac("net: arp reply from 10.0.0.1 at ", host_mac, "\n");
}

static void ping(void) {
  memset(frame, 0, sizeof(frame));
  ethernet(frame, host_mac, 0x0800);
  uint8_t* ip = frame + 14;
  const uint16_t ip_len = 20 + 8 + ECHO_PAYLOAD;
  ip[0] = 0x45;
  put16(ip + 2, ip_len);
  put16(ip + 4, 1);  // id
  ip[8] = 64;        // ttl
  ip[9] = 1;         // ICMP
  memcpy(ip + 12, kGuestIp, 4);
  memcpy(ip + 16, kHostIp, 4);
  put16(ip + 10, inet_checksum(ip, 20));
  uint8_t* icmp = ip + 20;
  icmp[0] = 8;  // echo request
  put16(icmp + 4, ECHO_ID);
  put16(icmp + 6, ECHO_SEQ);
  for (uint32_t i = 0; i < ECHO_PAYLOAD; ++i) icmp[8 + i] = (uint8_t)(i * 3);
  put16(icmp + 2, inet_checksum(icmp, 8 + ECHO_PAYLOAD));
  const char* why = "";
  if (!virtio_net_send(&net, frame, 14 + ip_len, &why)) fail("send echo request", why);
  await(is_echo_reply, "echo reply");
  console_printf("net: echo reply from 10.0.0.1 seq %u\n", ECHO_SEQ);
}

// Answers the host: ARP requests for our address and echo requests to it,
// until `count` echo requests were answered. Waits sleep on the device's
// interrupt when irq != poll.
static bool any_interrupt(void* arg) { return ((struct virtio_dev*)arg)->irq_count != 0; }

static void serve(uint64_t count) {
  uint32_t answered = 0;
  int idle = 0;
  while (answered < count) {
    uint32_t len = 0;
    const char* why = "";
    if (!virtio_net_recv(&net, reply, sizeof(reply), &len, &why)) {
      if (++idle < 3) continue;  // the host pings about once a second
      fail("serve", why);
    }
    if (len > sizeof(reply)) continue;
    const uint8_t* a = reply + 14;
    if (len >= 42 && get16(reply + 12) == 0x0806 && get16(a + 6) == 1 &&
        memcmp(a + 24, kGuestIp, 4) == 0) {
      memset(frame, 0, 60);
      ethernet(frame, a + 8, 0x0806);
      memcpy(frame + 14, a, 8);
      put16(frame + 14 + 6, 2);  // reply
      memcpy(frame + 14 + 8, net.mac, 6);
      memcpy(frame + 14 + 14, kGuestIp, 4);
      memcpy(frame + 14 + 18, a + 8, 10);  // their MAC and IP
      if (!virtio_net_send(&net, frame, 60, &why)) fail("send arp reply", why);
      continue;
    }
    const uint8_t* ip = reply + 14;
    if (len < 14 + 20 + 8 || get16(reply + 12) != 0x0800 || ip[0] != 0x45 || ip[9] != 1 ||
        memcmp(ip + 16, kGuestIp, 4) != 0 || ip[20] != 8) {
      continue;
    }
    const uint32_t ip_len = get16(ip + 2);
    if (ip_len < 28 || 14 + ip_len > len) continue;
    memcpy(frame, reply, 14 + ip_len);
    memcpy(frame, reply + 6, 6);  // back to the sender
    memcpy(frame + 6, net.mac, 6);
    memcpy(frame + 14 + 12, ip + 16, 4);  // swapped addresses: same IP checksum
    memcpy(frame + 14 + 16, ip + 12, 4);
    uint8_t* icmp = frame + 14 + 20;
    icmp[0] = 0;  // echo reply
    put16(icmp + 2, 0);
    put16(icmp + 2, inet_checksum(icmp, ip_len - 20));
    if (!virtio_net_send(&net, frame, 14 + ip_len, &why)) fail("send echo reply", why);
    ++answered;
  }
  console_printf("net: answered %u echo requests\n", answered);
}

void guest_main(const struct hvm_start_info* info) {
  const char* c = pvh_cmdline(info);
  console_printf("net: cmdline: %s\n", c);
  bool use_mmio = false;
  if (cmdline_equals(c, "transport", "mmio")) {
    use_mmio = true;
  } else if (cmdline_find(c, "transport", 0) != 0 && !cmdline_equals(c, "transport", "pci")) {
    bad_cmdline("transport");
  }
  const uint64_t merged = get_u64(c, "merged", 1);
  const uint64_t do_ping = get_u64(c, "ping", 1);
  if (merged > 1) bad_cmdline("merged");
  if (do_ping > 1) bad_cmdline("ping");
  const uint64_t timeout_ms = get_u64(c, "timeout_ms", 5000);
  const uint64_t serve_count = get_u64(c, "serve", 0);
  enum virtio_irq_mode irq_mode = VIRTIO_IRQ_POLL;
  if (cmdline_equals(c, "irq", "msix")) {
    irq_mode = VIRTIO_IRQ_MSIX;
  } else if (cmdline_equals(c, "irq", "mmio-irq")) {
    irq_mode = VIRTIO_IRQ_GSI;
  } else if (cmdline_find(c, "irq", 0) != 0 && !cmdline_equals(c, "irq", "poll")) {
    bad_cmdline("irq");
  }
  if ((irq_mode == VIRTIO_IRQ_MSIX && use_mmio) || (irq_mode == VIRTIO_IRQ_GSI && !use_mmio)) {
    bad_cmdline("irq");
  }
  struct mp_info mp;
  const char* why = "";
  if (!mp_find_cpus(&mp, &why)) console_printf("mp: %s; assuming one cpu\n", why);
  irq_init(mp.lapic_paddr);

  struct virtio_dev* dev =
      use_mmio ? find_mmio(get_u64(c, "mmio_base", 0xd0000000u), get_u64(c, "mmio_stride", 0x1000),
                           get_u64(c, "mmio_slots", 8))
               : find_pci(get_u64(c, "ecam", 0xe0000000u));
  if (dev == 0) {
    console_printf("net: FAIL: no virtio-net device on %s\n", use_mmio ? "mmio" : "pci");
    guest_debug_exit(EXIT_NO_DEVICE);
  }
  dev->irq_mode = irq_mode;
  dev->vector = IRQ_DEVICE_VECTOR_BASE;
  dev->apic_id = (uint8_t)lapic_self_id();
  dev->irq_count = 0;
  if (use_mmio) mmio_dev.ioapic = (struct ioapic){IOAPIC_DEFAULT_PADDR, 0};
  dev->timeout_ms = (uint32_t)timeout_ms;
  if (!virtio_net_init(&net, dev, merged == 1, &why)) fail("init", why);
  console_printf("net %s %s: mac ", use_mmio ? "mmio" : "pci", dev->location);
  print_mac("", net.mac, "");
  console_printf(" link %s, merged %u, ctrl %u\n",
                 (net.status & VIRTIO_NET_S_LINK_UP) ? "up" : "down", net.merged ? 1 : 0,
                 net.has_ctrl ? 1 : 0);
  if (!(net.status & VIRTIO_NET_S_LINK_UP)) fail("status", "link down");
  if (net.has_ctrl && !virtio_net_ctrl_rx(&net, VIRTIO_NET_CTRL_RX_PROMISC, 1, &why)) {
    fail("promisc on", why);
  }
  arp();
  if (do_ping) ping();
  if (serve_count > 0) serve(serve_count);
  uint8_t vector = 0;
  if (irq_unexpected(&vector) != 0) fail("interrupts", "on unexpected vectors");
  // Waiting for the host's pings sleeps: the device must have woken us.
  // (The frames may have been in the used ring before we first looked — a
  // quick host, or a vCPU that ran ahead of vmm's event loop on a loaded
  // machine — so that we never slept: their interrupt is then still on its
  // way. Wait for it rather than race it.)
  if (irq_mode != VIRTIO_IRQ_POLL && serve_count > 0 && dev->irq_count == 0 &&
      !irq_wait(any_interrupt, dev, dev->timeout_ms)) {
    fail("interrupts", "none arrived");
  }
  console_printf("net: ok (%u frames received, %u interrupts)\n", net.rx_frames,
                 dev->irq_count);
  guest_debug_exit(0);
}
