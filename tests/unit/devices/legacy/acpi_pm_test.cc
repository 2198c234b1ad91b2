#include "devices/legacy/acpi_pm.h"

#include <cstdint>

#include "arch/x86_64/layout.h"
#include "gtest/gtest.h"

namespace vmm {
namespace {

// SLP_TYPx = 5 | SLP_EN: what Linux writes for S5 with our DSDT.
constexpr uint8_t kS5Enable = (5 << 2) | 0x20;

class AcpiPmTest : public ::testing::Test {
 protected:
  void WriteByte(uint64_t offset, uint8_t value) {
    const uint8_t v[1] = {value};
    dev_.Write(offset, v);
  }

  int poweroffs_ = 0;
  int resets_ = 0;
  AcpiPm dev_{[this] { ++poweroffs_; }, [this] { ++resets_; }};
};

TEST_F(AcpiPmTest, RegistersAreThreeConsecutivePortsInLayoutOrder) {
  EXPECT_EQ(x86_64::kAcpiSleepStatusPort - x86_64::kAcpiSleepControlPort,
            AcpiPm::kSleepStatusOffset);
  EXPECT_EQ(x86_64::kAcpiResetPort - x86_64::kAcpiSleepControlPort, AcpiPm::kResetOffset);
  EXPECT_EQ(AcpiPm::kSize, 3u);
}

TEST_F(AcpiPmTest, SlpEnWithS5TypePowersOff) {
  WriteByte(AcpiPm::kSleepControlOffset, kS5Enable);
  EXPECT_EQ(poweroffs_, 1);
  EXPECT_EQ(resets_, 0);
}

TEST_F(AcpiPmTest, LinuxExtendedSleepSequencePowersOffOnce) {
  // acpi_hw_extended_sleep: clear WAK_STS, then SLP_TYP | SLP_EN.
  WriteByte(AcpiPm::kSleepStatusOffset, AcpiPm::kWakSts);
  EXPECT_EQ(poweroffs_, 0);
  WriteByte(AcpiPm::kSleepControlOffset, kS5Enable);
  EXPECT_EQ(poweroffs_, 1);
}

TEST_F(AcpiPmTest, S5TypeWithoutSlpEnDoesNothing) {
  WriteByte(AcpiPm::kSleepControlOffset, 5 << 2);
  EXPECT_EQ(poweroffs_, 0);
}

TEST_F(AcpiPmTest, SlpEnWithOtherSleepTypesDoesNothing) {
  for (uint8_t type = 0; type < 8; ++type) {
    if (type == 5) continue;
    WriteByte(AcpiPm::kSleepControlOffset, static_cast<uint8_t>((type << 2) | AcpiPm::kSlpEn));
  }
  EXPECT_EQ(poweroffs_, 0);
}

TEST_F(AcpiPmTest, ReservedBitsDoNotStopAPowerOff) {
  WriteByte(AcpiPm::kSleepControlOffset, kS5Enable | 0xc3);
  EXPECT_EQ(poweroffs_, 1);
}

TEST_F(AcpiPmTest, ResetValueResets) {
  WriteByte(AcpiPm::kResetOffset, x86_64::kAcpiResetValue);
  EXPECT_EQ(resets_, 1);
  EXPECT_EQ(poweroffs_, 0);
}

TEST_F(AcpiPmTest, OtherValuesInTheResetRegisterDoNothing) {
  for (int v = 0; v < 256; ++v) {
    if (v == x86_64::kAcpiResetValue) continue;
    WriteByte(AcpiPm::kResetOffset, static_cast<uint8_t>(v));
  }
  EXPECT_EQ(resets_, 0);
  EXPECT_EQ(poweroffs_, 0);
}

TEST_F(AcpiPmTest, RegistersDoNotCrossTrigger) {
  WriteByte(AcpiPm::kSleepControlOffset, x86_64::kAcpiResetValue);
  WriteByte(AcpiPm::kSleepStatusOffset, x86_64::kAcpiResetValue);
  WriteByte(AcpiPm::kSleepStatusOffset, kS5Enable);
  WriteByte(AcpiPm::kResetOffset, kS5Enable);
  EXPECT_EQ(resets_, 0);
  EXPECT_EQ(poweroffs_, 0);
}

TEST_F(AcpiPmTest, AllRegistersReadZeroSoWakStsIsClear) {
  for (uint64_t off = 0; off < AcpiPm::kSize; ++off) {
    uint8_t v[1] = {0xff};
    dev_.Read(off, v);
    EXPECT_EQ(v[0], 0) << "offset " << off;
  }
}

TEST_F(AcpiPmTest, WideWriteSplitsIntoConsecutiveRegisters) {
  const uint8_t control_and_status[2] = {kS5Enable, AcpiPm::kWakSts};
  dev_.Write(0, control_and_status);
  EXPECT_EQ(poweroffs_, 1);
  const uint8_t status_and_reset[2] = {0x00, x86_64::kAcpiResetValue};
  dev_.Write(1, status_and_reset);
  EXPECT_EQ(resets_, 1);
}

TEST_F(AcpiPmTest, HostileOffsetsAndWidthsAreIgnored) {
  const uint8_t v[8] = {kS5Enable, kS5Enable, kS5Enable, kS5Enable,
                        kS5Enable, kS5Enable, kS5Enable, kS5Enable};
  dev_.Write(AcpiPm::kSize, absl::MakeConstSpan(v, 1));
  dev_.Write(~uint64_t{0}, absl::MakeConstSpan(v, 8));
  dev_.Write(~uint64_t{0} - 1, absl::MakeConstSpan(v, 8));
  dev_.Write(0, absl::MakeConstSpan(v, 0));
  EXPECT_EQ(poweroffs_, 0);
  // An 8-byte write at the reset register touches only that register.
  const uint8_t r[8] = {x86_64::kAcpiResetValue, kS5Enable, kS5Enable, kS5Enable,
                        kS5Enable, kS5Enable, kS5Enable, kS5Enable};
  dev_.Write(AcpiPm::kResetOffset, r);
  EXPECT_EQ(resets_, 1);
  EXPECT_EQ(poweroffs_, 0);
  uint8_t out[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  dev_.Read(~uint64_t{0}, out);
  for (uint8_t b : out) EXPECT_EQ(b, 0);
}

TEST(AcpiPmConfigTest, S5TypeAndResetValueAreConstructorParameters) {
  int poweroffs = 0;
  int resets = 0;
  AcpiPm dev([&] { ++poweroffs; }, [&] { ++resets; }, /*s5_sleep_type=*/7,
             /*reset_value=*/0x0e);
  const uint8_t old_s5[1] = {kS5Enable};
  dev.Write(AcpiPm::kSleepControlOffset, old_s5);
  EXPECT_EQ(poweroffs, 0);
  const uint8_t new_s5[1] = {(7 << 2) | AcpiPm::kSlpEn};
  dev.Write(AcpiPm::kSleepControlOffset, new_s5);
  EXPECT_EQ(poweroffs, 1);
  const uint8_t old_reset[1] = {x86_64::kAcpiResetValue};
  dev.Write(AcpiPm::kResetOffset, old_reset);
  EXPECT_EQ(resets, 0);
  const uint8_t new_reset[1] = {0x0e};
  dev.Write(AcpiPm::kResetOffset, new_reset);
  EXPECT_EQ(resets, 1);
}

TEST(AcpiPmNoCallbackTest, PowerOffAndResetWithoutCallbacksAreHarmless) {
  AcpiPm dev(nullptr, nullptr);
  const uint8_t v[3] = {kS5Enable, 0x80, x86_64::kAcpiResetValue};
  dev.Write(0, v);
  uint8_t r[1] = {0xff};
  dev.Read(0, r);
  EXPECT_EQ(r[0], 0);
}

}  // namespace
}  // namespace vmm
