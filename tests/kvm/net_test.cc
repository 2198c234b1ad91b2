// virtio-net end to end: the real `vmm` binary with net.elf as the driver,
// on a tap inside a network namespace the test creates (so no frame can
// leave the machine): the host end of the tap has 10.0.0.1/24, the guest
// ARPs for it from 10.0.0.2 and pings it, over virtio-pci and virtio-mmio;
// then the host pings the guest while it sleeps on the device's interrupt.
//
// Needs root (network namespaces, taps) and /dev/net/tun; skips loudly
// otherwise.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "devices/vhost/vhost_kernel.h"
#include "tests/kvm/subprocess.h"
#include "tests/kvm/vhost_rings.h"

namespace vmm::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kTap[] = "vmmtap0";

std::string IpTool() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

// Empty when the tests can run here; else why not.
std::string WhyNoNetwork() {
  if (::geteuid() != 0) return "not root (network namespaces and taps need CAP_NET_ADMIN)";
  if (::access("/dev/net/tun", R_OK | W_OK) != 0) return "no usable /dev/net/tun";
  if (IpTool().empty()) return "no ip(8) (iproute2)";
  return "";
}

#define REQUIRE_KVM_AND_NETWORK()                                                       \
  REQUIRE_KVM();                                                                         \
  if (std::string why = WhyNoNetwork(); !why.empty()) {                                 \
    fprintf(stderr, "\n*** SKIPPED virtio-net KVM test: %s ***\n\n", why.c_str());      \
    GTEST_SKIP() << "SKIPPED: " << why;                                                 \
  }

// A private network namespace holding tap vmmtap0 with 10.0.0.1/24, up.
// Deleted (tap and all) on destruction.
class NetNamespace {
 public:
  explicit NetNamespace(bool multi_queue = false) {
    static int counter = 0;
    name_ = absl::StrCat("vmmtest-", ::getpid(), "-", counter++);
    ok_ = Ip({"netns", "add", name_});
    if (!ok_) return;
    std::vector<std::string> tuntap = {"-n", name_, "tuntap", "add", "dev", kTap, "mode", "tap"};
    if (multi_queue) tuntap.push_back("multi_queue");
    ok_ = Ip(tuntap) && Ip({"-n", name_, "addr", "add", "10.0.0.1/24", "dev", kTap}) &&
          Ip({"-n", name_, "link", "set", kTap, "up"}) &&
          Ip({"-n", name_, "link", "set", "lo", "up"});
  }
  ~NetNamespace() { Ip({"netns", "del", name_}); }
  NetNamespace(const NetNamespace&) = delete;
  NetNamespace& operator=(const NetNamespace&) = delete;

  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }

  // Runs argv inside the namespace.
  ProcessResult Exec(const std::vector<std::string>& argv, absl::Duration limit) const {
    std::vector<std::string> all = {IpTool(), "netns", "exec", name_};
    all.insert(all.end(), argv.begin(), argv.end());
    return RunProcess(all, limit);
  }

  // Opens a queue of the namespace's tap the way an orchestrator would
  // (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR), from a thread that joined the
  // namespace; the fd is inherited by children. -1 on failure.
  int OpenTapFd() const {
    int result = -1;
    std::thread([&] {
      int ns = ::open(absl::StrCat("/var/run/netns/", name_).c_str(), O_RDONLY | O_CLOEXEC);
      if (ns < 0) return;
      const bool joined = ::setns(ns, CLONE_NEWNET) == 0;
      ::close(ns);
      if (!joined) return;
      int fd = ::open("/dev/net/tun", O_RDWR);  // no O_CLOEXEC: handed to vmm
      if (fd < 0) return;
      ifreq ifr{};
      std::strncpy(ifr.ifr_name, kTap, IFNAMSIZ - 1);
      ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
      if (::ioctl(fd, TUNSETIFF, &ifr) != 0) {
        ::close(fd);
        return;
      }
      result = fd;
    }).join();
    return result;
  }

 private:
  static bool Ip(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {IpTool()};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessResult r = RunProcess(argv, absl::Seconds(20));
    EXPECT_EQ(r.exit_code, 0) << "ip " << absl::StrJoin(args, " ") << ": " << r.err;
    return r.exit_code == 0;
  }

  std::string name_;
  bool ok_ = false;
};

