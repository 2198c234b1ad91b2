// Fuzzes virtio-blk request handling: request chains (well-formed ones built from the input
// and raw ring contents from ring_ops.h) processed by a VirtioBlock on a 64 KiB fake disk,
// plus config space reads and writes.
#include <fuzzer/FuzzedDataProvider.h>
#include <linux/virtio_blk.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "devices/virtio/block/virtio_block.h"
#include "devices/virtio/virtqueue.h"
#include "tests/fakes/fake_block_backend.h"
#include "tests/fakes/fake_virtio_context.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/ring_ops.h"

namespace vmm::fuzz {
namespace {

constexpr uint64_t kDiskBytes = 64 * 1024;

// Builds header / data / status descriptors at `slot` and publishes the head.
void AddRequest(const GuestMemory& mem, const RingLayout& l, uint16_t& avail_idx,
                FuzzedDataProvider& in) {
  static constexpr uint32_t kTypes[] = {VIRTIO_BLK_T_IN,      VIRTIO_BLK_T_OUT,
                                        VIRTIO_BLK_T_FLUSH,   VIRTIO_BLK_T_GET_ID,
                                        VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES};
  const uint16_t first = in.ConsumeIntegral<uint16_t>() % l.size;
  const uint32_t type = in.ConsumeIntegralInRange<int>(0, 7) == 0
                            ? in.ConsumeIntegral<uint32_t>()
                            : kTypes[in.ConsumeIntegralInRange<size_t>(0, 5)];
  virtio_blk_outhdr hdr{type, 0, in.ConsumeIntegralInRange<uint64_t>(0, kDiskBytes / 512 + 2)};
  if (in.ConsumeIntegralInRange<int>(0, 15) == 0) hdr.sector = in.ConsumeIntegral<uint64_t>();
  const uint64_t hdr_at = l.data;
  const uint64_t data_at = l.data + 0x100;
  const uint32_t data_len = in.ConsumeIntegralInRange<uint32_t>(0, 0x2000);
  const uint64_t status_at = l.data + 0x100 + 0x2000;
  std::vector<uint8_t> payload = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 32));
  (void)mem.Write(GuestAddress(hdr_at), hdr);
  if (!payload.empty()) (void)mem.WriteBytes(GuestAddress(data_at), payload);
  const bool device_writes = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
  const uint16_t d1 = (first + 1) % l.size, d2 = (first + 2) % l.size;
  const bool with_data = in.ConsumeBool();
  (void)mem.Write(GuestAddress(l.desc + 16ull * first),
                  VirtqDesc{hdr_at, sizeof(hdr), kVirtqDescFNext, with_data ? d1 : d2});
  if (with_data) {
    (void)mem.Write(
        GuestAddress(l.desc + 16ull * d1),
        VirtqDesc{data_at, data_len,
                  static_cast<uint16_t>(kVirtqDescFNext | (device_writes ? kVirtqDescFWrite : 0)),
                  d2});
  }
  (void)mem.Write(GuestAddress(l.desc + 16ull * d2), VirtqDesc{status_at, 1, kVirtqDescFWrite, 0});
  (void)mem.Write<uint16_t>(GuestAddress(l.avail + 4 + 2ull * (avail_idx % l.size)), first);
  ++avail_idx;
  (void)mem.Write<uint16_t>(GuestAddress(l.avail + 2), avail_idx);
}

}  // namespace
}  // namespace vmm::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vmm;
  using namespace vmm::fuzz;
  const GuestMemory& mem = ZeroedSmallMemory();
  FuzzedDataProvider in(data, size);

  const bool read_only = in.ConsumeBool();
  auto backend = std::make_unique<testing::FakeBlockBackend>(kDiskBytes, read_only);
  // Polling on, with a window too short to slow the fuzzer: its rounds are
  // exercised (a ring that changes or breaks between them included).
  VirtioBlock block(std::move(backend), "fuzz-serial", absl::Microseconds(1));
  testing::FakeVirtioContext context;

  RingLayout layout;
  layout.size = static_cast<uint16_t>(1u << in.ConsumeIntegralInRange<int>(1, 6));  // 2..64
  // Negotiate a subset of what the device offers.
  const uint64_t features =
      block.device_features() & (in.ConsumeIntegral<uint64_t>() | kVirtioFVersion1);
  VirtqueueConfig config{.size = layout.size,
                         .desc = GuestAddress(layout.desc),
                         .avail = GuestAddress(layout.avail),
                         .used = GuestAddress(layout.used),
                         .event_idx = (features & kVirtioFEventIdx) != 0,
                         .indirect = (features & kVirtioFIndirectDesc) != 0};
  auto queue = Virtqueue::Create(config, mem);
  FUZZ_CHECK(queue.ok());
  VirtioActivation activation;
  activation.memory = &mem;
  activation.features = features;
  activation.queues.push_back(std::move(*queue));
  activation.queue_enabled.push_back(true);
  activation.context = &context;
  if (!block.Activate(std::move(activation)).ok()) return 0;

  RingDriver driver(mem, layout);
  uint16_t avail_idx = 0;
  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 6)) {
      case 0:
      case 1:
        AddRequest(mem, layout, avail_idx, in);
        break;
      case 2:
        driver.Step(in);
        break;
      case 3:
        FuzzConfigRead(block, in, 0x80);
        break;
      case 4:
        FuzzConfigWrite(block, in, 0x80);
        break;
      default:
        block.ProcessQueue(in.ConsumeIntegralInRange<uint16_t>(0, 1));
        break;
    }
  }
  block.Reset();
  return 0;
}
