#include "devices/pci/pci_config_space.h"

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "tests/fakes/fake_irq_line.h"
#include "tests/unit/devices/pci/test_pci_device.h"

namespace vmm {
namespace {

std::array<uint8_t, PciConfigSpace::kSize> Snapshot(const PciConfigSpace& config) {
  std::array<uint8_t, PciConfigSpace::kSize> out;
  config.ReadRaw(0, absl::MakeSpan(out));
  return out;
}

TEST(PciConfigSpaceTest, IdentityReadsBackAsConfigured) {
  PciConfigSpace config(TestFunctionId());
  EXPECT_EQ(ConfigRead(config, kPciVendorId, 4), 0x1042'1af4u);
  EXPECT_EQ(ConfigRead(config, kPciRevisionId, 4), 0x0180'0001u);  // class 01/80/00, rev 1
  EXPECT_EQ(ConfigRead(config, kPciHeaderType, 1), 0u);
  EXPECT_EQ(ConfigRead(config, kPciSubsystemVendorId, 4), 0x0042'1af4u);
  EXPECT_EQ(ConfigRead(config, kPciInterruptPin, 1), kPciInterruptPinA);
}

TEST(PciConfigSpaceTest, ReadOnlyFieldsIgnoreGuestWrites) {
  PciConfigSpace config(TestFunctionId());
  const auto before = Snapshot(config);
  for (uint64_t reg : {kPciVendorId, kPciRevisionId, uint16_t{0x0c}, kPciSubsystemVendorId,
                       kPciExpansionRom, kPciCapabilityPointer, uint16_t{0x38}}) {
    ConfigWrite(config, reg, 4, 0xffff'ffff);
    ConfigWrite(config, reg, 2, 0x1234);
    ConfigWrite(config, reg, 1, 0x56);
  }
  ConfigWrite(config, kPciInterruptPin, 1, 4);
  EXPECT_EQ(Snapshot(config), before);
  EXPECT_EQ(ConfigRead(config, kPciExpansionRom, 4), 0u);  // no ROM: sizing reads zero
}

TEST(PciConfigSpaceTest, CommandRegisterKeepsOnlyDecodeBusMasterAndIntxDisable) {
  PciConfigSpace config(TestFunctionId());
  ConfigWrite(config, kPciCommand, 2, 0xffff);
  EXPECT_EQ(ConfigRead(config, kPciCommand, 2), 0x0407u);
  EXPECT_TRUE(config.MemoryDecodeEnabled());
  EXPECT_TRUE(config.IoDecodeEnabled());
  EXPECT_TRUE(config.BusMasterEnabled());
  ConfigWrite(config, kPciCommand, 2, kPciCommandMemory);
  EXPECT_TRUE(config.MemoryDecodeEnabled());
  EXPECT_FALSE(config.IoDecodeEnabled());
  EXPECT_FALSE(config.BusMasterEnabled());
}

TEST(PciConfigSpaceTest, StatusErrorBitsAreWriteOneToClear) {
  PciConfigSpace config(TestFunctionId());
  ASSERT_TRUE(config.AddCapability(kPciCapIdVendor, std::vector<uint8_t>(4)).ok());
  const uint8_t errors[] = {0x81};  // bits 8 and 15, set by the "device"
  config.WriteRaw(kPciStatus + 1, errors);
  EXPECT_EQ(ConfigRead(config, kPciStatus, 2), 0x8110u);

  ConfigWrite(config, kPciStatus, 2, 0x0000);  // writing zeros clears nothing
  EXPECT_EQ(ConfigRead(config, kPciStatus, 2), 0x8110u);
  ConfigWrite(config, kPciStatus, 2, 0x8000);  // clears bit 15 only
  EXPECT_EQ(ConfigRead(config, kPciStatus, 2), 0x0110u);
  ConfigWrite(config, kPciStatus, 2, 0xffff);  // capability-list bit is read-only
  EXPECT_EQ(ConfigRead(config, kPciStatus, 2), kPciStatusCapList);
}

TEST(PciConfigSpaceTest, DwordWriteToCommandDoesNotSetStatusBits) {
  PciConfigSpace config(TestFunctionId());
  ConfigWrite(config, kPciCommand, 4, 0xffff'0002);
  EXPECT_EQ(ConfigRead(config, kPciCommand, 4), 0x0000'0002u);
}

TEST(PciConfigSpaceTest, InterruptLineIsWritable) {
  PciConfigSpace config(TestFunctionId());
  ConfigWrite(config, kPciInterruptLine, 1, 11);
  EXPECT_EQ(ConfigRead(config, kPciInterruptLine, 2), 0x010bu);  // pin A unchanged
}

TEST(PciConfigSpaceTest, Memory32BarSizingReturnsSizeMaskAndTypeBits) {
  PciConfigSpace config(TestFunctionId());
  ASSERT_TRUE(config.AddBar(0, PciBarType::kMemory32, 0x1000).ok());
  ASSERT_TRUE(config.AddBar(1, PciBarType::kMemory32, 0x100, /*prefetchable=*/true).ok());
  ConfigWrite(config, kPciBar0, 4, 0xffff'ffff);
  EXPECT_EQ(ConfigRead(config, kPciBar0, 4), 0xffff'f000u);
  ConfigWrite(config, kPciBar0 + 4, 4, 0xffff'ffff);
  EXPECT_EQ(ConfigRead(config, kPciBar0 + 4, 4), 0xffff'ff08u);

  ConfigWrite(config, kPciBar0, 4, 0xc000'1234);  // low bits below the size are dropped
  EXPECT_EQ(ConfigRead(config, kPciBar0, 4), 0xc000'1000u);
  EXPECT_EQ(config.BarAddress(0), 0xc000'1000u);
}

TEST(PciConfigSpaceTest, Memory64BarSizingSpansTwoRegisters) {
  PciConfigSpace config(TestFunctionId());
  ASSERT_TRUE(config.AddBar(2, PciBarType::kMemory64, 0x4000, /*prefetchable=*/true).ok());
  ASSERT_TRUE(config.AddBar(4, PciBarType::kMemory64, 8ull << 30).ok());
  ConfigWrite(config, kPciBar0 + 8, 4, 0xffff'ffff);
  ConfigWrite(config, kPciBar0 + 12, 4, 0xffff'ffff);
  EXPECT_EQ(ConfigRead(config, kPciBar0 + 8, 4), 0xffff'c00cu);
  EXPECT_EQ(ConfigRead(config, kPciBar0 + 12, 4), 0xffff'ffffu);
  // An 8 GiB BAR: no writable address bits in the low dword.
  ConfigWrite(config, kPciBar0 + 16, 4, 0xffff'ffff);
  ConfigWrite(config, kPciBar0 + 20, 4, 0xffff'ffff);
  EXPECT_EQ(ConfigRead(config, kPciBar0 + 16, 4), 0x0000'0004u);
  EXPECT_EQ(ConfigRead(config, kPciBar0 + 20, 4), 0xffff'fffeu);

  ConfigWrite(config, kPciBar0 + 8, 4, 0x0000'8000);
  ConfigWrite(config, kPciBar0 + 12, 4, 0x0000'0012);
  EXPECT_EQ(config.BarAddress(2), 0x12'0000'8000u);
  EXPECT_FALSE(config.bar_info(3).has_value());  // the upper half is not a BAR of its own
  EXPECT_EQ(config.bar_info(2)->type, PciBarType::kMemory64);
}

TEST(PciConfigSpaceTest, IoBarSizingReturnsSizeMaskAndIoBit) {
  PciConfigSpace config(TestFunctionId());
  ASSERT_TRUE(config.AddBar(5, PciBarType::kIo, 0x20).ok());
  ConfigWrite(config, kPciBar0 + 20, 4, 0xffff'ffff);
  EXPECT_EQ(ConfigRead(config, kPciBar0 + 20, 4), 0xffff'ffe1u);
  ConfigWrite(config, kPciBar0 + 20, 4, 0xc040);
  EXPECT_EQ(config.BarAddress(5), 0xc040u);
}

TEST(PciConfigSpaceTest, UndeclaredBarsReadZeroEvenAfterAllOnes) {
  PciConfigSpace config(TestFunctionId());
  ASSERT_TRUE(config.AddBar(0, PciBarType::kMemory32, 0x1000).ok());
  for (int i = 1; i < kPciBarCount; ++i) {
    ConfigWrite(config, kPciBar0 + 4 * i, 4, 0xffff'ffff);
    EXPECT_EQ(ConfigRead(config, kPciBar0 + 4 * i, 4), 0u) << "BAR " << i;
  }
}

TEST(PciConfigSpaceTest, SetBarAddressProgramsBaseLikeFirmware) {
  PciConfigSpace config(TestFunctionId());
  ASSERT_TRUE(config.AddBar(0, PciBarType::kMemory64, 0x4000).ok());
  config.SetBarAddress(0, 0x1'4000'0000);
  EXPECT_EQ(config.BarAddress(0), 0x1'4000'0000u);
  EXPECT_EQ(ConfigRead(config, kPciBar0, 4), 0x4000'0004u);
  EXPECT_EQ(ConfigRead(config, kPciBar0 + 4, 4), 0x1u);
}

TEST(PciConfigSpaceTest, AddBarRejectsBadSizesAndRegisters) {
  PciConfigSpace config(TestFunctionId());
  EXPECT_FALSE(config.AddBar(0, PciBarType::kMemory32, 0x1800).ok());  // not a power of two
  EXPECT_FALSE(config.AddBar(0, PciBarType::kMemory32, 8).ok());      // below 16 bytes
  EXPECT_FALSE(config.AddBar(0, PciBarType::kIo, 0x200).ok());        // IO above 256 bytes
  EXPECT_FALSE(config.AddBar(0, PciBarType::kIo, 2).ok());
  EXPECT_FALSE(config.AddBar(5, PciBarType::kMemory64, 0x1000).ok());  // needs register 6
  EXPECT_FALSE(config.AddBar(6, PciBarType::kMemory32, 0x1000).ok());
  EXPECT_FALSE(config.AddBar(-1, PciBarType::kMemory32, 0x1000).ok());
  ASSERT_TRUE(config.AddBar(0, PciBarType::kMemory64, 0x1000).ok());
  EXPECT_FALSE(config.AddBar(1, PciBarType::kMemory32, 0x1000).ok());  // upper half of BAR 0
  EXPECT_FALSE(config.AddBar(0, PciBarType::kMemory32, 0x1000).ok());
}

TEST(PciConfigSpaceTest, CapabilityListWalksFromCapabilityPointer) {
  PciConfigSpace config(TestFunctionId());
  EXPECT_EQ(ConfigRead(config, kPciStatus, 2) & kPciStatusCapList, 0u);
  auto a = config.AddCapability(kPciCapIdVendor, std::vector<uint8_t>(5));  // padded to 8
  auto b = config.AddCapability(kPciCapIdMsix, std::vector<uint8_t>(12));
  auto c = config.AddCapability(kPciCapIdVendor, std::vector<uint8_t>(16));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(*a, 0x40);
  EXPECT_EQ(*b, 0x48);
  EXPECT_EQ(*c, 0x54);
  EXPECT_NE(ConfigRead(config, kPciStatus, 2) & kPciStatusCapList, 0u);

  std::vector<std::pair<uint64_t, uint64_t>> walked;  // (offset, id)
  uint64_t next = ConfigRead(config, kPciCapabilityPointer, 1);
  for (int guard = 0; next != 0 && guard < 48; ++guard) {
    walked.emplace_back(next, ConfigRead(config, next, 1));
    next = ConfigRead(config, next + 1, 1);
  }
  EXPECT_EQ(walked, (std::vector<std::pair<uint64_t, uint64_t>>{
                        {0x40, kPciCapIdVendor}, {0x48, kPciCapIdMsix}, {0x54, kPciCapIdVendor}}));
}

TEST(PciConfigSpaceTest, CapabilityBytesFollowTheirWriteMask) {
  PciConfigSpace config(TestFunctionId());
  const std::vector<uint8_t> bytes = {0xaa, 0xbb, 8, 1, 0x11, 0x22, 0x33, 0x44};
  const std::vector<uint8_t> mask = {0xff, 0xff, 0, 0, 0xff, 0x0f, 0, 0};
  auto off = config.AddCapability(kPciCapIdVendor, bytes, mask);
  ASSERT_TRUE(off.ok());
  ConfigWrite(config, *off, 4, 0xffff'ffff);  // header bytes stay read-only
  EXPECT_EQ(ConfigRead(config, *off, 4), 0x0108'0009u);
  ConfigWrite(config, *off + 4, 4, 0xffff'ffff);
  EXPECT_EQ(ConfigRead(config, *off + 4, 4), 0x4433'2fffu);
}

TEST(PciConfigSpaceTest, CapabilityHooksSeeWritesAndMayPatchReads) {
  PciConfigSpace config(TestFunctionId());
  std::vector<std::pair<uint64_t, uint64_t>> writes;
  PciCapabilityHooks hooks;
  hooks.after_write = [&](uint64_t off, absl::Span<const uint8_t> data) {
    writes.emplace_back(off, LoadLe(data));
  };
  hooks.on_read = [](uint64_t off, absl::Span<uint8_t> data) {
    if (off == 8) data[0] = 0x5a;
  };
  auto off = config.AddCapability(kPciCapIdVendor, std::vector<uint8_t>(12),
                                  std::vector<uint8_t>(12, 0xff), std::move(hooks));
  ASSERT_TRUE(off.ok());
  ConfigWrite(config, *off + 4, 2, 0xbeef);
  ConfigWrite(config, 0x3c, 1, 1);  // outside the capability: no hook
  EXPECT_EQ(writes, (std::vector<std::pair<uint64_t, uint64_t>>{{4, 0xbeef}}));
  EXPECT_EQ(ConfigRead(config, *off + 8, 1), 0x5au);
}

TEST(PciConfigSpaceTest, AddCapabilityFailsWhenTheLegacySpaceIsFull) {
  PciConfigSpace config(TestFunctionId());
  EXPECT_FALSE(config.AddCapability(kPciCapIdVendor, std::vector<uint8_t>(1)).ok());
  EXPECT_FALSE(
      config.AddCapability(kPciCapIdVendor, std::vector<uint8_t>(8), std::vector<uint8_t>(4)).ok());
  ASSERT_TRUE(config.AddCapability(kPciCapIdVendor, std::vector<uint8_t>(0xb0)).ok());
  EXPECT_FALSE(config.AddCapability(kPciCapIdVendor, std::vector<uint8_t>(0x20)).ok());
  EXPECT_TRUE(config.AddCapability(kPciCapIdVendor, std::vector<uint8_t>(0x10)).ok());  // 0xf0..0xff
}

TEST(PciConfigSpaceTest, HostileAccessesReadAllOnesAndWriteNothing) {
  PciConfigSpace config(TestFunctionId());
  ASSERT_TRUE(config.AddBar(0, PciBarType::kMemory32, 0x1000).ok());
  ConfigWrite(config, kPciInterruptLine, 1, 0x42);
  const auto before = Snapshot(config);
  struct Access {
    uint64_t offset;
    size_t size;
  };
  for (Access a : std::vector<Access>{{0x3d, 2},        // misaligned word
                                      {0x3e, 4},        // misaligned dword
                                      {0xff, 4},        // register 0xFF with a dword
                                      {0xffd, 4},       // crosses the end of the space
                                      {0x1000, 1},      // beyond 4 KiB
                                      {~uint64_t{0}, 4},
                                      {0x3c, 3},        // odd width
                                      {0x10, 8},        // 8 bytes
                                      {0x10, 0}}) {
    std::vector<uint8_t> buf(a.size, 0);
    config.Read(a.offset, absl::MakeSpan(buf));
    for (uint8_t b : buf) EXPECT_EQ(b, 0xff) << a.offset << "/" << a.size;
    config.Write(a.offset, std::vector<uint8_t>(a.size, 0xff));
  }
  EXPECT_EQ(Snapshot(config), before);
  EXPECT_EQ(ConfigRead(config, 0xffc, 4), 0u);  // extended space reads zero, aligned
}

TEST(PciConfigSpaceTest, IntxFollowsConditionAndInterruptDisable) {
  PciConfigSpace config(TestFunctionId());
  auto line = std::make_shared<FakeIrqLine>();
  config.ConnectIntx(line);
  EXPECT_FALSE(line->asserted());

  config.SetIntxLevel(true);
  EXPECT_TRUE(line->asserted());
  EXPECT_NE(ConfigRead(config, kPciStatus, 2) & kPciStatusInterrupt, 0u);

  ConfigWrite(config, kPciCommand, 2, kPciCommandIntxDisable);
  EXPECT_FALSE(line->asserted());
  // The status bit still shows the device's condition.
  EXPECT_NE(ConfigRead(config, kPciStatus, 2) & kPciStatusInterrupt, 0u);

  ConfigWrite(config, kPciCommand, 2, 0);
  EXPECT_TRUE(line->asserted());
  config.SetIntxLevel(false);
  EXPECT_FALSE(line->asserted());
  EXPECT_EQ(ConfigRead(config, kPciStatus, 2) & kPciStatusInterrupt, 0u);
  EXPECT_EQ(line->levels(), (std::vector<bool>{true, false, true, false}));
}

TEST(PciConfigSpaceTest, InterruptStatusBitIsReadOnlyToTheGuest) {
  PciConfigSpace config(TestFunctionId());
  ConfigWrite(config, kPciStatus, 2, kPciStatusInterrupt);
  EXPECT_EQ(ConfigRead(config, kPciStatus, 2) & kPciStatusInterrupt, 0u);
  config.SetIntxLevel(true);  // no line connected: only the status bit
  ConfigWrite(config, kPciStatus, 2, 0xffff);
  EXPECT_NE(ConfigRead(config, kPciStatus, 2) & kPciStatusInterrupt, 0u);
}

TEST(PciConfigSpaceTest, RepeatedLevelsAreNotResent) {
  PciConfigSpace config(TestFunctionId());
  auto line = std::make_shared<FakeIrqLine>();
  config.ConnectIntx(line);
  config.SetIntxLevel(true);
  config.SetIntxLevel(true);
  ConfigWrite(config, kPciCommand, 2, kPciCommandMemory);  // INTx disable unchanged
  EXPECT_EQ(line->levels(), std::vector<bool>{true});
}

}  // namespace
}  // namespace vmm