// Pings 10.0.0.2 from inside `ns` (a raw ICMP socket on a thread that
// joined the namespace; no ping(8) needed) every 0.5 s until a reply comes,
// `stop` is set or 60 s pass. Returns whether a reply came.
bool PingGuestFrom(const std::string& ns, const std::atomic<bool>& stop) {
  bool replied = false;
  std::thread([&] {
    int nsfd = ::open(absl::StrCat("/var/run/netns/", ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0) return;
    const bool joined = ::setns(nsfd, CLONE_NEWNET) == 0;
    ::close(nsfd);
    if (!joined) return;
    int s = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
    if (s < 0) return;
    sockaddr_in guest{};
    guest.sin_family = AF_INET;
    guest.sin_addr.s_addr = htonl(0x0a000002);  // 10.0.0.2
    const uint16_t id = static_cast<uint16_t>(::getpid());
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    for (uint16_t seq = 1; !replied && !stop && absl::Now() < deadline; ++seq) {
      uint8_t req[8 + 24] = {8, 0, 0, 0, static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id),
                             static_cast<uint8_t>(seq >> 8), static_cast<uint8_t>(seq)};
      uint32_t sum = 0;
      for (size_t i = 0; i < sizeof(req); i += 2) sum += (req[i] << 8) | req[i + 1];
      while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
      req[2] = static_cast<uint8_t>(~sum >> 8);
      req[3] = static_cast<uint8_t>(~sum);
      (void)::sendto(s, req, sizeof(req), 0, reinterpret_cast<sockaddr*>(&guest), sizeof(guest));
      const absl::Time until = absl::Now() + absl::Milliseconds(500);
      pollfd p{s, POLLIN, 0};
      while (!replied && ::poll(&p, 1, 50) >= 0 && absl::Now() < until) {
        uint8_t buf[1500];
        ssize_t n = ::recv(s, buf, sizeof(buf), MSG_DONTWAIT);
        // The raw socket sees IP header + ICMP.
        if (n >= 28 && (buf[0] & 0xf) == 5 && buf[12] == 10 && buf[15] == 2 && buf[20] == 0 &&
            ((buf[24] << 8) | buf[25]) == id) {
          replied = true;
        }
      }
    }
    ::close(s);
  }).join();
  return replied;
}

std::vector<std::string> VmmArgs(const std::string& net_spec, const std::string& cmdline) {
  return {VmmBinary(), "--kernel", GuestPath("net.elf"), "--memory", "64M", "--timeout", "120",
          "--stats", "--net", net_spec, "--cmdline", cmdline};
}

// net.elf exits through debug-exit with 0 when it got its replies: status 1.
void ExpectRoundTrip(const ProcessResult& r) {
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("link up"));
  EXPECT_THAT(r.out, HasSubstr("net: arp reply from 10.0.0.1 at "));
  EXPECT_THAT(r.out, HasSubstr("net: echo reply from 10.0.0.1 seq 1"));
  EXPECT_THAT(r.out, HasSubstr("net: ok"));
  // Every queue notification went through an ioeventfd to the event loop.
  EXPECT_THAT(r.err, HasSubstr(" 0 virtio notify")) << r.err;
}

TEST(NetTest, ArpAndPingThroughATapOverPci) {
  REQUIRE_KVM_AND_NETWORK();
  NetNamespace ns;
  ASSERT_TRUE(ns.ok());
  ProcessResult r = ns.Exec(VmmArgs("tap=vmmtap0,mac=52:54:00:12:34:56", "transport=pci"),
                            absl::Seconds(180));
  ExpectRoundTrip(r);
  EXPECT_THAT(r.out, HasSubstr("mac 52:54:00:12:34:56 link up, merged 1, ctrl 1"));
}

