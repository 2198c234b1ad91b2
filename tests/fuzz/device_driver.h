// A fuzz-input-driven virtio driver for multi-queue device targets (net, console, rng,
// vsock): negotiates a subset of the device's features, lays out every queue in the shared
// 64 KiB of guest RAM, activates the device (and re-activates it after a reset), publishes
// well-formed chains (direct or through an indirect table) made of segments the target
// chooses, and applies raw ring operations (ring_ops.h) to any queue.
//
// Chains are built by the tests' own driver (tests/fakes/virtqueue_driver.h), one per
// queue, in its reuse_descriptors mode: descriptors are handed out in table order whether
// or not the device still holds them, and misuse is ignored (the fuzzer means it).
//
// Layout: queue q's descriptor table at q * 0x1000, avail ring at +0x400, used ring at
// +0x800 (queue sizes are at most 64); buffers and indirect tables in the data area after
// the last queue, a share of it per queue, each handed out by a wrapping bump allocator.
#ifndef VMM_TESTS_FUZZ_DEVICE_DRIVER_H_
#define VMM_TESTS_FUZZ_DEVICE_DRIVER_H_

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "base/guest_memory.h"
#include "devices/virtio/virtio_device.h"
#include "devices/virtio/virtqueue.h"
#include "tests/fakes/fake_virtio_context.h"
#include "tests/fakes/virtqueue_driver.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/ring_ops.h"

namespace vmm::fuzz {

// One buffer of a well-formed chain: `bytes` written at its start (for device-readable
// ones), `len` its descriptor length (at least bytes.size()).
struct Segment {
  std::vector<uint8_t> bytes;
  uint32_t len = 0;
  bool writable = false;
};

inline Segment Readable(std::vector<uint8_t> bytes) {
  const uint32_t len = static_cast<uint32_t>(bytes.size());
  return Segment{std::move(bytes), len, false};
}
inline Segment Writable(uint32_t len) { return Segment{{}, len, true}; }

class DeviceDriver {
 public:
  static constexpr uint64_t kMemorySize = 0x10000;
  static constexpr uint64_t kQueueStride = 0x1000;

  DeviceDriver(const GuestMemory& mem, VirtioDevice& device)
      : mem_(mem), device_(device), queue_count_(device.queue_max_sizes().size()) {
    FUZZ_CHECK(queue_count_ > 0 && queue_count_ <= 8);
    data_ = kQueueStride * queue_count_;
  }

  // Chooses features (VERSION_1 kept unless the input says otherwise), queue sizes and
  // which queues are enabled, and activates the device. Returns whether it accepted.
  bool Activate(FuzzedDataProvider& in) {
    const uint64_t offered = device_.device_features();
    features_ = offered & in.ConsumeIntegral<uint64_t>();
    if (in.ConsumeIntegralInRange<int>(0, 15) != 0) features_ |= offered & kVirtioFVersion1;
    const std::vector<uint16_t> max = device_.queue_max_sizes();
    layouts_.clear();
    drivers_.clear();
    chains_.clear();
    const uint64_t share = ((kMemorySize - data_) / queue_count_) & ~uint64_t{15};
    VirtioActivation activation;
    activation.memory = &mem_;
    activation.features = features_;
    activation.context = &context_;
    for (size_t q = 0; q < queue_count_; ++q) {
      RingLayout l;
      uint16_t size = static_cast<uint16_t>(1u << in.ConsumeIntegralInRange<int>(0, 6));
      l.size = std::min<uint16_t>(size, max[q]);
      l.desc = kQueueStride * q;
      l.avail = l.desc + 0x400;
      l.used = l.desc + 0x800;
      l.data = data_;
      l.data_size = kMemorySize - data_;
      l.memory_size = kMemorySize;
      layouts_.push_back(l);
      drivers_.emplace_back(mem_, l);
      // Fresh rings: a re-activation starts from zeroed ring memory, as a driver would.
      const std::vector<uint8_t> zeros(kQueueStride, 0);
      FUZZ_CHECK(mem_.WriteBytes(GuestAddress(l.desc), zeros).ok());
      chains_.emplace_back(mem_, testing::VirtqueueDriverOptions{
                                     .size = l.size,
                                     .desc = GuestAddress(l.desc),
                                     .avail = GuestAddress(l.avail),
                                     .used = GuestAddress(l.used),
                                     .data_base = GuestAddress(data_ + share * q),
                                     .data_size = share,
                                     .event_idx = (features_ & kVirtioFEventIdx) != 0,
                                     .indirect = (features_ & kVirtioFIndirectDesc) != 0,
                                     .reuse_descriptors = true});
      auto queue = Virtqueue::Create(chains_.back().config(), mem_);
      FUZZ_CHECK(queue.ok());
      activation.queues.push_back(std::move(*queue));
      activation.queue_enabled.push_back(in.ConsumeIntegralInRange<int>(0, 15) != 0);
    }
    active_ = device_.Activate(std::move(activation)).ok();
    return active_;
  }

  bool active() const { return active_; }
  uint64_t features() const { return features_; }
  size_t queue_count() const { return queue_count_; }
  testing::FakeVirtioContext& context() { return context_; }

  uint16_t ConsumeQueue(FuzzedDataProvider& in) const {
    return static_cast<uint16_t>(in.ConsumeIntegralInRange<size_t>(0, queue_count_));
  }

  // Publishes a chain of `segments` on queue `q` (direct descriptors, or an indirect
  // table when the input asks and INDIRECT_DESC was negotiated).
  void AddChain(uint16_t q, const std::vector<Segment>& segments, FuzzedDataProvider& in) {
    if (q >= chains_.size() || segments.empty()) return;
    testing::VirtqueueDriver& driver = chains_[q];
    std::vector<testing::VirtqueueDriver::ChainPart> parts;
    for (const Segment& s : segments) {
      const uint32_t len = std::max<uint32_t>(s.len, static_cast<uint32_t>(s.bytes.size()));
      // Too big for the data area: the descriptor then runs past it, or past RAM.
      const GuestAddress at = driver.Alloc(len);
      if (!s.bytes.empty()) driver.WriteGuest(at, s.bytes);
      parts.push_back({VirtioBuffer{at, len}, s.writable});
    }
    const bool indirect =
        (features_ & kVirtioFIndirectDesc) != 0 && in.ConsumeIntegralInRange<int>(0, 3) == 0;
    if (indirect) {
      driver.AddIndirectChainOf(parts);
    } else {
      driver.AddChainOf(parts);  // refused when it does not fit the ring
    }
  }

  // A raw driver operation (ring_ops.h) on an input-chosen queue.
  void RawStep(FuzzedDataProvider& in) {
    if (drivers_.empty()) return;
    drivers_[in.ConsumeIntegralInRange<size_t>(0, drivers_.size() - 1)].Step(in);
  }

 private:
  const GuestMemory& mem_;
  VirtioDevice& device_;
  const size_t queue_count_;
  uint64_t data_ = 0;
  uint64_t features_ = 0;
  bool active_ = false;
  std::vector<RingLayout> layouts_;
  std::vector<RingDriver> drivers_;          // raw ring operations
  std::vector<testing::VirtqueueDriver> chains_;  // well-formed chains
  testing::FakeVirtioContext context_;
};

}  // namespace vmm::fuzz

#endif  // VMM_TESTS_FUZZ_DEVICE_DRIVER_H_
