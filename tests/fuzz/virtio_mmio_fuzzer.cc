// Fuzzes the virtio-mmio (version 2) register file: guest reads and writes of any width at
// any offset, with a fake device behind it that completes chains on notify, so feature
// negotiation, queue set-up, activation, notify, interrupt ack and reset are all reachable.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "devices/virtio/virtio_mmio_transport.h"
#include "tests/fakes/fake_virtio_device.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/ring_ops.h"

namespace vmm::fuzz {
namespace {

constexpr uint64_t kRegisters[] = {0x00, 0x04, 0x08, 0x0c, 0x10, 0x14, 0x20, 0x24, 0x30,  0x34,
                                   0x38, 0x44, 0x50, 0x60, 0x64, 0x70, 0x80, 0x84, 0x90,  0x94,
                                   0xa0, 0xa4, 0xac, 0xb0, 0xb4, 0xb8, 0xbc, 0xfc, 0x100, 0x104};

uint64_t ConsumeValue(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0:
      return in.ConsumeIntegralInRange<uint64_t>(0, 16);
    case 1:
      return 0x1000ull * in.ConsumeIntegralInRange<uint64_t>(0, 16);  // ring addresses
    case 2:
      return 1ull << in.ConsumeIntegralInRange<int>(0, 63);  // feature / status bits
    default:
      return in.ConsumeIntegral<uint64_t>();
  }
}

void WriteReg(VirtioMmioTransport& t, uint64_t offset, uint32_t value) {
  const uint8_t b[4] = {static_cast<uint8_t>(value), static_cast<uint8_t>(value >> 8),
                        static_cast<uint8_t>(value >> 16), static_cast<uint8_t>(value >> 24)};
  t.Write(offset, b);
}

// The driver's initialisation sequence with input-chosen features and queue layout, so the
// fuzzer reaches activation, notify handling and interrupts without finding it by chance.
void Handshake(VirtioMmioTransport& t, FuzzedDataProvider& in) {
  const RingLayout l;
  WriteReg(t, 0x70, 0);
  WriteReg(t, 0x70, kVirtioStatusAcknowledge);
  WriteReg(t, 0x70, kVirtioStatusAcknowledge | kVirtioStatusDriver);
  WriteReg(t, 0x24, 0);
  WriteReg(t, 0x20, in.ConsumeIntegral<uint32_t>());
  WriteReg(t, 0x24, 1);
  WriteReg(t, 0x20, 1 | (in.ConsumeIntegral<uint32_t>() & 0x6));  // VERSION_1 (+ maybe more)
  WriteReg(t, 0x70, kVirtioStatusAcknowledge | kVirtioStatusDriver | kVirtioStatusFeaturesOk);
  for (uint32_t q = 0; q < 2; ++q) {
    if (!in.ConsumeBool()) continue;
    const uint64_t base = q * 0x8000;  // queue 1's rings overlap queue 0's data on purpose
    WriteReg(t, 0x30, q);
    WriteReg(t, 0x38, 1u << in.ConsumeIntegralInRange<int>(0, 4));
    WriteReg(t, 0x80, static_cast<uint32_t>(base + l.desc));
    WriteReg(t, 0x90, static_cast<uint32_t>(base + l.avail));
    WriteReg(t, 0xa0, static_cast<uint32_t>(base + l.used));
    WriteReg(t, 0x44, 1);
  }
  WriteReg(t, 0x70,
           kVirtioStatusAcknowledge | kVirtioStatusDriver | kVirtioStatusFeaturesOk |
               kVirtioStatusDriverOk);
}

}  // namespace
}  // namespace vmm::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vmm;
  using namespace vmm::fuzz;
  const GuestMemory& mem = ZeroedSmallMemory();
  FuzzedDataProvider in(data, size);

  testing::FakeVirtioDeviceOptions options;
  options.config = {1, 2, 3, 4, 5, 6, 7, 8};
  options.complete_chains = true;
  auto device = std::make_shared<testing::FakeVirtioDevice>(options);
  auto transport = VirtioMmioTransport::Create(device, mem);
  FUZZ_CHECK(transport.ok());
  VirtioMmioTransport& t = **transport;

  RingDriver driver(mem, RingLayout{});
  while (in.remaining_bytes() > 0) {
    const int op = in.ConsumeIntegralInRange<int>(0, 6);
    if (op == 4 || op == 5) {
      driver.Step(in);
      continue;
    }
    if (op == 6) {
      if (in.ConsumeIntegralInRange<int>(0, 3) == 0)
        Handshake(t, in);
      else
        WriteReg(t, VirtioMmioTransport::kQueueNotifyOffset,
                 in.ConsumeIntegralInRange<uint32_t>(0, 2));
      continue;
    }
    const uint64_t offset = in.ConsumeIntegralInRange<int>(0, 7) == 0
                                ? in.ConsumeIntegralInRange<uint64_t>(0, 0x220)
                                : kRegisters[in.ConsumeIntegralInRange<size_t>(
                                      0, sizeof(kRegisters) / sizeof(kRegisters[0]) - 1)];
    const size_t width = in.ConsumeIntegralInRange<int>(0, 3) == 0 ? ConsumeWidth(in) : 4;
    std::vector<uint8_t> buf(width);
    if (op == 0) {
      t.Read(offset, absl::MakeSpan(buf));
    } else {
      const uint64_t value = ConsumeValue(in);
      for (size_t i = 0; i < width; ++i) buf[i] = static_cast<uint8_t>(value >> (8 * i));
      t.Write(offset, buf);
    }
  }
  return 0;
}
