// Fuzzes restoring devices from a snapshot (issue 15): what a state file's
// device sections hold is untrusted (vmm --restore takes any directory). A
// virtio-pci or virtio-mmio transport over a device that saves its state is
// set up as a driver would and saved; the saved bytes (PCI config space,
// MSI-X table, registers, queue positions, device state) are then mutated
// by the input — bytes flipped or set, cut short, or replaced outright —
// and restored into a fresh transport, which must refuse them or come up
// consistent: its queues are kicked and it is saved again. The i8042 and the
// CMOS RTC restore raw input.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <memory>
#include <string>

#include "devices/legacy/cmos_rtc.h"
#include "devices/legacy/i8042.h"
#include "devices/virtio/virtio_mmio_transport.h"
#include "devices/virtio/virtio_pci_transport.h"
#include "tests/fakes/fake_irq_line.h"
#include "tests/fakes/fake_msi_sink.h"
#include "tests/fakes/fake_virtio_device.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/ring_ops.h"

namespace vmm::fuzz {
namespace {

using testing::FakeVirtioDevice;
using testing::FakeVirtioDeviceOptions;

FakeVirtioDeviceOptions Options(FuzzedDataProvider& in) {
  return {.complete_chains = true,
          .snapshot_state = in.ConsumeBool() ? std::string() : std::string("device state")};
}

// A driver's set-up through the shared registers, MSI-X vectors on PCI.
void SetUp(VirtioTransportState& t, FuzzedDataProvider& in) {
  const RingLayout l;
  using R = VirtioRegister;
  t.Write(R::kDeviceStatus, kVirtioStatusAcknowledge | kVirtioStatusDriver);
  t.Write(R::kDriverFeatureSelect, 1);
  t.Write(R::kDriverFeature, 1);
  t.Write(R::kDeviceStatus,
          kVirtioStatusAcknowledge | kVirtioStatusDriver | kVirtioStatusFeaturesOk);
  t.Write(R::kConfigMsixVector, 0);
  for (uint32_t q = 0; q < 2; ++q) {
    if (!in.ConsumeBool()) continue;
    const uint64_t base = q * 0x8000;
    t.Write(R::kQueueSelect, q);
    t.Write(R::kQueueSize, 1u << in.ConsumeIntegralInRange<int>(0, 4));
    t.Write(R::kQueueMsixVector, q + 1);
    t.Write(R::kQueueDescLow, static_cast<uint32_t>(base + l.desc));
    t.Write(R::kQueueDriverLow, static_cast<uint32_t>(base + l.avail));
    t.Write(R::kQueueDeviceLow, static_cast<uint32_t>(base + l.used));
    t.Write(R::kQueueEnable, 1);
  }
  if (in.ConsumeBool()) {
    t.Write(R::kDeviceStatus, kVirtioStatusAcknowledge | kVirtioStatusDriver |
                                  kVirtioStatusFeaturesOk | kVirtioStatusDriverOk);
  }
}

// The input's changes to `bytes`.
std::string Mutate(std::string bytes, FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0:
      return bytes;
    case 1:
      return bytes.substr(0, in.ConsumeIntegralInRange<size_t>(0, bytes.size()));
    case 2:
      return in.ConsumeRandomLengthString(512);
    default:
      for (int n = in.ConsumeIntegralInRange<int>(1, 8); n > 0 && !bytes.empty(); --n) {
        const size_t at = in.ConsumeIntegralInRange<size_t>(0, bytes.size() - 1);
        bytes[at] = in.ConsumeBool() ? static_cast<char>(bytes[at] ^ (1 << in.ConsumeIntegralInRange<int>(0, 7)))
                                     : static_cast<char>(in.ConsumeIntegral<uint8_t>());
      }
      return bytes;
  }
}

// After a restore: kicks every queue and saves again.
void Exercise(VirtioTransportState& t) {
  for (uint16_t q = 0; q < t.num_queues(); ++q) t.HandleQueueNotify(q);
  (void)t.SaveState();
}

void FuzzPci(const GuestMemory& mem, FuzzedDataProvider& in) {
  const FakeVirtioDeviceOptions options = Options(in);
  auto sink = std::make_shared<FakeMsiSink>();
  auto made = VirtioPciTransport::Create(std::make_shared<FakeVirtioDevice>(options), mem, sink);
  FUZZ_CHECK(made.ok());
  std::shared_ptr<VirtioPciTransport> source = *made;
  const uint16_t cap = source->msix().capability_offset();
  const uint8_t enable[2] = {0, static_cast<uint8_t>(in.ConsumeBool() ? 0x80 : 0)};
  source->config().Write(cap + 2, enable);
  SetUp(source->state(), in);
  absl::StatusOr<std::string> state = source->SaveState();
  FUZZ_CHECK(state.ok());
  const std::string config = Mutate(source->config().SaveState(), in);
  const std::string mutated = Mutate(*state, in);

  auto fresh = VirtioPciTransport::Create(std::make_shared<FakeVirtioDevice>(options), mem,
                                          std::make_shared<FakeMsiSink>());
  FUZZ_CHECK(fresh.ok());
  (*fresh)->config().ConnectIntx(std::make_shared<FakeIrqLine>());
  if (!(*fresh)->config().RestoreState(config).ok()) return;
  if ((*fresh)->RestoreState(mutated).ok()) Exercise((*fresh)->state());
}

void FuzzMmio(const GuestMemory& mem, FuzzedDataProvider& in) {
  const FakeVirtioDeviceOptions options = Options(in);
  auto source = VirtioMmioTransport::Create(std::make_shared<FakeVirtioDevice>(options), mem);
  FUZZ_CHECK(source.ok());
  SetUp((*source)->state(), in);
  absl::StatusOr<std::string> state = (*source)->state().SaveState();
  FUZZ_CHECK(state.ok());
  const std::string mutated = Mutate(*state, in);
  auto fresh = VirtioMmioTransport::Create(std::make_shared<FakeVirtioDevice>(options), mem);
  FUZZ_CHECK(fresh.ok());
  if ((*fresh)->state().RestoreState(mutated).ok()) Exercise((*fresh)->state());
}

void FuzzLegacy(FuzzedDataProvider& in) {
  I8042 i8042([] {});
  CmosRtc rtc;
  if (i8042.RestoreState(in.ConsumeRandomLengthString(64)).ok()) {
    for (uint64_t port : {I8042::kDataOffset, I8042::kCommandOffset}) {
      uint8_t b = 0;
      i8042.Read(port, absl::MakeSpan(&b, 1));
    }
  }
  if (rtc.RestoreState(in.ConsumeRemainingBytesAsString()).ok()) {
    for (uint8_t reg = 0; reg < 0x80; ++reg) {
      const uint8_t index[1] = {reg};
      uint8_t value[1];
      rtc.Write(CmosRtc::kIndexOffset, index);
      rtc.Read(CmosRtc::kDataOffset, value);
    }
  }
}

}  // namespace
}  // namespace vmm::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vmm;
  using namespace vmm::fuzz;
  FuzzedDataProvider in(data, size);
  const GuestMemory& mem = ZeroedSmallMemory();
  switch (in.ConsumeIntegralInRange<int>(0, 2)) {
    case 0:
      FuzzPci(mem, in);
      break;
    case 1:
      FuzzMmio(mem, in);
      break;
    default:
      FuzzLegacy(in);
  }
  return 0;
}
