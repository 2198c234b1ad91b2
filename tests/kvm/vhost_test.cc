// vhost in the host kernel, driven by VhostKernel: the kernel's vsock device
// works on rings this test lays out in its own memory (as a guest's driver
// would), is kicked through an eventfd and calls back through one. A host
// AF_VSOCK connect to the "guest" lands in the RX ring as a REQUEST packet.
// Needs /dev/vhost-vsock (vhost_vsock.ko): the nested lane's L1 has it; the
// PVM hosts do not (the test skips loudly there).
#include "devices/vhost/vhost_kernel.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include <cstdio>
#include <cstring>
#include <optional>

#include "devices/virtio/vsock/vhost_vsock.h"
#include "devices/virtio/vsock/vsock_packet.h"
#include "tests/fakes/fake_virtio_context.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/kvm/vhost_rings.h"

namespace vmm::testing {
namespace {

using ::testing::HasSubstr;

bool Readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

TEST(VhostKernelTest, AMissingDeviceNodeIsAOneLineErrorNamingTheModule) {
  absl::StatusOr<VhostKernel> v = VhostKernel::Open(VhostKernel::Kind::kNet, "/nonexistent/vhost");
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(v.status().message(), HasSubstr("modprobe vhost_net"));
  EXPECT_EQ(std::string(v.status().message()).find('\n'), std::string::npos);
}

TEST(VhostVsockTest, AHostConnectLandsInTheRxRingAndCallsThroughItsEventfd) {
  if (::access("/dev/vhost-vsock", F_OK) != 0) {
    std::fprintf(stderr, "\n*** SKIPPED vhost-vsock test: no /dev/vhost-vsock ***\n\n");
    GTEST_SKIP() << "SKIPPED: no /dev/vhost-vsock (vhost_vsock.ko)";
  }
  VhostRings rings;
  absl::StatusOr<VhostKernel> vhost = VhostKernel::Open(VhostKernel::Kind::kVsock);
  ASSERT_TRUE(vhost.ok()) << vhost.status();
  rings.Attach(*vhost);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  for (int i = 0; i < 4; ++i) rings.rx.AddChainBytes({}, {4096});
  const uint64_t cid = 1000 + ::getpid() % 100000;  // distinct per process
  ASSERT_TRUE(vhost->VsockSetGuestCid(cid).ok());
  ASSERT_TRUE(vhost->VsockSetRunning(true).ok());
  rings.Kick(0);

  UniqueFd host(::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  ASSERT_TRUE(host.valid());
  sockaddr_vm addr{};
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = static_cast<unsigned>(cid);
  addr.svm_port = 5000;
  ASSERT_NE(::connect(host.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(errno, EINPROGRESS);

  ASSERT_TRUE(Readable(rings.call[0].get(), 5000)) << "the kernel never signalled the RX call eventfd";
  std::optional<FakeVirtqueueDriver::UsedEntry> used = rings.rx.PopUsed();
  ASSERT_TRUE(used.has_value());
  ASSERT_GE(used->written.size(), sizeof(VsockHeader));
  VsockHeader h;
  std::memcpy(&h, used->written.data(), sizeof(h));
  EXPECT_EQ(h.op, VIRTIO_VSOCK_OP_REQUEST);
  EXPECT_EQ(h.type, VIRTIO_VSOCK_TYPE_STREAM);
  EXPECT_EQ(h.dst_cid, cid);
  EXPECT_EQ(h.dst_port, 5000u);
  EXPECT_EQ(h.src_cid, uint64_t{VMADDR_CID_HOST});

  ASSERT_TRUE(vhost->VsockSetRunning(false).ok());
  absl::StatusOr<uint16_t> base = vhost->GetVringBase(0);
  ASSERT_TRUE(base.ok()) << base.status();
  EXPECT_EQ(*base, 1) << "the kernel took one RX buffer";
}

// The virtio-vsock device with backend=vhost, activated as a transport
// would activate it: the kernel runs rx and tx on the driver's rings, is
// kicked through kick_fds and calls call_fds; a reset stops it and a second
// activation starts it again on fresh rings.
class VhostVsockDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/dev/vhost-vsock", F_OK) != 0) {
      std::fprintf(stderr, "\n*** SKIPPED vhost-vsock device test: no /dev/vhost-vsock ***\n\n");
      GTEST_SKIP() << "SKIPPED: no /dev/vhost-vsock (vhost_vsock.ko)";
    }
  }

  // An activation of rx/tx (the rings' drivers) and an event queue.
  VirtioActivation Activation(VhostRings& rings, FakeVirtqueueDriver& event) {
    VirtioActivation a;
    a.memory = &rings.memory;
    a.features = kVirtioFVersion1;
    a.context = &context_;
    FakeVirtqueueDriver* drivers[3] = {&rings.rx, &rings.tx, &event};
    for (int q = 0; q < 3; ++q) {
      a.queues.push_back(*Virtqueue::Create(drivers[q]->config(), rings.memory));
      a.queue_enabled.push_back(true);
      if (q < 2) {
        rings.kick[q].Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        rings.call[q].Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
      }
      a.kick_fds.push_back(q < 2 ? rings.kick[q].get() : -1);
      a.call_fds.push_back(q < 2 ? rings.call[q].get() : -1);
    }
    return a;
  }

  // A host AF_VSOCK connect to the guest's port 5000 (non-blocking).
  static UniqueFd ConnectToGuest(uint64_t cid) {
    UniqueFd host(::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_vm addr{};
    addr.svm_family = AF_VSOCK;
    addr.svm_cid = static_cast<unsigned>(cid);
    addr.svm_port = 5000;
    (void)::connect(host.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    return host;
  }

  // The next packet the kernel put in the rx ring, after its call.
  static std::optional<VsockHeader> NextRx(VhostRings& rings) {
    if (!Readable(rings.call[0].get(), 5000)) return std::nullopt;
    std::optional<FakeVirtqueueDriver::UsedEntry> used = rings.rx.PopUsed();
    if (!used.has_value() || used->written.size() < sizeof(VsockHeader)) return std::nullopt;
    VsockHeader h;
    std::memcpy(&h, used->written.data(), sizeof(h));
    return h;
  }

  FakeVirtioContext context_;
  const uint64_t cid_ = 2000 + ::getpid() % 100000;
};

TEST_F(VhostVsockDeviceTest, AHostConnectReachesTheGuestRingsAndAResetStopsTheKernel) {
  absl::StatusOr<std::shared_ptr<VhostVsock>> device = VhostVsock::Create(cid_);
  ASSERT_TRUE(device.ok()) << device.status();
  EXPECT_NE((*device)->device_features() & kVirtioFVersion1, 0u);
  uint8_t config[8];
  (*device)->ReadConfig(0, config);
  uint64_t config_cid;
  std::memcpy(&config_cid, config, 8);
  EXPECT_EQ(config_cid, cid_);

  VhostRings rings;
  FakeVirtqueueDriver event{rings.memory, {.size = 16, .ring_base = GuestAddress(0x30000),
                                            .data_base = GuestAddress(0x300000)}};
  for (int i = 0; i < 4; ++i) rings.rx.AddChainBytes({}, {4096});
  ASSERT_TRUE((*device)->Activate(Activation(rings, event)).ok());
  EXPECT_TRUE((*device)->running());
  rings.Kick(0);
  UniqueFd host = ConnectToGuest(cid_);
  std::optional<VsockHeader> h = NextRx(rings);
  ASSERT_TRUE(h.has_value()) << "no REQUEST reached the rx ring";
  EXPECT_EQ(h->op, VIRTIO_VSOCK_OP_REQUEST);
  EXPECT_EQ(h->dst_cid, cid_);
  EXPECT_EQ(h->dst_port, 5000u);

  // The driver resets: the kernel lets go of the rings...
  (*device)->Reset();
  EXPECT_FALSE((*device)->running());
  // ... and the driver's next bring-up, on new rings, works as the first.
  VhostRings again;
  FakeVirtqueueDriver event2{again.memory, {.size = 16, .ring_base = GuestAddress(0x30000),
                                             .data_base = GuestAddress(0x300000)}};
  for (int i = 0; i < 4; ++i) again.rx.AddChainBytes({}, {4096});
  ASSERT_TRUE((*device)->Activate(Activation(again, event2)).ok());
  again.Kick(0);
  UniqueFd host2 = ConnectToGuest(cid_);
  h = NextRx(again);
  ASSERT_TRUE(h.has_value()) << "no REQUEST after re-activation";
  EXPECT_EQ(h->op, VIRTIO_VSOCK_OP_REQUEST);
}

TEST_F(VhostVsockDeviceTest, ACidAnotherVmHoldsIsAClearStartUpError) {
  absl::StatusOr<std::shared_ptr<VhostVsock>> first = VhostVsock::Create(cid_ + 1);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::shared_ptr<VhostVsock>> second = VhostVsock::Create(cid_ + 1);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr("is taken on this host"));
  EXPECT_EQ(std::string(second.status().message()).find('\n'), std::string::npos);
}

}  // namespace
}  // namespace vmm::testing
