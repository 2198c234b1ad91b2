// Host-driven virtio-net figures on a real tap (needs root; runs in a private
// network namespace, so nothing leaves the machine):
//
//  1. 64-byte frames tap -> guest -> tap. A packet socket on the tap plays
//     the host and sends a batch; the device's RX path (OnBackendReadable, as
//     the event loop calls it) puts the frames in guest buffers; the "guest"
//     (a FakeVirtqueueDriver in this process) reposts each one, header and
//     all, as a transmit chain; the device's TX path (ProcessQueue) writes
//     them back to the tap. Timed: the device calls only. Baseline: a plain
//     read() + writev() echo loop on another tap fd, the least any tap-based
//     VMM does per frame.
//  2. 64 KiB TSO frames guest -> tap (HOST_TSO4: partial checksum,
//     gso_size 1448) through the device's TX path. Baseline: writev of the
//     same header and frame straight to a tap.
//
// Rounds alternate device and baseline; medians are printed with the ratio
// device / baseline (higher is better, 1.0 = no overhead over the syscalls).
// On PVM hosts syscalls are slow, so both sides are dominated by the kernel.
//
//   ninja -C build tests/unit/devices/virtio/net/net_tap_bench
//   sudo build/tests/unit/devices/virtio/net/net_tap_bench
#include <arpa/inet.h>
#include <linux/if.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/event_loop.h"
#include "base/lock_checks.h"
#include "base/unique_fd.h"
#include "devices/virtio/net/tap.h"
#include "devices/virtio/net/virtio_net.h"
#include "devices/virtio/net/virtio_net_spec.h"
#include "tests/fakes/fake_virtio_context.h"
#include "tests/fakes/fake_virtqueue_driver.h"
#include "tests/fakes/test_guest_memory.h"

