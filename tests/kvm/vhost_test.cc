// vhost in the host kernel, driven by VhostKernel: the kernel's vsock device
// works on rings this test lays out in its own memory (as a guest's driver
// would), is kicked through an eventfd and calls back through one. A host
// AF_VSOCK connect to the "guest" lands in the RX ring as a REQUEST packet.
// Needs /dev/vhost-vsock (vhost_vsock.ko): the nested lane's L1 has it; the
// PVM hosts do not (the test skips loudly there).
#include "devices/vhost/vhost_kernel.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include <cstdio>
#include <cstring>
#include <optional>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_virtqueue_driver.h"
#include "tests/fakes/test_guest_memory.h"

namespace vmm::testing {
namespace {

using ::testing::HasSubstr;

// struct virtio_vsock_hdr (virtio 1.2, 5.10.6), little-endian, packed.
struct __attribute__((packed)) VsockHeader {
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
};
static_assert(sizeof(VsockHeader) == 44);

constexpr uint64_t kVirtioFVersion1 = 1ull << 32;

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
  GuestMemory memory = TestGuestMemory(4 << 20);
  FakeVirtqueueDriver rx(memory, {.size = 16,
                                  .ring_base = GuestAddress(0x10000),
                                  .data_base = GuestAddress(0x100000)});
  FakeVirtqueueDriver tx(memory, {.size = 16,
                                  .ring_base = GuestAddress(0x20000),
                                  .data_base = GuestAddress(0x200000)});
  absl::StatusOr<VhostKernel> vhost = VhostKernel::Open(VhostKernel::Kind::kVsock);
  ASSERT_TRUE(vhost.ok()) << vhost.status();
  absl::StatusOr<uint64_t> offered = vhost->GetFeatures();
  ASSERT_TRUE(offered.ok()) << offered.status();
  ASSERT_NE(*offered & kVirtioFVersion1, 0u);
  ASSERT_TRUE(vhost->SetFeatures(kVirtioFVersion1).ok());
  ASSERT_TRUE(vhost->SetMemTable(memory).ok());
  UniqueFd kick[2], call[2];
  FakeVirtqueueDriver* drivers[2] = {&rx, &tx};
  for (uint32_t q = 0; q < 2; ++q) {
    kick[q].Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    call[q].Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    ASSERT_TRUE(vhost->SetVring(q, drivers[q]->config(), memory, 0).ok());
    ASSERT_TRUE(vhost->SetVringKick(q, kick[q].get()).ok());
    ASSERT_TRUE(vhost->SetVringCall(q, call[q].get()).ok());
  }
  for (int i = 0; i < 4; ++i) rx.AddChainBytes({}, {4096});
  const uint64_t cid = 1000 + ::getpid() % 100000;  // distinct per process
  ASSERT_TRUE(vhost->VsockSetGuestCid(cid).ok());
  ASSERT_TRUE(vhost->VsockSetRunning(true).ok());
  uint64_t one = 1;
  ASSERT_EQ(::write(kick[0].get(), &one, sizeof(one)), 8);

  UniqueFd host(::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  ASSERT_TRUE(host.valid());
  sockaddr_vm addr{};
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = static_cast<unsigned>(cid);
  addr.svm_port = 5000;
  ASSERT_NE(::connect(host.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(errno, EINPROGRESS);

  ASSERT_TRUE(Readable(call[0].get(), 5000)) << "the kernel never signalled the RX call eventfd";
  std::optional<FakeVirtqueueDriver::UsedEntry> used = rx.PopUsed();
  ASSERT_TRUE(used.has_value());
  ASSERT_GE(used->written.size(), sizeof(VsockHeader));
  VsockHeader h;
  std::memcpy(&h, used->written.data(), sizeof(h));
  EXPECT_EQ(h.op, 1) << "VIRTIO_VSOCK_OP_REQUEST";
  EXPECT_EQ(h.type, 1) << "VIRTIO_VSOCK_TYPE_STREAM";
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
