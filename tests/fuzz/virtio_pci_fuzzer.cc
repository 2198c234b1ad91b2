// Fuzzes PCI configuration access and the virtio-pci transport: 0xCF8/0xCFC decoding,
// ECAM decoding, config space writes (BARs, command, capabilities, MSI-X control), and BAR
// accesses (common config, notify, ISR, device config, MSI-X table and PBA) — both directly
// and through the MMIO bus where the guest placed the BAR.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "arch/x86_64/layout.h"
#include "devices/bus.h"
#include "devices/pci/pci_bus.h"
#include "devices/pci/pci_config_io.h"
#include "devices/pci/pci_ecam.h"
#include "devices/pci/pci_host_bridge.h"
#include "devices/virtio/virtio_pci_transport.h"
#include "tests/fakes/fake_irq_line.h"
#include "tests/fakes/fake_msi_sink.h"
#include "tests/fakes/fake_virtio_device.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/ring_ops.h"

namespace vmm::fuzz {
namespace {

// Mostly small, register-shaped values; sometimes anything.
uint64_t ConsumeValue(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 4)) {
    case 0:
      return in.ConsumeIntegralInRange<uint64_t>(0, 16);
    case 1:
      return 0x1000ull * in.ConsumeIntegralInRange<uint64_t>(0, 16);
    case 2:
      return 1ull << in.ConsumeIntegralInRange<int>(0, 63);
    case 3:
      return ~0ull;  // BAR sizing
    default:
      return in.ConsumeIntegral<uint64_t>();
  }
}

std::vector<uint8_t> ValueBytes(uint64_t value, size_t width) {
  std::vector<uint8_t> buf(width);
  for (size_t i = 0; i < width; ++i) buf[i] = static_cast<uint8_t>(value >> (8 * i));
  return buf;
}

// A config register offset: usually inside the header or the capability list.
uint64_t ConsumeConfigReg(FuzzedDataProvider& in) {
  return in.ConsumeBool() ? in.ConsumeIntegralInRange<uint64_t>(0, 0xff) & ~3ull
                          : in.ConsumeIntegralInRange<uint64_t>(0, 0x1003);
}

// A BAR 0 offset: usually at a virtio-pci structure or the MSI-X table / PBA.
uint64_t ConsumeBarOffset(FuzzedDataProvider& in) {
  static constexpr uint64_t kBases[] = {
      VirtioPciTransport::kCommonCfgOffset, VirtioPciTransport::kIsrOffset,
      VirtioPciTransport::kDeviceCfgOffset, VirtioPciTransport::kNotifyOffset,
      VirtioPciTransport::kMsixTableOffset, VirtioPciTransport::kMsixPbaOffset};
  if (in.ConsumeIntegralInRange<int>(0, 7) == 0) {
    return in.ConsumeIntegralInRange<uint64_t>(0, VirtioPciTransport::kBarSize + 8);
  }
  return kBases[in.ConsumeIntegralInRange<size_t>(0, 5)] +
         in.ConsumeIntegralInRange<uint64_t>(0, 0x40);
}

void Common(VirtioPciTransport& t, uint64_t offset, uint64_t value, size_t width) {
  t.BarWrite(0, VirtioPciTransport::kCommonCfgOffset + offset, ValueBytes(value, width));
}

