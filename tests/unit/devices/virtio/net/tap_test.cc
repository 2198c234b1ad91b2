// The tap backend against the kernel: each test runs on a thread that moved
// itself into a fresh network namespace (unshare(CLONE_NEWNET)), so the taps
// it makes are private and vanish with it. Frames are exchanged with an
// AF_PACKET socket bound to the tap: what it sends, the tap reads; what the
// tap writes, it receives. Needs root and /dev/net/tun; skips loudly
// otherwise.
#include "devices/virtio/net/tap.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "base/unique_fd.h"
#include "devices/virtio/net/virtio_net_spec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vmm {
namespace {

using ::testing::HasSubstr;

std::string WhyNoTap() {
  if (::geteuid() != 0) return "not root (taps and network namespaces need CAP_NET_ADMIN)";
  if (::access("/dev/net/tun", R_OK | W_OK) != 0) return "no usable /dev/net/tun";
  return "";
}

#define REQUIRE_TAP()                                                              \
  if (std::string why = WhyNoTap(); !why.empty()) {                                \
    fprintf(stderr, "\n*** SKIPPED tap test: %s ***\n\n", why.c_str());             \
    GTEST_SKIP() << "SKIPPED: " << why;                                            \
  }

// Runs `body` on a thread inside a new network namespace.
void InPrivateNetns(const std::function<void()>& body) {
  std::thread([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      ADD_FAILURE() << "unshare(CLONE_NEWNET): " << std::strerror(errno);
      return;
    }
    body();
  }).join();
}

void BringUp(const std::string& name) {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ASSERT_EQ(::ioctl(s.get(), SIOCGIFFLAGS, &ifr), 0) << std::strerror(errno);
  ifr.ifr_flags |= IFF_UP;
  ASSERT_EQ(::ioctl(s.get(), SIOCSIFFLAGS, &ifr), 0) << std::strerror(errno);
}

// A raw socket on `name` (every protocol), non-blocking.
UniqueFd PacketSocket(const std::string& name) {
  UniqueFd s(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ALL)));
  EXPECT_TRUE(s.valid()) << std::strerror(errno);
  sockaddr_ll addr{};
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = htons(ETH_P_ALL);
  UniqueFd inet(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  EXPECT_EQ(::ioctl(inet.get(), SIOCGIFINDEX, &ifr), 0) << std::strerror(errno);
  addr.sll_ifindex = ifr.ifr_ifindex;
  EXPECT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
      << std::strerror(errno);
  return s;
}

// A 64-byte Ethernet frame with an experimental EtherType (nothing in the
// kernel answers it) and `seed` in the payload.
std::vector<uint8_t> EthFrame(uint8_t seed) {
  std::vector<uint8_t> f(64, 0);
  for (int i = 0; i < 6; ++i) f[i] = 0xff;
  const uint8_t src[6] = {0x52, 0x54, 0x00, 0, 0, 1};
  std::memcpy(&f[6], src, 6);
  f[12] = 0x88;
  f[13] = 0xb5;  // IEEE 802 local experimental
  for (size_t i = 14; i < f.size(); ++i) f[i] = static_cast<uint8_t>(seed + i);
  return f;
}

// An IPv4/UDP frame from 10.0.0.2:`port` to 10.0.0.1:9: a distinct flow per
// port, so a multi-queue tap spreads them over its queues by flow hash.
std::vector<uint8_t> UdpFrame(uint16_t port) {
  std::vector<uint8_t> f(14 + 20 + 8 + 22, 0);
  for (int i = 0; i < 6; ++i) f[i] = 0xff;
  f[6] = 0x52;
  f[7] = 0x54;
  f[11] = 1;
  f[12] = 0x08;  // IPv4
  uint8_t* ip = &f[14];
  ip[0] = 0x45;
  ip[3] = 20 + 8 + 22;
  ip[8] = 64;
  ip[9] = 17;  // UDP
  const uint8_t src[4] = {10, 0, 0, 2}, dst[4] = {10, 0, 0, 1};
  std::memcpy(ip + 12, src, 4);
  std::memcpy(ip + 16, dst, 4);
  uint8_t* udp = ip + 20;
  udp[0] = static_cast<uint8_t>(port >> 8);
  udp[1] = static_cast<uint8_t>(port);
  udp[3] = 9;
  udp[5] = 8 + 22;
  return f;
}

bool WaitReadable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 2000) == 1;
}