TEST(NetTest, ArpAndPingThroughATapOverMmio) {
  REQUIRE_KVM_AND_NETWORK();
  NetNamespace ns;
  ASSERT_TRUE(ns.ok());
  ProcessResult r =
      ns.Exec(VmmArgs("tap=vmmtap0,transport=mmio", "transport=mmio"), absl::Seconds(180));
  ExpectRoundTrip(r);
  EXPECT_THAT(r.out, HasSubstr("net mmio "));
}

TEST(NetTest, WithoutMergedReceiveBuffers) {
  REQUIRE_KVM_AND_NETWORK();
  NetNamespace ns;
  ASSERT_TRUE(ns.ok());
  ProcessResult r = ns.Exec(VmmArgs("tap=vmmtap0", "merged=0"), absl::Seconds(180));
  ExpectRoundTrip(r);
  EXPECT_THAT(r.out, HasSubstr("merged 0"));
}

TEST(NetTest, MultiQueueTapWithTwoPairs) {
  REQUIRE_KVM_AND_NETWORK();
  NetNamespace ns(/*multi_queue=*/true);
  ASSERT_TRUE(ns.ok());
  // The guest drives pair 0 only (no MQ command): the device must have
  // detached tap queue 1 so every frame comes to queue 0.
  ProcessResult r = ns.Exec(VmmArgs("tap=vmmtap0,queues=2", ""), absl::Seconds(180));
  ExpectRoundTrip(r);
}

TEST(NetTest, TapFdHandedOverByTheCaller) {
  REQUIRE_KVM_AND_NETWORK();
  NetNamespace ns;
  ASSERT_TRUE(ns.ok());
  const int fd = ns.OpenTapFd();
  ASSERT_GE(fd, 0) << "could not open the namespace's tap";
  // vmm itself runs outside the namespace: the fd is its only way in.
  ProcessResult r =
      RunProcess(VmmArgs(absl::StrCat("fd=", fd), "transport=pci"), absl::Seconds(180));
  ::close(fd);
  ExpectRoundTrip(r);
}

// The host pings the guest (the guest answers ARP and echo requests), with
// the guest sleeping until the device's interrupt: MSI-X over PCI, the GSI
// over virtio-mmio.
void HostPingsSleepingGuest(const std::string& spec, const std::string& cmdline,
                            const std::vector<std::string>& extra) {
  NetNamespace ns;
  ASSERT_TRUE(ns.ok());
  std::atomic<bool> stop = false;
  bool replied = false;
  std::thread pinger([&] { replied = PingGuestFrom(ns.name(), stop); });
  std::vector<std::string> argv = VmmArgs(spec, cmdline);
  argv.insert(argv.begin() + 1, extra.begin(), extra.end());
  ProcessResult r = ns.Exec(argv, absl::Seconds(180));
  stop = true;
  pinger.join();
  ExpectRoundTrip(r);
  EXPECT_THAT(r.out, HasSubstr("net: answered 1 echo requests"));
  EXPECT_TRUE(replied) << "the host's ping got no reply\n" << r.out;
}

TEST(NetTest, HostPingsTheGuestWhichSleepsOnMsix) {
  REQUIRE_KVM_AND_NETWORK();
  HostPingsSleepingGuest("tap=vmmtap0", "irq=msix serve=1", {});
}

TEST(NetTest, HostPingsTheGuestWhichSleepsOnTheMmioInterrupt) {
  REQUIRE_KVM_AND_NETWORK();
  HostPingsSleepingGuest("tap=vmmtap0,transport=mmio", "transport=mmio irq=mmio-irq serve=1",
                         {"--acpi", "off"});
}