// The driver's initialisation (optionally with MSI-X enabled and vectors routed), with
// input-chosen features and queue layout, so the fuzzer reaches activation, notify handling
// and interrupt delivery without finding the sequence by chance.
void Handshake(VirtioPciTransport& t, PciEcam& ecam, int slot, FuzzedDataProvider& in) {
  const RingLayout l;
  const uint64_t cfg = uint64_t{static_cast<uint32_t>(slot)} << 15;
  ecam.Write(cfg + kPciCommand, ValueBytes(kPciCommandMemory | kPciCommandBusMaster, 2));
  const bool msix = in.ConsumeBool();
  if (msix) {
    const uint64_t cap = t.msix().capability_offset();
    ecam.Write(cfg + cap + 2, ValueBytes(kMsixControlEnable, 2));
    for (uint64_t v = 0; v < 3; ++v) {
      const uint64_t e = VirtioPciTransport::kMsixTableOffset + v * kMsixEntrySize;
      t.BarWrite(0, e, ValueBytes(0xfee00000, 4));
      t.BarWrite(0, e + 8, ValueBytes(0x40 + v, 4));
      t.BarWrite(0, e + 12, ValueBytes(in.ConsumeIntegralInRange<int>(0, 3) == 0, 4));
    }
  }
  Common(t, 0x14, 0, 1);
  Common(t, 0x14, kVirtioStatusAcknowledge | kVirtioStatusDriver, 1);
  Common(t, 0x08, 0, 4);
  Common(t, 0x0c, in.ConsumeIntegral<uint32_t>(), 4);
  Common(t, 0x08, 1, 4);
  Common(t, 0x0c, 1 | (in.ConsumeIntegral<uint32_t>() & 0x6), 4);
  Common(t, 0x14, kVirtioStatusAcknowledge | kVirtioStatusDriver | kVirtioStatusFeaturesOk, 1);
  if (msix) Common(t, 0x10, 0, 2);
  for (uint64_t q = 0; q < 2; ++q) {
    if (!in.ConsumeBool()) continue;
    const uint64_t base = q * 0x8000;  // queue 1's rings overlap queue 0's data on purpose
    Common(t, 0x16, q, 2);
    Common(t, 0x18, 1u << in.ConsumeIntegralInRange<int>(0, 4), 2);
    if (msix) Common(t, 0x1a, q + 1, 2);
    for (const auto& [reg, addr] : {std::pair{0x20, base + l.desc}, std::pair{0x28, base + l.avail},
                                    std::pair{0x30, base + l.used}}) {
      Common(t, reg, addr & 0xffffffff, 4);  // 64-bit fields as two dwords, as Linux does
      Common(t, reg + 4, addr >> 32, 4);
    }
    Common(t, 0x1c, 1, 2);
  }
  Common(t, 0x14,
         kVirtioStatusAcknowledge | kVirtioStatusDriver | kVirtioStatusFeaturesOk |
             kVirtioStatusDriverOk,
         1);
}

}  // namespace
}  // namespace vmm::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vmm;
  using namespace vmm::fuzz;
  const GuestMemory& mem = ZeroedSmallMemory();
  FuzzedDataProvider in(data, size);

  Bus mmio, pio;
  PciBusConfig config;
  config.mmio_bus = &mmio;
  config.pio_bus = &pio;
  config.io_window = {0xc000, 0x1000};
  config.mmio32_window = {x86_64::kPciMmio32Start, x86_64::kPciMmio32Size};
  config.mmio64_window = {1ull << 32, 1ull << 30};
  std::copy(std::begin(x86_64::kPciIntxGsis), std::end(x86_64::kPciIntxGsis),
            config.intx_gsis.begin());
  config.intx_line = [](uint32_t) { return std::make_shared<FakeIrqLine>(); };
  auto pci = std::make_shared<PciBus>(config);
  FUZZ_CHECK(pci->AddDevice(std::make_shared<PciHostBridge>()).ok());
  testing::FakeVirtioDeviceOptions options;
  options.config = {1, 2, 3, 4, 5, 6, 7, 8};
  options.complete_chains = true;
  auto device = std::make_shared<testing::FakeVirtioDevice>(options);
  auto sink = std::make_shared<FakeMsiSink>();
  auto transport = VirtioPciTransport::Create(device, mem, sink);
  FUZZ_CHECK(transport.ok());
  auto slot = pci->AddDevice(*transport);
  FUZZ_CHECK(slot.ok());
  PciConfigIo config_io(pci);
  PciEcam ecam(pci);

  RingDriver driver(mem, RingLayout{});
  while (in.remaining_bytes() > 0) {
    const int op = in.ConsumeIntegralInRange<int>(0, 11);
    if (op == 11) {
      if (in.ConsumeIntegralInRange<int>(0, 3) == 0) {
        Handshake(**transport, ecam, *slot, in);
      } else {
        const uint16_t q = in.ConsumeIntegralInRange<uint16_t>(0, 2);
        (*transport)->BarWrite(0, (*transport)->notify_offset(q), ValueBytes(q, 2));
      }
      continue;
    }
    const bool write = in.ConsumeBool();
    size_t width = in.ConsumeIntegralInRange<int>(0, 3) == 0 ? ConsumeWidth(in) : 4;
    switch (op) {
      case 0: {  // 0xCF8 address, then a 0xCFC data access at a byte lane
        const uint32_t device =
            in.ConsumeIntegralInRange<int>(0, 3) == 0
                ? in.ConsumeIntegralInRange<uint32_t>(0, 31)
                : static_cast<uint32_t>(in.ConsumeIntegralInRange<int>(0, 1) ? *slot : 0);
        uint32_t address =
            0x8000'0000u | (device << 11) | static_cast<uint32_t>(ConsumeConfigReg(in) & 0xfc);
        if (in.ConsumeIntegralInRange<int>(0, 7) == 0) address = in.ConsumeIntegral<uint32_t>();
        config_io.Write(0, ValueBytes(address, 4));
        width = std::min<size_t>(width, 4);
        const uint64_t lane = in.ConsumeIntegralInRange<uint64_t>(0, 3);
        std::vector<uint8_t> buf = ValueBytes(ConsumeValue(in), width);
        if (write)
          config_io.Write(4 + lane, buf);
        else
          config_io.Read(4 + lane, absl::MakeSpan(buf));
        break;
      }
      case 1: {  // any access to the 8 config ports
        const uint64_t port = in.ConsumeIntegralInRange<uint64_t>(0, 8);
        std::vector<uint8_t> buf = ValueBytes(ConsumeValue(in), width);
        if (write)
          config_io.Write(port, buf);
        else
          config_io.Read(port, absl::MakeSpan(buf));
        break;
      }
      case 2:
      case 3: {  // ECAM
        uint64_t offset =
            (uint64_t{in.ConsumeIntegralInRange<uint32_t>(0, 1) ? static_cast<uint32_t>(*slot) : 0}
             << 15) |
            ConsumeConfigReg(in);
        if (in.ConsumeIntegralInRange<int>(0, 7) == 0) {
          offset = in.ConsumeIntegralInRange<uint64_t>(0, x86_64::kEcamSize + 8);
        }
        std::vector<uint8_t> buf = ValueBytes(ConsumeValue(in), width);
        if (write)
          ecam.Write(offset, buf);
        else
          ecam.Read(offset, absl::MakeSpan(buf));
        break;
      }
      case 4:
      case 5:
      case 6: {  // BAR 0, straight to the device
        const uint64_t offset = ConsumeBarOffset(in);
        std::vector<uint8_t> buf = ValueBytes(ConsumeValue(in), width);
        if (write)
          (*transport)->BarWrite(0, offset, buf);
        else
          (*transport)->BarRead(0, offset, absl::MakeSpan(buf));
        break;
      }
      case 7: {  // through the MMIO bus, wherever the guest put the BAR
        auto base = pci->BarMapping(*slot, 0);
        const uint64_t addr = (base ? *base : x86_64::kPciMmio32Start) + ConsumeBarOffset(in);
        std::vector<uint8_t> buf = ValueBytes(ConsumeValue(in), width);
        if (write)
          (void)mmio.Write(addr, buf);
        else
          (void)mmio.Read(addr, absl::MakeSpan(buf));
        break;
      }
      default:
        driver.Step(in);
        break;
    }
  }
  return 0;
}
