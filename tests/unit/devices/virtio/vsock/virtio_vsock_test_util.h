// Shared fixture for the virtio-vsock tests: a device listening on a socket
// in a fresh temporary directory, activated with fake-driver rx/tx/event
// queues, helpers that send guest packets the way Linux lays them out
// (header and payload in separate descriptors), read what the device gave
// the guest, and play the host side over real Unix sockets.
#ifndef VMM_TESTS_UNIT_DEVICES_VIRTIO_VSOCK_VIRTIO_VSOCK_TEST_UTIL_H_
#define VMM_TESTS_UNIT_DEVICES_VIRTIO_VSOCK_VIRTIO_VSOCK_TEST_UTIL_H_

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "devices/virtio/virtqueue.h"
#include "devices/virtio/vsock/virtio_vsock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_virtio_context.h"
#include "tests/fakes/fake_virtqueue_driver.h"
#include "tests/fakes/test_guest_memory.h"

namespace vmm::testing {

inline constexpr uint64_t kGuestCid = 3;
inline constexpr uint32_t kGuestBufAlloc = 64 * 1024;

struct Packet {
  VsockHeader header{};
  std::string payload;
};

inline VsockHeader GuestHeader(uint16_t op, uint32_t src_port, uint32_t dst_port,
                               uint32_t len = 0, uint32_t flags = 0,
                               uint32_t buf_alloc = kGuestBufAlloc, uint32_t fwd_cnt = 0) {
  VsockHeader h{};
  h.src_cid = kGuestCid;
  h.dst_cid = kVsockHostCid;
  h.src_port = src_port;
  h.dst_port = dst_port;
  h.len = len;
  h.type = VIRTIO_VSOCK_TYPE_STREAM;
  h.op = op;
  h.flags = flags;
  h.buf_alloc = buf_alloc;
  h.fwd_cnt = fwd_cnt;
  return h;
}

inline std::vector<uint8_t> HeaderBytes(const VsockHeader& h) {
  std::vector<uint8_t> out(sizeof(h));
  std::memcpy(out.data(), &h, sizeof(h));
  return out;
}

// Host-side socket helpers (blocking with a bound, so a bug fails, not hangs).
inline UniqueFd ConnectTo(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return {};
  return fd;
}

inline UniqueFd ListenAt(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << path;
  EXPECT_EQ(::listen(fd.get(), 4), 0);
  return fd;
}

inline void WriteAll(int fd, const std::string& bytes) {
  ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(bytes.size()));
}

// What the host socket has now (waits up to `ms` for the first byte);
// nullopt at EOF with nothing read.
inline std::optional<std::string> ReadAvailable(int fd, int ms = 1000) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, ms) <= 0) return std::string();
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      out.append(buf, n);
      continue;
    }
    if (n == 0 && out.empty()) return std::nullopt;
    return out;
  }
}

