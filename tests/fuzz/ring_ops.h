// Driver-side virtqueue operations decoded from fuzz input: descriptors (direct and in
// indirect tables), avail ring entries and index, flags and event fields, and raw pokes.
// Mostly well-formed values (addresses inside the data area, small lengths) so the fuzzer
// reaches deep into chain walking, with hostile raw values mixed in.
#ifndef VMM_TESTS_FUZZ_RING_OPS_H_
#define VMM_TESTS_FUZZ_RING_OPS_H_

#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>

#include "base/guest_memory.h"
#include "devices/virtio/virtqueue.h"
#include "tests/fuzz/fuzz_util.h"

namespace vmm::fuzz {

struct RingLayout {
  uint16_t size = 16;
  uint64_t desc = 0x0000;
  uint64_t avail = 0x1000;
  uint64_t used = 0x2000;
  uint64_t data = 0x4000;  // buffers and indirect tables live here
  uint64_t data_size = 0xc000;
  uint64_t memory_size = 0x10000;
};

class RingDriver {
 public:
  RingDriver(const GuestMemory& mem, const RingLayout& layout) : mem_(mem), l_(layout) {}

  // Applies one driver operation. Guest-memory writes outside RAM are simply dropped.
  void Step(FuzzedDataProvider& in) {
    switch (in.ConsumeIntegralInRange<int>(0, 7)) {
      case 0:  // a descriptor in the ring's table
      case 1:
        WriteDesc(l_.desc + 16ull * (in.ConsumeIntegral<uint16_t>() % (l_.size + 1)), in);
        break;
      case 2:  // a descriptor in an indirect table somewhere in the data area
        WriteDesc(l_.data + 16ull * in.ConsumeIntegralInRange<uint64_t>(0, l_.data_size / 16 - 1),
                  in);
        break;
      case 3: {  // publish a head
        const uint16_t head = in.ConsumeIntegral<uint16_t>() % (l_.size + 1);
        (void)mem_.Write<uint16_t>(GuestAddress(l_.avail + 4 + 2ull * (avail_idx_ % l_.size)),
                                   head);
        ++avail_idx_;
        (void)mem_.Write<uint16_t>(GuestAddress(l_.avail + 2), avail_idx_);
        break;
      }
      case 4:  // a hostile avail index
        avail_idx_ = in.ConsumeIntegral<uint16_t>();
        (void)mem_.Write<uint16_t>(GuestAddress(l_.avail + 2), avail_idx_);
        break;
      case 5:  // avail flags, used_event, used flags/idx, avail_event
        switch (in.ConsumeIntegralInRange<int>(0, 3)) {
          case 0:
            (void)mem_.Write<uint16_t>(GuestAddress(l_.avail), in.ConsumeIntegral<uint16_t>());
            break;
          case 1:
            (void)mem_.Write<uint16_t>(GuestAddress(l_.avail + 4 + 2ull * l_.size),
                                       in.ConsumeIntegral<uint16_t>());
            break;
          case 2:
            (void)mem_.Write<uint16_t>(GuestAddress(l_.used + 2), in.ConsumeIntegral<uint16_t>());
            break;
          default:
            (void)mem_.Write<uint16_t>(GuestAddress(l_.used + 4 + 8ull * l_.size),
                                       in.ConsumeIntegral<uint16_t>());
            break;
        }
        break;
      default:
        PokeMemory(in, mem_, l_.memory_size);
        break;
    }
  }

 private:
  void WriteDesc(uint64_t at, FuzzedDataProvider& in) {
    VirtqDesc d{};
    if (in.ConsumeIntegralInRange<int>(0, 7) == 0) {
      d.addr = in.ConsumeIntegral<uint64_t>();
      d.len = in.ConsumeIntegral<uint32_t>();
    } else {
      d.addr = l_.data + in.ConsumeIntegralInRange<uint64_t>(0, l_.data_size - 1);
      d.len = in.ConsumeIntegralInRange<uint32_t>(0, 0x2000);
    }
    d.flags = in.ConsumeIntegral<uint8_t>() & 0x0f;
    d.next = in.ConsumeIntegral<uint16_t>() % (l_.size + 2);
    (void)mem_.Write(GuestAddress(at), d);
  }

  const GuestMemory& mem_;
  const RingLayout l_;
  uint16_t avail_idx_ = 0;
};

}  // namespace vmm::fuzz

#endif  // VMM_TESTS_FUZZ_RING_OPS_H_
