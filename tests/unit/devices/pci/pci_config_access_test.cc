// The two config front-ends, PciConfigIo (0xCF8/0xCFC) and PciEcam, driven
// through real buses the way a guest reaches them.
#include <cstdint>
#include <memory>
#include <vector>

#include "arch/x86_64/layout.h"
#include "devices/bus.h"
#include "devices/pci/pci_bus.h"
#include "devices/pci/pci_config_io.h"
#include "devices/pci/pci_ecam.h"
#include "gtest/gtest.h"
#include "tests/unit/devices/pci/test_pci_device.h"

namespace vmm {
namespace {

using x86_64::kEcamSize;
using x86_64::kEcamStart;

constexpr uint32_t kEnable = 1u << 31;

uint32_t Cf8(uint32_t bus, uint32_t dev, uint32_t fn, uint32_t reg) {
  return kEnable | bus << 16 | dev << 11 | fn << 8 | (reg & 0xfc);
}

uint64_t Ecam(uint64_t bus, uint64_t dev, uint64_t fn, uint64_t reg) {
  return kEcamStart + (bus << 20 | dev << 15 | fn << 12 | reg);
}

class PciConfigAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PciBusConfig config;
    config.mmio_bus = &mmio_;
    config.mmio32_window = {x86_64::kPciMmio32Start, x86_64::kPciMmio32Size};
    pci_ = std::make_shared<PciBus>(config);
    ASSERT_TRUE(pio_.Insert(std::make_shared<PciConfigIo>(pci_), 0xcf8, PciConfigIo::kSize).ok());
    ASSERT_TRUE(mmio_.Insert(std::make_shared<PciEcam>(pci_), kEcamStart, kEcamSize).ok());

    // A capability whose 12 data bytes (0x44..0x4f) are all writable.
    std::vector<uint8_t> cap(16, 0);
    std::vector<uint8_t> mask(16, 0);
    for (int i = 4; i < 16; ++i) mask[i] = 0xff;
    auto off = dev_->config().AddCapability(kPciCapIdVendor, cap, mask);
    ASSERT_TRUE(off.ok());
    ASSERT_EQ(*off, 0x40);
    auto slot = pci_->AddDevice(dev_);
    ASSERT_TRUE(slot.ok());
    ASSERT_EQ(*slot, 1);
  }

  uint64_t Pio(uint64_t port, size_t size) {
    std::vector<uint8_t> buf(size, 0);
    pio_.Read(port, absl::MakeSpan(buf));
    return LoadLe(buf);
  }
  void SetPio(uint64_t port, size_t size, uint64_t value) { pio_.Write(port, LeBytes(value, size)); }
  uint64_t Mmio(uint64_t addr, size_t size) {
    std::vector<uint8_t> buf(size, 0);
    mmio_.Read(addr, absl::MakeSpan(buf));
    return LoadLe(buf);
  }
  void SetMmio(uint64_t addr, size_t size, uint64_t value) { mmio_.Write(addr, LeBytes(value, size)); }

  Bus pio_;
  Bus mmio_;
  std::shared_ptr<PciBus> pci_;
  std::shared_ptr<TestPciDevice> dev_ = std::make_shared<TestPciDevice>();
};

