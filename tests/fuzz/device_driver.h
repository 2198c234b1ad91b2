// A fuzz-input-driven virtio driver for multi-queue device targets (net, console, rng,
// vsock): negotiates a subset of the device's features, lays out every queue in the shared
// 64 KiB of guest RAM, activates the device (and re-activates it after a reset), publishes
// well-formed chains (direct or through an indirect table) made of segments the target
// chooses, and applies raw ring operations (ring_ops.h) to any queue.
//
// Layout: queue q's descriptor table at q * 0x1000, avail ring at +0x400, used ring at
// +0x800 (queue sizes are at most 64); buffers and indirect tables in the data area after
// the last queue, handed out by a wrapping bump allocator.
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
    avail_idx_.assign(queue_count_, 0);
    next_desc_.assign(queue_count_, 0);
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
      VirtqueueConfig config{.size = l.size,
                             .desc = GuestAddress(l.desc),
                             .avail = GuestAddress(l.avail),
                             .used = GuestAddress(l.used),
                             .event_idx = (features_ & kVirtioFEventIdx) != 0,
                             .indirect = (features_ & kVirtioFIndirectDesc) != 0};
      auto queue = Virtqueue::Create(config, mem_);
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
    if (q >= layouts_.size() || segments.empty()) return;
    const RingLayout& l = layouts_[q];
    std::vector<VirtqDesc> descs;
    for (const Segment& s : segments) {
      const uint32_t len = std::max<uint32_t>(s.len, static_cast<uint32_t>(s.bytes.size()));
      const uint64_t at = Allocate(len);
      if (!s.bytes.empty()) (void)mem_.WriteBytes(GuestAddress(at), s.bytes);
      descs.push_back(VirtqDesc{at, len, static_cast<uint16_t>(s.writable ? kVirtqDescFWrite : 0),
                                0});
    }
    const bool indirect =
        (features_ & kVirtioFIndirectDesc) != 0 && in.ConsumeIntegralInRange<int>(0, 3) == 0;
    uint16_t head;
    if (indirect) {
      const uint64_t table = Allocate(static_cast<uint32_t>(16 * descs.size()));
      for (size_t i = 0; i < descs.size(); ++i) {
        descs[i].next = static_cast<uint16_t>(i + 1);
        if (i + 1 < descs.size()) descs[i].flags |= kVirtqDescFNext;
        (void)mem_.Write(GuestAddress(table + 16 * i), descs[i]);
      }
      head = NextDesc(q);
      (void)mem_.Write(GuestAddress(l.desc + 16ull * head),
                       VirtqDesc{table, static_cast<uint32_t>(16 * descs.size()),
                                 kVirtqDescFIndirect, 0});
    } else {
      if (descs.size() > l.size) return;  // a well-formed chain fits the ring
      std::vector<uint16_t> slots;
      for (size_t i = 0; i < descs.size(); ++i) slots.push_back(NextDesc(q));
      for (size_t i = 0; i < descs.size(); ++i) {
        if (i + 1 < descs.size()) {
          descs[i].flags |= kVirtqDescFNext;
          descs[i].next = slots[i + 1];
        }
        (void)mem_.Write(GuestAddress(l.desc + 16ull * slots[i]), descs[i]);
      }
      head = slots[0];
    }
    (void)mem_.Write<uint16_t>(GuestAddress(l.avail + 4 + 2ull * (avail_idx_[q] % l.size)), head);
    ++avail_idx_[q];
    (void)mem_.Write<uint16_t>(GuestAddress(l.avail + 2), avail_idx_[q]);
  }

  // A raw driver operation (ring_ops.h) on an input-chosen queue.
  void RawStep(FuzzedDataProvider& in) {
    if (drivers_.empty()) return;
    drivers_[in.ConsumeIntegralInRange<size_t>(0, drivers_.size() - 1)].Step(in);
  }

 private:
  uint16_t NextDesc(uint16_t q) {
    const uint16_t d = static_cast<uint16_t>(next_desc_[q] % layouts_[q].size);
    next_desc_[q] = static_cast<uint16_t>(d + 1);
    return d;
  }
  // `len` bytes of the data area (16-byte aligned; wraps to its start when full).
  uint64_t Allocate(uint32_t len) {
    const uint64_t room = kMemorySize - data_;
    const uint64_t need = (uint64_t{len} + 15) & ~uint64_t{15};
    if (need > room) return data_;  // the caller's descriptor then runs past RAM: hostile
    if (cursor_ + need > room) cursor_ = 0;
    const uint64_t at = data_ + cursor_;
    cursor_ += need;
    return at;
  }

  const GuestMemory& mem_;
  VirtioDevice& device_;
  const size_t queue_count_;
  uint64_t data_ = 0;
  uint64_t cursor_ = 0;
  uint64_t features_ = 0;
  bool active_ = false;
  std::vector<RingLayout> layouts_;
  std::vector<RingDriver> drivers_;
  std::vector<uint16_t> avail_idx_;
  std::vector<uint16_t> next_desc_;
  testing::FakeVirtioContext context_;
};

}  // namespace vmm::fuzz

#endif  // VMM_TESTS_FUZZ_DEVICE_DRIVER_H_
