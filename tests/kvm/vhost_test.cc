// vhost in the host kernel, driven by VhostKernel: the kernel's vsock device
// works on rings this test lays out in its own memory (as a guest's driver
// would), is kicked through an eventfd and calls back through one. A host
// AF_VSOCK connect to the "guest" lands in the RX ring as a REQUEST packet.
// Needs /dev/vhost-vsock (vhost_vsock.ko): the nested lane's L1 has it; the
// PVM hosts do not (the test skips loudly there).
#include "devices/vhost/vhost_kernel.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include <cstdio>
#include <cstring>
#include <optional>

#include "devices/virtio/vsock/vsock_packet.h"
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

}  // namespace
}  // namespace vmm::testing
