// Fuzzes split-virtqueue chain walking: descriptor tables, indirect tables, the avail and
// used rings and EVENT_IDX, driven by a hostile driver (ring_ops.h), with the device side
// popping chains, copying through them, completing them and asking whether to notify.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "devices/virtio/virtqueue.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/ring_ops.h"

namespace vmm::fuzz {
namespace {

void CheckChain(const GuestMemory& mem, const DescriptorChain& chain, FuzzedDataProvider& in) {
  const uint64_t off = in.ConsumeIntegralInRange<uint64_t>(0, 0x3000);
  const uint64_t len = in.ConsumeIntegralInRange<uint64_t>(0, 0x3000);
  if (auto iov = chain.ReadableIovecs(mem, off, len); iov.ok()) CheckIovecsInGuestRam(mem, *iov);
  if (auto iov = chain.WritableIovecs(mem, off, len); iov.ok()) CheckIovecsInGuestRam(mem, *iov);
  std::vector<uint8_t> buf(in.ConsumeIntegralInRange<size_t>(0, 512));
  const size_t got = chain.ReadFrom(mem, off, absl::MakeSpan(buf));
  FUZZ_CHECK(got <= buf.size());
  const size_t put = chain.WriteTo(mem, off, buf);
  FUZZ_CHECK(put <= buf.size());
}

}  // namespace
}  // namespace vmm::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vmm;
  using namespace vmm::fuzz;
  const GuestMemory& mem = ZeroedSmallMemory();
  FuzzedDataProvider in(data, size);

  RingLayout layout;
  layout.size = static_cast<uint16_t>(1u << in.ConsumeIntegralInRange<int>(0, 5));  // 1..32
  // Clear the rings and data area left over from the previous input.
  FUZZ_CHECK(mem.WriteBytes(GuestAddress(0), std::vector<uint8_t>(0x10000, 0)).ok());

  VirtqueueConfig config{.size = layout.size,
                         .desc = GuestAddress(layout.desc),
                         .avail = GuestAddress(layout.avail),
                         .used = GuestAddress(layout.used),
                         .event_idx = in.ConsumeBool(),
                         .indirect = in.ConsumeBool()};
  if (in.ConsumeIntegralInRange<int>(0, 15) == 0) {  // hostile ring placement
    config.size = in.ConsumeIntegral<uint16_t>();
    config.desc = GuestAddress(in.ConsumeIntegralInRange<uint64_t>(0, 0x11000));
    config.avail = GuestAddress(in.ConsumeIntegralInRange<uint64_t>(0, 0x11000));
    config.used = GuestAddress(in.ConsumeIntegralInRange<uint64_t>(0, 0x11000));
  }
  auto queue = Virtqueue::Create(config, mem);
  if (!queue.ok()) return 0;

  RingDriver driver(mem, layout);
  std::deque<DescriptorChain> pending;
  bool broken = false;  // a device stops using a queue once it reported a protocol error
  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 5)) {
      case 0:
      case 1:
        driver.Step(in);
        break;
      case 2: {
        if (broken) break;
        auto chain = queue->PopChain(mem);
        if (!chain.ok()) {
          broken = true;
          break;
        }
        if (!chain->has_value()) break;
        CheckChain(mem, **chain, in);
        if (pending.size() < 64) pending.push_back(std::move(**chain));
        break;
      }
      case 3: {
        if (pending.empty() || broken) break;
        const uint32_t written = in.ConsumeIntegral<uint32_t>();
        if (!queue->AddUsed(std::move(pending.front()), written, mem).ok()) broken = true;
        pending.pop_front();
        break;
      }
      case 4:
        (void)queue->ShouldNotify(mem);
        break;
      default:
        (void)queue->SetNotificationsEnabled(in.ConsumeBool(), mem);
        break;
    }
  }
  return 0;
}