// The other end closed: EOF, or ECONNRESET when it closed with our bytes
// unread.
inline bool AtEof(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 1000) <= 0) return false;
  char c;
  ssize_t n = ::recv(fd, &c, 1, MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

class VirtioVsockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/vsockt-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/v.sock";
  }
  void TearDown() override {
    dev_.reset();
    std::string cmd = "rm -rf " + dir_;
    (void)::system(cmd.c_str());
  }

  VsockMuxerOptions Options() const {
    VsockMuxerOptions o;
    o.guest_cid = kGuestCid;
    o.socket_path = path_;
    return o;
  }
  void Start(VsockMuxerOptions options, bool activate = true, EventLoop* loop = nullptr) {
    auto dev = VirtioVsock::Create(std::move(options), loop);
    ASSERT_TRUE(dev.ok()) << dev.status();
    dev_ = *dev;
    if (activate) Activate();
  }
  void Start() { Start(Options()); }
  void Activate() {
    VirtioActivation a;
    a.memory = &mem_;
    a.features = dev_->device_features();
    for (FakeVirtqueueDriver* d : {&rx_, &tx_, &event_}) {
      auto q = Virtqueue::Create(d->config(), mem_);
      ASSERT_TRUE(q.ok()) << q.status();
      a.queues.push_back(std::move(*q));
      a.queue_enabled.push_back(true);
    }
    a.context = &context_;
    ASSERT_TRUE(dev_->Activate(std::move(a)).ok());
  }

  // Guest side.
  void SendTx(const VsockHeader& h, const std::string& payload = "") {
    std::vector<std::vector<uint8_t>> bufs = {HeaderBytes(h)};
    if (!payload.empty()) bufs.emplace_back(payload.begin(), payload.end());
    tx_.AddChainBytes(bufs, {});
    dev_->ProcessQueue(VirtioVsock::kTxQueue);
    tx_.PopAllUsed();
  }
  // `count` RX buffers with room for a header and `payload` bytes.
  void GiveRx(int count = 8, uint32_t payload = 4096) {
    const uint32_t size = static_cast<uint32_t>(sizeof(VsockHeader)) + payload;
    for (int i = 0; i < count; ++i) rx_.AddChainBytes({}, {size});
    dev_->ProcessQueue(VirtioVsock::kRxQueue);
  }
  std::vector<Packet> TakeRx() {
    std::vector<Packet> out;
    for (auto& e : rx_.PopAllUsed()) {
      Packet p;
      EXPECT_GE(e.written.size(), sizeof(VsockHeader));
      if (e.written.size() < sizeof(VsockHeader)) continue;
      std::memcpy(&p.header, e.written.data(), sizeof(VsockHeader));
      p.payload.assign(e.written.begin() + sizeof(VsockHeader), e.written.end());
      EXPECT_EQ(p.header.len, p.payload.size());
      out.push_back(p);
    }
    return out;
  }
  // Exactly one packet expected.
  Packet TakeOne() {
    std::vector<Packet> p = TakeRx();
    EXPECT_EQ(p.size(), 1u);
    return p.empty() ? Packet{} : p[0];
  }

  // A host client connected through "CONNECT <guest_port>" and accepted by
  // the guest: returns the host socket (after reading "OK <port>\n") and sets
  // *local_port.
  UniqueFd EstablishHostConnection(uint32_t guest_port, uint32_t* local_port,
                                   uint32_t guest_buf_alloc = kGuestBufAlloc) {
    UniqueFd host = ConnectTo(path_);
    EXPECT_TRUE(host.valid());
    WriteAll(host.get(), "CONNECT " + std::to_string(guest_port) + "\n");
    dev_->HandleHostEvents();
    GiveRx(1);
    Packet req = TakeOne();
    EXPECT_EQ(req.header.op, VIRTIO_VSOCK_OP_REQUEST);
    *local_port = req.header.src_port;
    SendTx(GuestHeader(VIRTIO_VSOCK_OP_RESPONSE, guest_port, *local_port, 0, 0, guest_buf_alloc));
    EXPECT_EQ(ReadAvailable(host.get()), "OK " + std::to_string(*local_port) + "\n");
    return host;
  }

  GuestMemory mem_ = TestGuestMemory(8 << 20);
  FakeVirtqueueDriver rx_{mem_, {.size = 64, .ring_base = GuestAddress(0x10000),
                                 .data_base = GuestAddress(0x100000), .data_size = 0x200000}};
  FakeVirtqueueDriver tx_{mem_, {.size = 64, .ring_base = GuestAddress(0x20000),
                                 .data_base = GuestAddress(0x300000), .data_size = 0x200000}};
  FakeVirtqueueDriver event_{mem_, {.size = 16, .ring_base = GuestAddress(0x30000),
                                    .data_base = GuestAddress(0x500000), .data_size = 0x10000}};
  FakeVirtioContext context_;
  std::shared_ptr<VirtioVsock> dev_;
  std::string dir_;
  std::string path_;
};

}  // namespace vmm::testing

#endif  // VMM_TESTS_UNIT_DEVICES_VIRTIO_VSOCK_VIRTIO_VSOCK_TEST_UTIL_H_
