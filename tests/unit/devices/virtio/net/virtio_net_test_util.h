// Shared fixture for the virtio-net tests: a VirtioNet over a FakeNetBackend
// and a real (not running) EventLoop, activated with one FakeVirtqueueDriver
// per queue (receiveq/transmitq per pair, then the control queue).
#ifndef VMM_TESTS_UNIT_DEVICES_VIRTIO_NET_VIRTIO_NET_TEST_UTIL_H_
#define VMM_TESTS_UNIT_DEVICES_VIRTIO_NET_VIRTIO_NET_TEST_UTIL_H_

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "base/event_loop.h"
#include "devices/virtio/net/virtio_net.h"
#include "devices/virtio/net/virtio_net_spec.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_virtio_context.h"
#include "tests/fakes/fake_virtqueue_driver.h"
#include "tests/fakes/test_guest_memory.h"
#include "tests/unit/devices/virtio/net/fake_net_backend.h"

namespace vmm::testing {

constexpr uint64_t Bit(unsigned n) { return 1ull << n; }

inline constexpr std::array<uint8_t, 6> kMac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
// What a minimal driver negotiates: no offloads, no merged buffers.
inline constexpr uint64_t kBasic = kVirtioFVersion1 | Bit(virtio_net::kFMac) |
                                   Bit(virtio_net::kFStatus) | Bit(virtio_net::kFCtrlVq) |
                                   Bit(virtio_net::kFCtrlRx);
inline constexpr uint64_t kMerge = kBasic | Bit(virtio_net::kFMrgRxbuf);
inline constexpr uint32_t kHdr = VirtioNet::kHeaderSize;

// A frame as the backend carries it: a header (num_buffers 0, flags `flags`)
// then `len` payload bytes derived from `seed`.
inline std::vector<uint8_t> Frame(size_t len, uint8_t seed = 1, uint8_t flags = 0) {
  std::vector<uint8_t> f(kHdr + len, 0);
  f[0] = flags;
  for (size_t i = 0; i < len; ++i) f[kHdr + i] = static_cast<uint8_t>(seed + i * 13);
  return f;
}

inline uint16_t NumBuffers(const std::vector<uint8_t>& written) {
  uint16_t n = 0;
  if (written.size() >= kHdr) std::memcpy(&n, &written[10], 2);
  return n;
}

class VirtioNetTest : public ::testing::Test {
 protected:
  void Make(int pairs = 1, unsigned offloads = FakeNetBackend::kAllOffloads) {
    auto backend = std::make_unique<FakeNetBackend>(pairs, offloads);
    backend_ = backend.get();
    auto loop = EventLoop::Create();
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = std::move(*loop);
    dev_ = std::make_unique<VirtioNet>(std::move(backend), kMac, loop_.get());
  }

  // Activates with `features` (masked by what is offered); every queue gets
  // `size` entries.
  void Activate(uint64_t features, uint16_t size = 16, bool event_idx = false,
                bool indirect = false) {
    if (!dev_) Make();
    const size_t count = dev_->queue_max_sizes().size();
    VirtioActivation a;
    a.memory = &mem_;
    a.features = features & dev_->device_features();
    a.context = &ctx_;
    drivers_.clear();
    for (size_t i = 0; i < count; ++i) {
      FakeVirtqueueDriverOptions o;
      o.size = size;
      o.ring_base = GuestAddress(0x10000 * (i + 1));
      o.data_base = GuestAddress(0x100000 * (i + 1));
      o.data_size = 0x100000;
      o.event_idx = event_idx;
      o.indirect = indirect;
      drivers_.push_back(std::make_unique<FakeVirtqueueDriver>(mem_, o));
      auto q = Virtqueue::Create(drivers_.back()->config(), mem_);
      ASSERT_TRUE(q.ok()) << q.status();
      a.queues.push_back(std::move(*q));
      a.queue_enabled.push_back(true);
    }
    absl::Status s = dev_->Activate(std::move(a));
    ASSERT_TRUE(s.ok()) << s;
  }

  FakeVirtqueueDriver& rxq(int pair = 0) { return *drivers_[2 * pair]; }
  FakeVirtqueueDriver& txq(int pair = 0) { return *drivers_[2 * pair + 1]; }
  FakeVirtqueueDriver& ctrlq() { return *drivers_.back(); }
  uint16_t ctrl_index() const { return static_cast<uint16_t>(drivers_.size() - 1); }

  // Receive buffers: one single-descriptor chain per entry of `lens`.
  void AddRxBuffers(std::vector<uint32_t> lens, int pair = 0) {
    for (uint32_t len : lens) rxq(pair).AddChainBytes({}, {len});
  }

  // Sends a control command; returns the ack byte (0xee when none came back).
  uint8_t Ctrl(uint8_t cls, uint8_t cmd, std::vector<uint8_t> data) {
    std::vector<std::vector<uint8_t>> readable = {{cls, cmd}};
    if (!data.empty()) readable.push_back(std::move(data));
    ctrlq().AddChainBytes(readable, {1});
    dev_->ProcessQueue(ctrl_index());
    auto used = ctrlq().PopUsed();
    if (!used || used->written.size() != 1) return 0xee;
    return used->written[0];
  }

  GuestMemory mem_ = TestGuestMemory(16 << 20);
  FakeVirtioContext ctx_;
  std::unique_ptr<EventLoop> loop_;
  FakeNetBackend* backend_ = nullptr;
  std::unique_ptr<VirtioNet> dev_;
  std::vector<std::unique_ptr<FakeVirtqueueDriver>> drivers_;
};

}  // namespace vmm::testing

#endif  // VMM_TESTS_UNIT_DEVICES_VIRTIO_NET_VIRTIO_NET_TEST_UTIL_H_