TEST_F(PciConfigAccessTest, ConfigAddressReadsBackWithLowBitsClear) {
  SetPio(0xcf8, 4, 0x8000'0803);
  EXPECT_EQ(Pio(0xcf8, 4), 0x8000'0800u);
}

TEST_F(PciConfigAccessTest, NarrowAccessesToConfigAddressAreIgnored) {
  SetPio(0xcf8, 4, Cf8(0, 1, 0, 0));
  SetPio(0xcfb, 1, 0x01);  // Linux's old type-1 probe pokes here
  SetPio(0xcf8, 2, 0);
  EXPECT_EQ(Pio(0xcf8, 4), Cf8(0, 1, 0, 0));
  EXPECT_EQ(Pio(0xcf8, 1), 0xffu);
  EXPECT_EQ(Pio(0xcfa, 2), 0xffffu);
}

TEST_F(PciConfigAccessTest, DwordDataReadsTheAddressedRegister) {
  SetPio(0xcf8, 4, Cf8(0, 0, 0, kPciVendorId));
  EXPECT_EQ(Pio(0xcfc, 4), 0x0008'1b36u);  // host bridge
  SetPio(0xcf8, 4, Cf8(0, 1, 0, kPciVendorId));
  EXPECT_EQ(Pio(0xcfc, 4), 0x1042'1af4u);
}

TEST_F(PciConfigAccessTest, ByteAndWordDataReadsTakeTheirLaneOfTheDword) {
  SetPio(0xcf8, 4, Cf8(0, 1, 0, kPciVendorId));
  EXPECT_EQ(Pio(0xcfc, 1), 0xf4u);
  EXPECT_EQ(Pio(0xcfd, 1), 0x1au);
  EXPECT_EQ(Pio(0xcfe, 1), 0x42u);
  EXPECT_EQ(Pio(0xcff, 1), 0x10u);
  EXPECT_EQ(Pio(0xcfc, 2), 0x1af4u);
  EXPECT_EQ(Pio(0xcfe, 2), 0x1042u);
}

TEST_F(PciConfigAccessTest, ByteAndWordDataWritesLandAtTheirOffset) {
  SetPio(0xcf8, 4, Cf8(0, 1, 0, 0x44));
  for (uint64_t i = 0; i < 4; ++i) SetPio(0xcfc + i, 1, 0x10 + i);
  EXPECT_EQ(Pio(0xcfc, 4), 0x1312'1110u);
  SetPio(0xcfe, 2, 0xbeef);
  EXPECT_EQ(Pio(0xcfc, 4), 0xbeef'1110u);
  SetPio(0xcfc, 2, 0xcafe);
  EXPECT_EQ(Pio(0xcfc, 4), 0xbeef'cafeu);
  SetPio(0xcf8, 4, Cf8(0, 1, 0, 0x48));
  SetPio(0xcfc, 4, 0x0102'0304);
  EXPECT_EQ(dev_->config().ReadRaw32(0x48), 0x0102'0304u);
}

TEST_F(PciConfigAccessTest, DisabledConfigAddressReadsAllOnesAndDropsWrites) {
  SetPio(0xcf8, 4, Cf8(0, 1, 0, 0x44) & ~kEnable);
  EXPECT_EQ(Pio(0xcfc, 4), 0xffff'ffffu);
  SetPio(0xcfc, 4, 0x1234'5678);
  EXPECT_EQ(dev_->config().ReadRaw32(0x44), 0u);
}

TEST_F(PciConfigAccessTest, AbsentDevicesFunctionsAndBusesReadAllOnesThroughCf8) {
  SetPio(0xcf8, 4, Cf8(0, 2, 0, 0));
  EXPECT_EQ(Pio(0xcfc, 4), 0xffff'ffffu);
  SetPio(0xcf8, 4, Cf8(0, 1, 3, 0));
  EXPECT_EQ(Pio(0xcfc, 2), 0xffffu);
  SetPio(0xcf8, 4, Cf8(7, 1, 0, 0));
  EXPECT_EQ(Pio(0xcfc, 1), 0xffu);
}

TEST_F(PciConfigAccessTest, HostileDataAccessesNeverCrash) {
  SetPio(0xcf8, 4, Cf8(0, 1, 0, 0xfc));
  EXPECT_EQ(Pio(0xcfd, 2), 0xffffu);  // misaligned word
  EXPECT_EQ(Pio(0xcff, 1), 0u);       // register 0xFF: a byte is fine
  SetPio(0xcf8, 4, 0xffff'ffff);      // every field at its maximum
  EXPECT_EQ(Pio(0xcfc, 4), 0xffff'ffffu);
  SetPio(0xcfc, 4, 0);
  SetPio(0xcfe, 4, 0);                // runs past 0xCFF: not our range
  SetPio(0xcfd, 2, 0);
  std::vector<uint8_t> odd(3);
  pio_.Read(0xcfc, absl::MakeSpan(odd));
  EXPECT_EQ(LoadLe(odd), 0xff'ffffu);
  pio_.Write(0xcfc, odd);
}

TEST_F(PciConfigAccessTest, ExtendedRegisterBitsOfConfigAddressReachExtendedSpace) {
  SetPio(0xcf8, 4, Cf8(0, 1, 0, 0) | (1u << 24));  // register 0x100
  EXPECT_EQ(Pio(0xcfc, 4), 0u);  // implemented space, nothing there
  SetPio(0xcf8, 4, Cf8(0, 5, 0, 0) | (1u << 24));
  EXPECT_EQ(Pio(0xcfc, 4), 0xffff'ffffu);
}

TEST_F(PciConfigAccessTest, EcamDecodesBusDeviceFunctionRegister) {
  EXPECT_EQ(Mmio(Ecam(0, 0, 0, 0), 4), 0x0008'1b36u);
  EXPECT_EQ(Mmio(Ecam(0, 1, 0, 0), 4), 0x1042'1af4u);
  EXPECT_EQ(Mmio(Ecam(0, 1, 0, 2), 2), 0x1042u);
  EXPECT_EQ(Mmio(Ecam(0, 1, 0, 3), 1), 0x10u);
  SetMmio(Ecam(0, 1, 0, 0x45), 1, 0xab);
  EXPECT_EQ(dev_->config().ReadRaw32(0x44), 0xab00u);
}

TEST_F(PciConfigAccessTest, EcamAbsentFunctionsReadAllOnes) {
  EXPECT_EQ(Mmio(Ecam(0, 2, 0, 0), 4), 0xffff'ffffu);
  EXPECT_EQ(Mmio(Ecam(0, 31, 0, 0), 4), 0xffff'ffffu);
  EXPECT_EQ(Mmio(Ecam(0, 1, 1, 0), 4), 0xffff'ffffu);
  EXPECT_EQ(Mmio(Ecam(1, 1, 0, 0), 2), 0xffffu);
  EXPECT_EQ(Mmio(Ecam(255, 31, 7, 0xffc), 4), 0xffff'ffffu);
}

TEST_F(PciConfigAccessTest, EcamReachesTheExtendedSpace) {
  EXPECT_EQ(Mmio(Ecam(0, 1, 0, 0x100), 4), 0u);
  EXPECT_EQ(Mmio(Ecam(0, 1, 0, 0xffc), 4), 0u);
}

TEST_F(PciConfigAccessTest, EcamQwordAccessesAreSplitIntoDwords) {
  EXPECT_EQ(Mmio(Ecam(0, 1, 0, 0), 8), 0x0010'0000'1042'1af4u);  // status: cap list
  SetMmio(Ecam(0, 1, 0, 0x48), 8, 0x1122'3344'5566'7788);
  EXPECT_EQ(dev_->config().ReadRaw32(0x48), 0x5566'7788u);
  EXPECT_EQ(dev_->config().ReadRaw32(0x4c), 0x1122'3344u);
}

TEST_F(PciConfigAccessTest, EcamHostileAccessesNeverCrash) {
  EXPECT_EQ(Mmio(Ecam(0, 1, 0, 0xff), 4), 0xffff'ffffu);  // register 0xFF with a dword
  EXPECT_EQ(Mmio(Ecam(0, 1, 0, 0x41), 2), 0xffffu);
  EXPECT_EQ(Mmio(Ecam(0, 1, 0, 4), 8), 0xffff'ffff'ffff'ffffu);  // misaligned qword
  std::vector<uint8_t> odd(3);
  mmio_.Read(Ecam(0, 1, 0, 0), absl::MakeSpan(odd));
  EXPECT_EQ(LoadLe(odd), 0xff'ffffu);
  mmio_.Write(Ecam(0, 1, 0, 0x44), odd);
  SetMmio(Ecam(0, 1, 0, 0xffd), 4, 0);
  SetMmio(kEcamStart + kEcamSize - 4, 4, 0);
  EXPECT_EQ(dev_->config().ReadRaw32(0x44), 0u);
}

TEST_F(PciConfigAccessTest, BothFrontEndsSeeTheSameBus) {
  SetMmio(Ecam(0, 1, 0, kPciInterruptLine), 1, 0x0e);
  SetPio(0xcf8, 4, Cf8(0, 1, 0, kPciInterruptLine));
  EXPECT_EQ(Pio(0xcfc, 1), 0x0eu);
  SetPio(0xcfc, 1, 0x0a);
  EXPECT_EQ(Mmio(Ecam(0, 1, 0, kPciInterruptLine), 1), 0x0au);
}

TEST_F(PciConfigAccessTest, BarMoveThroughCf8MovesTheMmioMapping) {
  auto dev = std::make_shared<TestPciDevice>();
  ASSERT_TRUE(dev->config().AddBar(0, PciBarType::kMemory32, 0x1000).ok());
  auto slot = pci_->AddDevice(dev);
  ASSERT_TRUE(slot.ok());
  const uint64_t old_base = dev->config().BarAddress(0);
  SetPio(0xcf8, 4, Cf8(0, *slot, 0, kPciBar0));
  SetPio(0xcfc, 4, 0xc800'0000);
  uint8_t buf[4];
  EXPECT_FALSE(mmio_.Read(old_base, buf));
  ASSERT_TRUE(mmio_.Read(0xc800'0004, buf));
  ASSERT_FALSE(dev->accesses().empty());
  EXPECT_EQ(dev->accesses().back(), (TestPciDevice::Access{0, 4, 4, false, 0}));
}

}  // namespace
}  // namespace vmm