// Reads frames from the tap until one carries our EtherType (the kernel may
// send IPv6 neighbour traffic on a fresh interface); returns it without the
// virtio header, or empty.
std::vector<uint8_t> ReadOurs(Tap& tap, int q) {
  std::vector<uint8_t> buf(70000);
  for (int i = 0; i < 20 && WaitReadable(tap.rx_fd(q)); ++i) {
    absl::StatusOr<size_t> n = tap.ReadFrame(q, absl::MakeSpan(buf));
    EXPECT_TRUE(n.ok()) << n.status();
    if (!n.ok() || *n < 12 + 14) continue;
    if (buf[12 + 12] == 0x88 && buf[12 + 13] == 0xb5) {
      return std::vector<uint8_t>(buf.begin() + 12, buf.begin() + static_cast<long>(*n));
    }
  }
  return {};
}

TEST(TapTest, OpenCreatesAMissingTapAndProbesOffloads) {
  REQUIRE_TAP();
  InPrivateNetns([] {
    bool created = false;
    auto tap = Tap::Open("vmmt0", 1, &created);
    ASSERT_TRUE(tap.ok()) << tap.status();
    EXPECT_TRUE(created);
    EXPECT_EQ((*tap)->name(), "vmmt0");
    EXPECT_EQ((*tap)->queue_count(), 1);
    // Every kernel since 2.6.27 takes checksum and TSO offloads.
    const unsigned tso = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
    EXPECT_EQ((*tap)->supported_offloads() & tso, tso);
    EXPECT_TRUE((*tap)->SetOffloads(TUN_F_CSUM | TUN_F_TSO4).ok());
    EXPECT_TRUE((*tap)->SetOffloads(0).ok());
    // Nothing waiting: 0, not an error.
    std::vector<uint8_t> buf(2048);
    auto n = (*tap)->ReadFrame(0, absl::MakeSpan(buf));
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(*n, 0u);
  });
}

TEST(TapTest, FramesCrossBothWaysWithTheVirtioHeaderInFront) {
  REQUIRE_TAP();
  InPrivateNetns([] {
    auto tap = Tap::Open("vmmt0", 1);
    ASSERT_TRUE(tap.ok()) << tap.status();
    BringUp("vmmt0");
    UniqueFd peer = PacketSocket("vmmt0");

    // Host stack -> tap: the read starts with a 12-byte header.
    std::vector<uint8_t> in = EthFrame(1);
    ASSERT_EQ(::send(peer.get(), in.data(), in.size(), 0), static_cast<ssize_t>(in.size()))
        << std::strerror(errno);
    EXPECT_EQ(ReadOurs(**tap, 0), in);

    // Tap -> host stack: header (no offload) then the frame, gathered.
    virtio_net::Header header{};
    std::vector<uint8_t> out = EthFrame(2);
    iovec iov[3] = {{&header, sizeof(header)}, {out.data(), 20}, {out.data() + 20, out.size() - 20}};
    ASSERT_TRUE((*tap)->WriteFrame(0, iov).ok());
    std::vector<uint8_t> got(2048);
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(WaitReadable(peer.get()));
      ssize_t n = ::recv(peer.get(), got.data(), got.size(), 0);
      ASSERT_GT(n, 14);
      if (got[12] == 0x88 && got[13] == 0xb5 && got[14] == out[14]) {
        got.resize(static_cast<size_t>(n));
        break;
      }
    }
    EXPECT_EQ(got, out);
  });
}

TEST(TapTest, WriteToATapThatIsDownFails) {
  REQUIRE_TAP();
  InPrivateNetns([] {
    auto tap = Tap::Open("vmmt0", 1);
    ASSERT_TRUE(tap.ok()) << tap.status();
    virtio_net::Header header{};
    std::vector<uint8_t> out = EthFrame(3);
    iovec iov[2] = {{&header, sizeof(header)}, {out.data(), out.size()}};
    EXPECT_FALSE((*tap)->WriteFrame(0, iov).ok());
  });
}

// Reads what waits on queue `q` (for up to 200 ms), returning the UDP source
// ports of our frames.
std::vector<uint16_t> UdpPortsOn(Tap& tap, int q) {
  std::vector<uint16_t> ports;
  std::vector<uint8_t> buf(70000);
  pollfd p{tap.rx_fd(q), POLLIN, 0};
  while (::poll(&p, 1, 200) == 1) {
    absl::StatusOr<size_t> n = tap.ReadFrame(q, absl::MakeSpan(buf));
    if (!n.ok() || *n == 0) break;
    const uint8_t* f = buf.data() + 12;
    if (*n >= 12 + 14 + 28 && f[12] == 0x08 && f[13] == 0 && f[14 + 9] == 17) {
      ports.push_back(static_cast<uint16_t>((f[34] << 8) | f[35]));
    }
  }
  return ports;
}

