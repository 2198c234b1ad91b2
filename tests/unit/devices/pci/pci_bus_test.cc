#include "devices/pci/pci_bus.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "arch/x86_64/layout.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_irq_line.h"
#include "tests/unit/devices/pci/test_pci_device.h"

namespace vmm {
namespace {

constexpr uint64_t kMmio32 = 0xc000'0000;
constexpr uint64_t kMmio64 = 0x1'4000'0000;
constexpr uint64_t kIoStart = 0xc000;

struct HookCall {
  PciDevice* device;
  int bar;
  std::optional<uint64_t> old_base;
  std::optional<uint64_t> new_base;
  bool operator==(const HookCall&) const = default;
};

class PciBusTest : public ::testing::Test {
 protected:
  PciBusConfig Config() {
    PciBusConfig config;
    config.mmio_bus = &mmio_;
    config.pio_bus = &pio_;
    config.io_window = {kIoStart, 0x1000};
    config.mmio32_window = {kMmio32, 0x1000'0000};
    config.mmio64_window = {kMmio64, 1ull << 30};
    std::copy(std::begin(x86_64::kPciIntxGsis), std::end(x86_64::kPciIntxGsis),
              config.intx_gsis.begin());
    config.on_bar_move = [this](PciDevice& d, int bar, std::optional<uint64_t> o,
                                std::optional<uint64_t> n) {
      absl::MutexLock lock(&hook_mu_);
      hooks_.push_back({&d, bar, o, n});
    };
    config.intx_line = [this](uint32_t gsi) {
      auto line = std::make_shared<FakeIrqLine>();
      absl::MutexLock lock(&hook_mu_);
      lines_.emplace_back(gsi, line);
      return line;
    };
    return config;
  }

  // A device with a 4 KiB 32-bit BAR 0 and a 16 KiB 64-bit BAR 2.
  std::shared_ptr<TestPciDevice> MakeDevice(uint8_t pin = kPciInterruptPinA) {
    auto dev = std::make_shared<TestPciDevice>(TestFunctionId(pin));
    EXPECT_TRUE(dev->config().AddBar(0, PciBarType::kMemory32, 0x1000).ok());
    EXPECT_TRUE(dev->config().AddBar(2, PciBarType::kMemory64, 0x4000).ok());
    return dev;
  }

  uint64_t Cfg(int slot, uint64_t reg, size_t size) {
    std::vector<uint8_t> buf(size);
    bus_->ConfigRead(0, slot, 0, reg, absl::MakeSpan(buf));
    return LoadLe(buf);
  }
  void SetCfg(int slot, uint64_t reg, size_t size, uint64_t value) {
    bus_->ConfigWrite(0, slot, 0, reg, LeBytes(value, size));
  }
  // Whether a dword read at `addr` reaches BAR `bar` of `dev` at `offset`.
  bool Reaches(Bus& bus, uint64_t addr, TestPciDevice& dev, int bar, uint64_t offset) {
    size_t before = dev.accesses().size();
    uint8_t buf[4];
    if (!bus.Read(addr, buf)) return false;
    auto acc = dev.accesses();
    return acc.size() == before + 1 && acc.back() == TestPciDevice::Access{bar, offset, 4, false, 0};
  }
  std::vector<HookCall> Hooks() {
    absl::MutexLock lock(&hook_mu_);
    return hooks_;
  }
  void ClearHooks() {
    absl::MutexLock lock(&hook_mu_);
    hooks_.clear();
  }

  Bus mmio_;
  Bus pio_;
  absl::Mutex hook_mu_;
  std::vector<HookCall> hooks_ ABSL_GUARDED_BY(hook_mu_);
  std::vector<std::pair<uint32_t, std::shared_ptr<FakeIrqLine>>> lines_ ABSL_GUARDED_BY(hook_mu_);
  std::unique_ptr<PciBus> bus_ = std::make_unique<PciBus>(Config());
};

TEST_F(PciBusTest, HostBridgeSitsAtSlotZero) {
  EXPECT_EQ(Cfg(0, kPciVendorId, 4), 0x0008'1b36u);
  EXPECT_EQ(Cfg(0, kPciRevisionId, 4) >> 8, 0x060000u);
  EXPECT_EQ(Cfg(0, kPciHeaderType, 1), 0u);
}

TEST_F(PciBusTest, AbsentFunctionsReadAllOnesAndIgnoreWrites) {
  EXPECT_EQ(Cfg(5, kPciVendorId, 4), 0xffff'ffffu);
  std::vector<uint8_t> buf(2);
  bus_->ConfigRead(1, 0, 0, 0, absl::MakeSpan(buf));  // bus 1
  EXPECT_EQ(LoadLe(buf), 0xffffu);
  bus_->ConfigRead(0, 0, 1, 0, absl::MakeSpan(buf));  // function 1 of the bridge
  EXPECT_EQ(LoadLe(buf), 0xffffu);
  bus_->ConfigRead(0, 32, 0, 0, absl::MakeSpan(buf));
  EXPECT_EQ(LoadLe(buf), 0xffffu);
  bus_->ConfigWrite(0, 5, 0, kPciCommand, LeBytes(2, 2));  // nothing to write to
  EXPECT_TRUE(Hooks().empty());
}

TEST_F(PciBusTest, AddDeviceFillsSlotsFromOneAndSetsInterruptLine) {
  for (int expected = 1; expected <= 4; ++expected) {
    auto slot = bus_->AddDevice(MakeDevice());
    ASSERT_TRUE(slot.ok()) << slot.status();
    EXPECT_EQ(*slot, expected);
    EXPECT_EQ(Cfg(expected, kPciInterruptLine, 1), x86_64::kPciIntxGsis[expected % 4]);
  }
  auto slots = bus_->Slots();
  ASSERT_EQ(slots.size(), 4u);
  EXPECT_EQ(slots[2].slot, 3);
  EXPECT_EQ(slots[2].interrupt_pin, kPciInterruptPinA);
  EXPECT_EQ(slots[2].intx_gsi, x86_64::kPciIntxGsis[3]);
}

TEST_F(PciBusTest, AddDeviceTakesTheSlotAskedForAndRefusesATakenOne) {
  auto five = bus_->AddDevice(MakeDevice(), 5);
  ASSERT_TRUE(five.ok()) << five.status();
  EXPECT_EQ(*five, 5);
  EXPECT_EQ(Cfg(5, kPciInterruptLine, 1), x86_64::kPciIntxGsis[5 % 4]);
  // The lowest free slot for the others, around the one asked for.
  EXPECT_EQ(*bus_->AddDevice(MakeDevice()), 1);
  auto clash = bus_->AddDevice(MakeDevice(), 5);
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(clash.status().message()), ::testing::HasSubstr("PCI slot 5 is taken"));
  for (int bad : {0, 32, -1}) {
    auto out = bus_->AddDevice(MakeDevice(), bad);
    ASSERT_FALSE(out.ok()) << bad;
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(bus_->Slots().size(), 2u) << "a refused device leaves nothing on the bus";
  EXPECT_EQ(*bus_->AddDevice(MakeDevice(), 31), 31);
}

TEST_F(PciBusTest, AddDeviceConnectsIntxToItsSlotsGsi) {
  auto dev = MakeDevice();
  auto slot = bus_->AddDevice(dev);
  ASSERT_TRUE(slot.ok());
  std::shared_ptr<FakeIrqLine> line;
  {
    absl::MutexLock lock(&hook_mu_);
    ASSERT_EQ(lines_.size(), 1u);
    EXPECT_EQ(lines_[0].first, x86_64::kPciIntxGsis[*slot % 4]);
    line = lines_[0].second;
  }
  dev->config().SetIntxLevel(true);
  EXPECT_TRUE(line->asserted());
}

TEST_F(PciBusTest, DeviceWithoutInterruptPinGetsNoLine) {
  ASSERT_TRUE(bus_->AddDevice(MakeDevice(kPciInterruptPinNone)).ok());
  absl::MutexLock lock(&hook_mu_);
  EXPECT_TRUE(lines_.empty());
}

TEST_F(PciBusTest, AddDevicePlacesBarsAlignedInTheirWindowsAndEnablesMemory) {
  auto a = MakeDevice();
  auto b = MakeDevice();
  ASSERT_TRUE(bus_->AddDevice(a).ok());
  ASSERT_TRUE(bus_->AddDevice(b).ok());
  for (auto* d : {a.get(), b.get()}) {
    uint64_t bar0 = d->config().BarAddress(0);
    uint64_t bar2 = d->config().BarAddress(2);
    EXPECT_GE(bar0, kMmio32);
    EXPECT_LT(bar0 + 0x1000, kMmio32 + 0x1000'0000);
    EXPECT_EQ(bar0 % 0x1000, 0u);
    EXPECT_GE(bar2, kMmio64);
    EXPECT_EQ(bar2 % 0x4000, 0u);
    EXPECT_TRUE(d->config().MemoryDecodeEnabled());
    EXPECT_FALSE(d->config().IoDecodeEnabled());
    EXPECT_FALSE(d->config().BusMasterEnabled());
  }
  EXPECT_NE(a->config().BarAddress(0), b->config().BarAddress(0));
  EXPECT_NE(a->config().BarAddress(2), b->config().BarAddress(2));
}

TEST_F(PciBusTest, AddDeviceMapsBarsOnTheMmioBusAndReportsThem) {
  auto dev = MakeDevice();
  auto slot = bus_->AddDevice(dev);
  ASSERT_TRUE(slot.ok());
  const uint64_t bar0 = dev->config().BarAddress(0);
  const uint64_t bar2 = dev->config().BarAddress(2);
  EXPECT_TRUE(Reaches(mmio_, bar0 + 0x10, *dev, 0, 0x10));
  EXPECT_TRUE(Reaches(mmio_, bar2 + 0x3ffc, *dev, 2, 0x3ffc));
  EXPECT_EQ(bus_->BarMapping(*slot, 0), bar0);
  EXPECT_EQ(bus_->BarMapping(*slot, 2), bar2);
  EXPECT_EQ(Hooks(), (std::vector<HookCall>{{dev.get(), 0, std::nullopt, bar0},
                                            {dev.get(), 2, std::nullopt, bar2}}));
}

TEST_F(PciBusTest, Bar64GoesBelow4GiBWithoutA64BitWindow) {
  PciBusConfig config = Config();
  config.mmio64_window = {};
  bus_ = std::make_unique<PciBus>(config);
  auto dev = MakeDevice();
  ASSERT_TRUE(bus_->AddDevice(dev).ok());
  EXPECT_GE(dev->config().BarAddress(2), kMmio32);
  EXPECT_LT(dev->config().BarAddress(2), 1ull << 32);
}

TEST_F(PciBusTest, IoBarIsPlacedAndMappedOnThePioBus) {
  auto dev = std::make_shared<TestPciDevice>();
  ASSERT_TRUE(dev->config().AddBar(4, PciBarType::kIo, 0x40).ok());
  auto slot = bus_->AddDevice(dev);
  ASSERT_TRUE(slot.ok());
  const uint64_t base = dev->config().BarAddress(4);
  EXPECT_GE(base, kIoStart);
  EXPECT_EQ(base % 0x40, 0u);
  EXPECT_TRUE(dev->config().IoDecodeEnabled());
  EXPECT_FALSE(dev->config().MemoryDecodeEnabled());  // it has no memory BAR
  EXPECT_TRUE(Reaches(pio_, base + 4, *dev, 4, 4));
}

TEST_F(PciBusTest, IoBarStaysUnassignedWithoutAPioBus) {
  PciBusConfig config = Config();
  config.pio_bus = nullptr;
  bus_ = std::make_unique<PciBus>(config);
  auto dev = std::make_shared<TestPciDevice>();
  ASSERT_TRUE(dev->config().AddBar(4, PciBarType::kIo, 0x40).ok());
  ASSERT_TRUE(bus_->AddDevice(dev).ok());
  EXPECT_EQ(dev->config().BarAddress(4), 0u);
  EXPECT_FALSE(dev->config().IoDecodeEnabled());
}

TEST_F(PciBusTest, GuestMovingABarMovesTheMappingAndCallsTheHook) {
  auto dev = MakeDevice();
  auto slot = bus_->AddDevice(dev);
  ASSERT_TRUE(slot.ok());
  const uint64_t old_base = dev->config().BarAddress(0);
  ClearHooks();

  const uint64_t new_base = 0xc800'0000;
  SetCfg(*slot, kPciBar0, 4, new_base);
  EXPECT_EQ(Hooks(), (std::vector<HookCall>{{dev.get(), 0, old_base, new_base}}));
  EXPECT_FALSE(Reaches(mmio_, old_base, *dev, 0, 0));
  EXPECT_TRUE(Reaches(mmio_, new_base + 8, *dev, 0, 8));
  EXPECT_EQ(bus_->BarMapping(*slot, 0), new_base);
}

TEST_F(PciBusTest, Guest64BitBarMoveAboveAndBelow4GiB) {
  auto dev = MakeDevice();
  auto slot = bus_->AddDevice(dev);
  ASSERT_TRUE(slot.ok());
  const uint64_t old_base = dev->config().BarAddress(2);
  ClearHooks();

  // Linux's way: decode off, program both halves, decode on.
  SetCfg(*slot, kPciCommand, 2, 0);
  SetCfg(*slot, kPciBar0 + 8, 4, 0x0000'8000);
  SetCfg(*slot, kPciBar0 + 12, 4, 0x2);
  SetCfg(*slot, kPciCommand, 2, kPciCommandMemory);
  const uint64_t high = 0x2'0000'8000;
  EXPECT_TRUE(Reaches(mmio_, high, *dev, 2, 0));
  EXPECT_EQ(bus_->BarMapping(*slot, 2), high);

  SetCfg(*slot, kPciBar0 + 12, 4, 0);  // decode on: moves straight below 4 GiB
  EXPECT_TRUE(Reaches(mmio_, 0x8000, *dev, 2, 0));
  const uint64_t bar0 = dev->config().BarAddress(0);
  EXPECT_EQ(Hooks(), (std::vector<HookCall>{{dev.get(), 0, bar0, std::nullopt},
                                            {dev.get(), 2, old_base, std::nullopt},
                                            {dev.get(), 0, std::nullopt, bar0},
                                            {dev.get(), 2, std::nullopt, high},
                                            {dev.get(), 2, high, 0x8000}}));
}

TEST_F(PciBusTest, MemoryDecodeToggleUnmapsAndRemaps) {
  auto dev = MakeDevice();
  auto slot = bus_->AddDevice(dev);
  ASSERT_TRUE(slot.ok());
  const uint64_t bar0 = dev->config().BarAddress(0);
  ClearHooks();

  SetCfg(*slot, kPciCommand, 2, kPciCommandBusMaster);
  EXPECT_FALSE(Reaches(mmio_, bar0, *dev, 0, 0));
  EXPECT_EQ(bus_->BarMapping(*slot, 0), std::nullopt);
  SetCfg(*slot, kPciCommand, 2, kPciCommandBusMaster | kPciCommandMemory);
  EXPECT_TRUE(Reaches(mmio_, bar0, *dev, 0, 0));
  auto hooks = Hooks();
  ASSERT_EQ(hooks.size(), 4u);
  EXPECT_EQ(hooks[0].new_base, std::nullopt);
  EXPECT_EQ(hooks[3].old_base, std::nullopt);
  EXPECT_EQ(bus_->refused_bar_placements(), 0u);
}

TEST_F(PciBusTest, WritesThatChangeNoMappingCallNoHook) {
  auto dev = MakeDevice();
  auto slot = bus_->AddDevice(dev);
  ASSERT_TRUE(slot.ok());
  ClearHooks();
  SetCfg(*slot, kPciCommand, 2, kPciCommandMemory | kPciCommandBusMaster);
  SetCfg(*slot, kPciBar0, 4, dev->config().BarAddress(0));
  SetCfg(*slot, kPciInterruptLine, 1, 3);
  EXPECT_TRUE(Hooks().empty());
}

TEST_F(PciBusTest, OverlappingPlacementIsRefusedCountedAndRetriedWhenFreed) {
  auto a = MakeDevice();
  auto b = MakeDevice();
  auto sa = bus_->AddDevice(a);
  auto sb = bus_->AddDevice(b);
  ASSERT_TRUE(sa.ok() && sb.ok());
  const uint64_t a0 = a->config().BarAddress(0);
  const uint64_t b0 = b->config().BarAddress(0);
  ClearHooks();

  SetCfg(*sb, kPciBar0, 4, a0);  // onto a's BAR 0
  EXPECT_EQ(bus_->refused_bar_placements(), 1u);
  EXPECT_EQ(bus_->BarMapping(*sb, 0), std::nullopt);
  EXPECT_TRUE(Reaches(mmio_, a0, *a, 0, 0));  // a keeps its range
  EXPECT_EQ(Hooks(), (std::vector<HookCall>{{b.get(), 0, b0, std::nullopt}}));

  ClearHooks();
  SetCfg(*sa, kPciBar0, 4, 0xc900'0000);  // a moves away: b's placement now fits
  EXPECT_EQ(bus_->BarMapping(*sb, 0), a0);
  EXPECT_TRUE(Reaches(mmio_, a0, *b, 0, 0));
  EXPECT_EQ(Hooks(), (std::vector<HookCall>{{a.get(), 0, a0, 0xc900'0000},
                                            {b.get(), 0, std::nullopt, a0}}));
  EXPECT_EQ(bus_->refused_bar_placements(), 1u);
}

TEST_F(PciBusTest, PlacementOverAnotherBusRangeIsRefused) {
  struct Other : BusDevice {
    void Read(uint64_t, absl::Span<uint8_t> data) override { std::fill(data.begin(), data.end(), 0x77); }
    void Write(uint64_t, absl::Span<const uint8_t>) override {}
  };
  ASSERT_TRUE(mmio_.Insert(std::make_shared<Other>(), 0xd000'0000, 0x1000).ok());
  auto dev = MakeDevice();
  auto slot = bus_->AddDevice(dev);
  ASSERT_TRUE(slot.ok());
  SetCfg(*slot, kPciBar0, 4, 0xd000'0000);
  EXPECT_EQ(bus_->refused_bar_placements(), 1u);
  EXPECT_EQ(bus_->BarMapping(*slot, 0), std::nullopt);
  uint8_t buf[4];
  ASSERT_TRUE(mmio_.Read(0xd000'0000, buf));
  EXPECT_EQ(buf[0], 0x77);  // the other range is untouched
}

TEST_F(PciBusTest, SizingWithDecodeEnabledUnmapsWithoutCountingAndRestoreRemaps) {
  auto dev = MakeDevice();
  auto slot = bus_->AddDevice(dev);
  ASSERT_TRUE(slot.ok());
  const uint64_t bar0 = dev->config().BarAddress(0);
  const uint64_t bar2 = dev->config().BarAddress(2);

  SetCfg(*slot, kPciBar0, 4, 0xffff'ffff);
  EXPECT_EQ(Cfg(*slot, kPciBar0, 4), 0xffff'f000u);
  EXPECT_EQ(bus_->BarMapping(*slot, 0), std::nullopt);
  SetCfg(*slot, kPciBar0, 4, bar0);
  EXPECT_EQ(bus_->BarMapping(*slot, 0), bar0);

  SetCfg(*slot, kPciBar0 + 8, 4, 0xffff'ffff);
  EXPECT_EQ(bus_->BarMapping(*slot, 2), std::nullopt);
  SetCfg(*slot, kPciBar0 + 12, 4, 0xffff'ffff);
  EXPECT_EQ(bus_->BarMapping(*slot, 2), std::nullopt);
  SetCfg(*slot, kPciBar0 + 8, 4, static_cast<uint32_t>(bar2));
  SetCfg(*slot, kPciBar0 + 12, 4, bar2 >> 32);
  EXPECT_EQ(bus_->BarMapping(*slot, 2), bar2);
  EXPECT_EQ(bus_->refused_bar_placements(), 0u);
}

TEST_F(PciBusTest, ZeroBaseIsTreatedAsUnassigned) {
  auto dev = MakeDevice();
  auto slot = bus_->AddDevice(dev);
  ASSERT_TRUE(slot.ok());
  SetCfg(*slot, kPciBar0, 4, 0);
  EXPECT_EQ(bus_->BarMapping(*slot, 0), std::nullopt);
  uint8_t buf[4];
  EXPECT_FALSE(mmio_.Read(0, buf));
}

TEST_F(PciBusTest, AddDeviceFailsCleanlyWhenAWindowIsFull) {
  PciBusConfig config = Config();
  config.mmio32_window = {kMmio32, 0x2000};
  bus_ = std::make_unique<PciBus>(config);
  auto big = std::make_shared<TestPciDevice>();
  ASSERT_TRUE(big->config().AddBar(0, PciBarType::kMemory32, 0x4000).ok());
  EXPECT_FALSE(bus_->AddDevice(big).ok());
  EXPECT_EQ(bus_->device(1), nullptr);
  auto fits = std::make_shared<TestPciDevice>();
  ASSERT_TRUE(fits->config().AddBar(0, PciBarType::kMemory32, 0x2000).ok());
  auto slot = bus_->AddDevice(fits);
  ASSERT_TRUE(slot.ok());
  EXPECT_EQ(*slot, 1);
  EXPECT_EQ(fits->config().BarAddress(0), kMmio32);
}

TEST_F(PciBusTest, AddDeviceFailsWhenAllSlotsAreTaken) {
  for (int i = 1; i < PciBus::kSlotCount; ++i) {
    ASSERT_TRUE(bus_->AddDevice(std::make_shared<TestPciDevice>()).ok());
  }
  EXPECT_FALSE(bus_->AddDevice(std::make_shared<TestPciDevice>()).ok());
  EXPECT_FALSE(bus_->AddDevice(nullptr).ok());
}

TEST_F(PciBusTest, ConcurrentConfigAndBarAccessesAreSafe) {
  auto dev = MakeDevice();
  auto slot = bus_->AddDevice(dev);
  ASSERT_TRUE(slot.ok());
  const uint64_t bar0 = dev->config().BarAddress(0);
  std::atomic<bool> stop{false};
  std::thread mover([&] {
    for (int i = 0; i < 500; ++i) {
      SetCfg(*slot, kPciBar0, 4, (i % 2) ? 0xca00'0000 : bar0);
      SetCfg(*slot, kPciCommand, 2, (i % 3) ? kPciCommandMemory : 0);
    }
    stop = true;
  });
  std::thread reader([&] {
    uint8_t buf[4];
    while (!stop) {
      mmio_.Read(bar0, buf);
      mmio_.Read(0xca00'0000, buf);
      Cfg(*slot, kPciBar0, 4);
    }
  });
  mover.join();
  reader.join();
  SetCfg(*slot, kPciCommand, 2, kPciCommandMemory);
  EXPECT_EQ(bus_->BarMapping(*slot, 0), dev->config().BarAddress(0));
}

}  // namespace
}  // namespace vmm