namespace vmm {
namespace {

using testing::FakeVirtioContext;
using testing::FakeVirtqueueDriver;
using testing::FakeVirtqueueDriverOptions;
using Clock = std::chrono::steady_clock;

constexpr int kRounds = 5;
constexpr int kBatch = 128;
constexpr int kBatches = 200;
constexpr int kTsoFrames = 1000;
constexpr uint16_t kEtherType = 0x88b5;  // IEEE 802 local experimental

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Brings `name` up (no IPv6 chatter, a queue long enough for a batch) and
// returns a packet socket bound to it.
UniqueFd Peer(const char* name) {
  UniqueFd inet(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  ::ioctl(inet.get(), SIOCGIFFLAGS, &ifr);
  ifr.ifr_flags |= IFF_UP;
  ::ioctl(inet.get(), SIOCSIFFLAGS, &ifr);
  ::ioctl(inet.get(), SIOCGIFINDEX, &ifr);
  const int index = ifr.ifr_ifindex;
  std::string sysctl = std::string("/proc/sys/net/ipv6/conf/") + name + "/disable_ipv6";
  if (FILE* f = fopen(sysctl.c_str(), "w")) {
    fputs("1", f);
    fclose(f);
  }
  ifr.ifr_qlen = 4096;
  ::ioctl(inet.get(), SIOCSIFTXQLEN, &ifr);
  UniqueFd peer(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL)));
  sockaddr_ll addr{};
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = htons(ETH_P_ALL);
  addr.sll_ifindex = index;
  if (::bind(peer.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) perror("bind");
  int rcvbuf = 16 << 20;
  setsockopt(peer.get(), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
  return peer;
}

void Drain(int fd) {
  static std::vector<uint8_t> sink(70000);
  while (::recv(fd, sink.data(), sink.size(), MSG_DONTWAIT | MSG_TRUNC) > 0) {
  }
}

std::vector<uint8_t> SmallFrame() {
  std::vector<uint8_t> f(64, 0);
  std::memset(f.data(), 0xff, 6);
  f[6] = 0x52;
  f[7] = 0x54;
  f[11] = 1;
  f[12] = kEtherType >> 8;
  f[13] = kEtherType & 0xff;
  return f;
}

// A 64 KiB TCPv4 frame to an address nobody has, and the header that makes
// it a TSO frame.
std::vector<uint8_t> TsoFrame(virtio_net::Header* h) {
  std::vector<uint8_t> f(65536, 0);
  std::memset(f.data(), 0xff, 6);
  f[6] = 0x52;
  f[7] = 0x54;
  f[11] = 1;
  f[12] = 0x08;
  uint8_t* ip = &f[14];
  const size_t ip_len = f.size() - 14;
  ip[0] = 0x45;
  ip[2] = static_cast<uint8_t>(ip_len >> 8);
  ip[3] = static_cast<uint8_t>(ip_len);
  ip[6] = 0x40;
  ip[8] = 64;
  ip[9] = 6;
  ip[12] = 10;
  ip[15] = 2;
  ip[16] = 10;
  ip[17] = 9;
  ip[19] = 9;
  uint8_t* tcp = ip + 20;
  tcp[1] = 80;
  tcp[3] = 80;
  tcp[12] = 0x50;
  tcp[13] = 0x18;
  tcp[14] = 0xff;
  *h = {};
  h->flags = 1;     // NEEDS_CSUM
  h->gso_type = 1;  // TCPV4
  h->hdr_len = 54;
  h->gso_size = 1448;
  h->csum_start = 34;
  h->csum_offset = 16;
  return f;
}

// A VirtioNet on tap `name` with receiveq, transmitq and controlq driven by
// FakeVirtqueueDrivers, activated with `features`.
struct Rig {
  GuestMemory mem = testing::TestGuestMemory(64 << 20);
  std::unique_ptr<EventLoop> loop;
  FakeVirtioContext ctx;
  std::unique_ptr<VirtioNet> dev;
  std::vector<std::unique_ptr<FakeVirtqueueDriver>> drivers;
  UniqueFd peer;

  bool Start(const char* name, uint64_t features) {
    auto tap = Tap::Open(name, 1);
    auto l = EventLoop::Create();
    if (!tap.ok() || !l.ok()) return false;
    loop = std::move(*l);
    peer = Peer(name);
    dev = std::make_unique<VirtioNet>(std::move(*tap), std::array<uint8_t, 6>{0x52, 0x54, 0, 0, 0, 2},
                                      loop.get());
    VirtioActivation a;
    a.memory = &mem;
    a.context = &ctx;
    a.features = features & dev->device_features();
    for (int i = 0; i < 3; ++i) {
      FakeVirtqueueDriverOptions o;
      o.size = 256;
      o.ring_base = GuestAddress(0x10000 * (i + 1));
      o.data_base = GuestAddress(0x1000000 * (i + 1));
      o.data_size = 0xc00000;
      o.event_idx = true;
      drivers.push_back(std::make_unique<FakeVirtqueueDriver>(mem, o));
      auto vq = Virtqueue::Create(drivers.back()->config(), mem);
      if (!vq.ok()) return false;
      a.queues.push_back(std::move(*vq));
      a.queue_enabled.push_back(true);
    }
    if (!dev->Activate(std::move(a)).ok()) return false;
    // Receive buffers the way Linux posts them with MRG_RXBUF (reposted as
    // they are used).
    for (int i = 0; i < 200; ++i) drivers[0]->AddChainBytes({}, {2048}, false);
    drivers[0]->Publish();
    return true;
  }
};

// Frames/s through the device, both ways, timing the device calls only.
double SmallDevice(Rig& rig) {
  FakeVirtqueueDriver& rx = *rig.drivers[0];
  FakeVirtqueueDriver& tx = *rig.drivers[1];
  std::vector<uint8_t> frame = SmallFrame();
  const uint64_t before = rig.dev->stats().tx_frames;
  Clock::duration t{};
  for (int b = 0; b < kBatches; ++b) {
    for (int i = 0; i < kBatch; ++i) (void)::send(rig.peer.get(), frame.data(), frame.size(), 0);
    auto t0 = Clock::now();
    rig.dev->OnBackendReadable(0);
    t += Clock::now() - t0;
    for (auto& u : rx.PopAllUsed()) {
      tx.AddChainBytes({u.written}, {}, false);
      rx.AddChainBytes({}, {2048}, false);
    }
    tx.Publish();
    rx.Publish();
    t0 = Clock::now();
    rig.dev->ProcessQueue(1);
    rig.dev->ProcessQueue(0);
    t += Clock::now() - t0;
    tx.PopAllUsed();
    Drain(rig.peer.get());
  }
  return (rig.dev->stats().tx_frames - before) / Seconds(t);
}

double SmallBaseline(Tap& tap, int peer) {
  std::vector<uint8_t> frame = SmallFrame();
  std::vector<uint8_t> buf(70000);
  uint64_t echoed = 0;
  Clock::duration t{};
  for (int b = 0; b < kBatches; ++b) {
    for (int i = 0; i < kBatch; ++i) (void)::send(peer, frame.data(), frame.size(), 0);
    auto t0 = Clock::now();
    for (;;) {
      auto n = tap.ReadFrame(0, absl::MakeSpan(buf));
      if (!n.ok() || *n == 0) break;
      iovec one{buf.data(), *n};
      echoed += tap.WriteFrame(0, absl::MakeConstSpan(&one, 1)).ok();
    }
    t += Clock::now() - t0;
    Drain(peer);
  }
  return echoed / Seconds(t);
}

// Gbit/s of header + frame handed to the tap.
double TsoDevice(Rig& rig) {
  FakeVirtqueueDriver& tx = *rig.drivers[1];
  virtio_net::Header h;
  std::vector<uint8_t> frame = TsoFrame(&h);
  std::vector<VirtioBuffer> pieces = {
      tx.PlaceBytes(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(&h), sizeof(h)))};
  for (size_t off = 0; off < frame.size(); off += 4096) {
    pieces.push_back(tx.PlaceBytes(absl::MakeConstSpan(frame.data() + off, 4096)));
  }
  const uint64_t before = rig.dev->stats().tx_bytes;
  Clock::duration t{};
  for (int i = 0; i < kTsoFrames; i += 8) {
    for (int j = 0; j < 8; ++j) tx.AddChain(pieces, {}, false);
    tx.Publish();
    auto t0 = Clock::now();
    rig.dev->ProcessQueue(1);
    t += Clock::now() - t0;
    tx.PopAllUsed();
    Drain(rig.peer.get());
  }
  return (rig.dev->stats().tx_bytes - before) * 8 / Seconds(t) / 1e9;
}

double TsoBaseline(Tap& tap, int peer) {
  virtio_net::Header h;
  std::vector<uint8_t> frame = TsoFrame(&h);
  std::vector<iovec> iov = {{&h, sizeof(h)}};
  for (size_t off = 0; off < frame.size(); off += 4096) iov.push_back({frame.data() + off, 4096});
  uint64_t bytes = 0;
  Clock::duration t{};
  for (int i = 0; i < kTsoFrames; i += 8) {
    auto t0 = Clock::now();
    for (int j = 0; j < 8; ++j) {
      if (tap.WriteFrame(0, iov).ok()) bytes += sizeof(h) + frame.size();
    }
    t += Clock::now() - t0;
    Drain(peer);
  }
  return bytes * 8 / Seconds(t) / 1e9;
}

int Run() {
  if (::unshare(CLONE_NEWNET) != 0) {
    perror("unshare(CLONE_NEWNET) (needs root)");
    return 1;
  }
  Rig small, tso;
  const uint64_t kMerged = kVirtioFVersion1 | kVirtioFEventIdx | (1ull << virtio_net::kFMrgRxbuf);
  if (!small.Start("bench0", kMerged) ||
      !tso.Start("bench1", kMerged | (1ull << virtio_net::kFCsum) |
                               (1ull << virtio_net::kFHostTso4))) {
    fprintf(stderr, "cannot set up the taps\n");
    return 1;
  }
  auto base_tap = Tap::Open("bench2", 1);
  if (!base_tap.ok()) return 1;
  UniqueFd base_peer = Peer("bench2");

  std::vector<double> small_dev, small_base, tso_dev, tso_base;
  for (int r = 0; r < kRounds; ++r) {
    small_dev.push_back(SmallDevice(small));
    small_base.push_back(SmallBaseline(**base_tap, base_peer.get()));
    tso_dev.push_back(TsoDevice(tso));
    tso_base.push_back(TsoBaseline(**base_tap, base_peer.get()));
  }
  const VirtioNetStats s = small.dev->stats(), t = tso.dev->stats();
  printf("virtio-net on a tap, host-driven, median of %d rounds\n", kRounds);
  printf("  64-byte frames tap->guest->tap: %.0f frames/s (baseline read+writev echo %.0f), "
         "ratio %.2f  [rx %lu tx %lu dropped %lu]\n",
         Median(small_dev), Median(small_base), Median(small_dev) / Median(small_base),
         (unsigned long)s.rx_frames, (unsigned long)s.tx_frames, (unsigned long)s.tx_dropped);
  printf("  64 KiB TSO frames guest->tap: %.1f Gbit/s (baseline writev %.1f), ratio %.2f  "
         "[tx %lu dropped %lu]\n",
         Median(tso_dev), Median(tso_base), Median(tso_dev) / Median(tso_base),
         (unsigned long)t.tx_frames, (unsigned long)t.tx_dropped);
  return 0;
}

}  // namespace
}  // namespace vmm

int main() {
  vmm::SetLockChecksFromEnvironment();  // as vmm's main() runs the device
  int rc = 1;
  // unshare(CLONE_NEWNET) on a thread of its own: only that thread moves.
  std::thread([&] { rc = vmm::Run(); }).join();
  return rc;
}