TEST(TapTest, MultiQueueTapSpreadsFlowsAndADetachedQueueGetsNone) {
  REQUIRE_TAP();
  InPrivateNetns([] {
    auto tap = Tap::Open("vmmt0", 2);
    ASSERT_TRUE(tap.ok()) << tap.status();
    EXPECT_EQ((*tap)->queue_count(), 2);
    BringUp("vmmt0");
    UniqueFd peer = PacketSocket("vmmt0");
    auto send_flows = [&] {
      for (uint16_t port = 1000; port < 1032; ++port) {
        std::vector<uint8_t> f = UdpFrame(port);
        ASSERT_EQ(::send(peer.get(), f.data(), f.size(), 0), static_cast<ssize_t>(f.size()));
      }
    };
    // Both attached: 32 flows land on both queues (so the check below can
    // fail when detaching does nothing).
    send_flows();
    std::vector<uint16_t> q0 = UdpPortsOn(**tap, 0), q1 = UdpPortsOn(**tap, 1);
    EXPECT_EQ(q0.size() + q1.size(), 32u);
    EXPECT_FALSE(q0.empty());
    EXPECT_FALSE(q1.empty());

    ASSERT_TRUE((*tap)->SetQueueEnabled(1, false).ok());
    ASSERT_TRUE((*tap)->SetQueueEnabled(1, false).ok());  // twice is fine
    send_flows();
    EXPECT_EQ(UdpPortsOn(**tap, 0).size(), 32u);
    EXPECT_TRUE(UdpPortsOn(**tap, 1).empty());

    ASSERT_TRUE((*tap)->SetQueueEnabled(1, true).ok());
    ASSERT_TRUE((*tap)->SetQueueEnabled(1, true).ok());
    send_flows();
    EXPECT_FALSE(UdpPortsOn(**tap, 1).empty());
  });
}

TEST(TapTest, OpeningASingleQueueTapWithTwoQueuesSaysWhy) {
  REQUIRE_TAP();
  InPrivateNetns([] {
    auto first = Tap::Open("vmmt0", 1);
    ASSERT_TRUE(first.ok()) << first.status();
    auto second = Tap::Open("vmmt0", 2);
    ASSERT_FALSE(second.ok());
    EXPECT_THAT(std::string(second.status().message()), HasSubstr("tap vmmt0: TUNSETIFF"));
    EXPECT_THAT(std::string(second.status().message()), HasSubstr("multi_queue"));
  });
}

TEST(TapTest, BadNamesAreRefusedBeforeTheKernelSeesThem) {
  EXPECT_FALSE(Tap::Open("", 1).ok());
  EXPECT_FALSE(Tap::Open("0123456789abcdef", 1).ok());
}

TEST(TapTest, AdoptTakesAnOpenVnetHeaderTapAndLeavesTheCallersFdOpen) {
  REQUIRE_TAP();
  InPrivateNetns([] {
    int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "vmmt1", IFNAMSIZ - 1);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    ASSERT_EQ(::ioctl(fd, TUNSETIFF, &ifr), 0) << std::strerror(errno);
    {
      auto tap = Tap::Adopt(fd);
      ASSERT_TRUE(tap.ok()) << tap.status();
      EXPECT_EQ((*tap)->name(), "vmmt1");
      EXPECT_NE((*tap)->rx_fd(0), fd);
    }
    EXPECT_EQ(::fcntl(fd, F_GETFD), FD_CLOEXEC);  // still open after the Tap is gone
    ::close(fd);
  });
}

TEST(TapTest, AdoptRefusesATapWithoutVnetHeadersAndNonTaps) {
  REQUIRE_TAP();
  InPrivateNetns([] {
    int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "vmmt2", IFNAMSIZ - 1);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    ASSERT_EQ(::ioctl(fd, TUNSETIFF, &ifr), 0) << std::strerror(errno);
    auto tap = Tap::Adopt(fd);
    ASSERT_FALSE(tap.ok());
    EXPECT_THAT(std::string(tap.status().message()), HasSubstr("IFF_VNET_HDR"));
    ::close(fd);

    UniqueFd efd(::eventfd(0, EFD_CLOEXEC));
    auto not_tap = Tap::Adopt(efd.get());
    ASSERT_FALSE(not_tap.ok());
    EXPECT_THAT(std::string(not_tap.status().message()), HasSubstr("is it an open tap"));
  });
}

}  // namespace
}  // namespace vmm