TEST(NetTest, BadTapFdIsAOneLineError) {
  REQUIRE_KVM_AND_NETWORK();
  ProcessResult r = RunProcess(VmmArgs("fd=1000", ""), absl::Seconds(60));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("fd 1000"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_THAT(r.err, Not(HasSubstr("stats:")));
}

// vhost-net in the host kernel (VhostKernel), with rings in this test's own
// memory as a guest's driver would lay them out and the namespace's tap
// behind them: an ARP request for 10.0.0.1 put in the TX ring leaves through
// the tap, and the host's ARP reply comes back through the kernel into the RX
// ring, with the RX call eventfd signalled. No vmm, no KVM: the data path
// the kernel runs for `--net tap=,vhost=on`.
TEST(VhostNetTest, AnArpRequestGoesOutAndTheHostsReplyComesBackThroughTheKernel) {
  if (std::string why = WhyNoNetwork(); !why.empty()) GTEST_SKIP() << "SKIPPED: " << why;
  if (::access("/dev/vhost-net", F_OK) != 0) {
    fprintf(stderr, "\n*** SKIPPED vhost-net test: no /dev/vhost-net ***\n\n");
    GTEST_SKIP() << "SKIPPED: no /dev/vhost-net (vhost_net.ko)";
  }
  NetNamespace ns;
  ASSERT_TRUE(ns.ok());
  UniqueFd tap(ns.OpenTapFd());
  ASSERT_TRUE(tap.valid());
  int header_size = 12;  // virtio 1.x's virtio_net_hdr
  ASSERT_EQ(::ioctl(tap.get(), TUNSETVNETHDRSZ, &header_size), 0);

  VhostRings rings;
  absl::StatusOr<VhostKernel> vhost = VhostKernel::Open(VhostKernel::Kind::kNet);
  ASSERT_TRUE(vhost.ok()) << vhost.status();
  rings.Attach(*vhost);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  for (uint32_t q = 0; q < 2; ++q) ASSERT_TRUE(vhost->NetSetBackend(q, tap.get()).ok());
  for (int i = 0; i < 8; ++i) rings.rx.AddChainBytes({}, {2048});
  rings.Kick(0);

  const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
  std::vector<uint8_t> frame(12, 0);  // the virtio-net header: no offloads
  auto put = [&](std::initializer_list<uint8_t> bytes) {
    frame.insert(frame.end(), bytes.begin(), bytes.end());
  };
  put({0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
  frame.insert(frame.end(), mac, mac + 6);
  put({0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01});  // ARP, Ethernet/IPv4, request
  frame.insert(frame.end(), mac, mac + 6);
  put({10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1});  // from 10.0.0.2, who has 10.0.0.1
  rings.tx.AddChainBytes({frame}, {});
  rings.Kick(1);

  // The host may send other frames first (IPv6 neighbour discovery): read
  // until the ARP reply, refilling buffers.
  bool replied = false;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!replied && absl::Now() < deadline) {
    pollfd p{rings.call[0].get(), POLLIN, 0};
    if (::poll(&p, 1, 100) == 1) {
      uint64_t n;
      (void)::read(rings.call[0].get(), &n, 8);
    }
    while (auto used = rings.rx.PopUsed()) {
      const std::vector<uint8_t>& w = used->written;
      if (w.size() >= 12 + 42 && w[12 + 12] == 0x08 && w[12 + 13] == 0x06 &&
          w[12 + 21] == 0x02 && std::equal(mac, mac + 6, w.begin() + 12) &&
          w[12 + 28] == 10 && w[12 + 31] == 1) {
        replied = true;
      }
      rings.rx.AddChainBytes({}, {2048});
      rings.Kick(0);
    }
  }
  EXPECT_TRUE(replied) << "no ARP reply from 10.0.0.1 came back through vhost-net";
  EXPECT_EQ(rings.tx.PopAllUsed().size(), 1u) << "the kernel returned the TX chain";
}

}  // namespace
}  // namespace vmm::testing
