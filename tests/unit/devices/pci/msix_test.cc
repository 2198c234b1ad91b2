#include "devices/pci/msix.h"

#include <cstdint>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "tests/fakes/fake_msi_sink.h"
#include "tests/unit/devices/pci/test_pci_device.h"

namespace vmm {
namespace {

using Call = FakeMsiSink::ConfigureCall;

constexpr int kBar = 2;
constexpr uint32_t kTableOffset = 0x2000;
constexpr uint32_t kPbaOffset = 0x3000;
constexpr uint16_t kVectors = 4;

class MsixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(config_.AddBar(kBar, PciBarType::kMemory64, 0x4000).ok());
    auto msix = Msix::Create(config_,
                             MsixLayout{.vector_count = kVectors,
                                        .table_bar = kBar,
                                        .table_offset = kTableOffset,
                                        .pba_bar = kBar,
                                        .pba_offset = kPbaOffset},
                             sink_);
    ASSERT_TRUE(msix.ok()) << msix.status();
    msix_ = std::move(*msix);
    cap_ = msix_->capability_offset();
  }

  void WriteControl(uint16_t value) { ConfigWrite(config_, cap_ + 2, 2, value); }
  uint16_t ReadControl() { return static_cast<uint16_t>(ConfigRead(config_, cap_ + 2, 2)); }

  void WriteEntry(uint16_t vector, uint64_t field, uint32_t value) {
    EXPECT_TRUE(msix_->BarWrite(kBar, kTableOffset + vector * 16 + field, LeBytes(value, 4)));
  }
  uint64_t ReadBar(uint64_t offset, size_t size) {
    std::vector<uint8_t> buf(size);
    EXPECT_TRUE(msix_->BarRead(kBar, offset, absl::MakeSpan(buf)));
    return LoadLe(buf);
  }
  // Programs vector `v` the way Linux does (masked), then unmasks it.
  void Program(uint16_t v, uint64_t address, uint32_t data) {
    WriteEntry(v, 0, static_cast<uint32_t>(address));
    WriteEntry(v, 4, static_cast<uint32_t>(address >> 32));
    WriteEntry(v, 8, data);
    WriteEntry(v, 12, 0);
  }

  PciConfigSpace config_{TestFunctionId()};
  std::shared_ptr<FakeMsiSink> sink_ = std::make_shared<FakeMsiSink>();
  std::unique_ptr<Msix> msix_;
  uint16_t cap_ = 0;
};

TEST_F(MsixTest, CapabilityDescribesTableSizeTableAndPba) {
  EXPECT_EQ(ConfigRead(config_, kPciCapabilityPointer, 1), cap_);
  EXPECT_EQ(ConfigRead(config_, cap_, 1), kPciCapIdMsix);
  EXPECT_EQ(ReadControl(), kVectors - 1);
  EXPECT_EQ(ConfigRead(config_, cap_ + 4, 4), kTableOffset | kBar);
  EXPECT_EQ(ConfigRead(config_, cap_ + 8, 4), kPbaOffset | kBar);
}

TEST_F(MsixTest, OnlyEnableAndFunctionMaskAreWritableInTheCapability) {
  WriteControl(0xffff);
  EXPECT_EQ(ReadControl(), kMsixControlEnable | kMsixControlFunctionMask | (kVectors - 1));
  ConfigWrite(config_, cap_ + 4, 4, 0);
  ConfigWrite(config_, cap_ + 8, 4, 0xffff'ffff);
  EXPECT_EQ(ConfigRead(config_, cap_ + 4, 4), kTableOffset | kBar);
  EXPECT_EQ(ConfigRead(config_, cap_ + 8, 4), kPbaOffset | kBar);
  EXPECT_TRUE(msix_->enabled());
  EXPECT_TRUE(msix_->function_masked());
}

TEST_F(MsixTest, TableStartsMaskedWithZeroMessages) {
  for (uint16_t v = 0; v < kVectors; ++v) {
    EXPECT_EQ(ReadBar(kTableOffset + v * 16, 8), 0u);
    EXPECT_EQ(ReadBar(kTableOffset + v * 16 + 8, 4), 0u);
    EXPECT_EQ(ReadBar(kTableOffset + v * 16 + 12, 4), kMsixVectorMasked);
  }
  EXPECT_TRUE(sink_->configures().empty());
}

TEST_F(MsixTest, WritingAMaskedEntryConfiguresItMasked) {
  WriteEntry(1, 0, 0xfee0'0000);
  EXPECT_EQ(sink_->configures(), (std::vector<Call>{{1, {0xfee0'0000, 0}, true}}));
  EXPECT_EQ(msix_->message(1), (MsiMessage{0xfee0'0000, 0}));
}

TEST_F(MsixTest, UnmaskingAVectorOfAnEnabledFunctionConfiguresItUnmasked) {
  WriteControl(kMsixControlEnable);
  Program(0, 0xfee0'1000, 0x4041);
  ASSERT_TRUE(sink_->route(0).has_value());
  EXPECT_EQ(*sink_->route(0), (Call{0, {0xfee0'1000, 0x4041}, false}));
  EXPECT_FALSE(msix_->vector_masked(0));
}

TEST_F(MsixTest, RewritingAnUnmaskedVectorReroutesIt) {
  WriteControl(kMsixControlEnable);
  Program(2, 0xfee0'0000, 0x30);
  sink_->ClearHistory();
  WriteEntry(2, 8, 0x31);
  EXPECT_EQ(sink_->configures(), (std::vector<Call>{{2, {0xfee0'0000, 0x31}, false}}));
}

TEST_F(MsixTest, RewritingWithTheSameValueDoesNotReconfigure) {
  WriteControl(kMsixControlEnable);
  Program(0, 0xfee0'0000, 0x30);
  sink_->ClearHistory();
  WriteEntry(0, 8, 0x30);
  WriteEntry(0, 12, 0);
  EXPECT_TRUE(sink_->configures().empty());
}

TEST_F(MsixTest, QwordTableWriteConfiguresOnce) {
  EXPECT_TRUE(msix_->BarWrite(kBar, kTableOffset + 16, LeBytes(0x1'fee0'2000, 8)));
  EXPECT_EQ(sink_->configures(), (std::vector<Call>{{1, {0x1'fee0'2000, 0}, true}}));
  EXPECT_EQ(ReadBar(kTableOffset + 16, 8), 0x1'fee0'2000u);
}

TEST_F(MsixTest, NonsenseAddressIsStillPassedToTheSink) {
  WriteControl(kMsixControlEnable);
  Program(3, 0xdead'beef'0000'0003, 0xffff'ffff);
  EXPECT_EQ(*sink_->route(3), (Call{3, {0xdead'beef'0000'0003, 0xffff'ffff}, false}));
}

TEST_F(MsixTest, SignalOnUnmaskedVectorTriggers) {
  WriteControl(kMsixControlEnable);
  Program(1, 0xfee0'0000, 0x41);
  EXPECT_TRUE(msix_->Signal(1));
  EXPECT_EQ(sink_->triggers(), std::vector<uint16_t>{1});
  EXPECT_FALSE(msix_->pending(1));
}

TEST_F(MsixTest, SignalWhileDisabledReturnsFalseAndLeavesNothingPending) {
  Program(1, 0xfee0'0000, 0x41);
  EXPECT_FALSE(msix_->Signal(1));
  EXPECT_FALSE(msix_->pending(1));
  EXPECT_TRUE(sink_->triggers().empty());
  WriteControl(kMsixControlEnable);
  EXPECT_TRUE(sink_->triggers().empty());
}

TEST_F(MsixTest, SignalOfANonexistentVectorReturnsFalse) {
  WriteControl(kMsixControlEnable);
  EXPECT_FALSE(msix_->Signal(kVectors));
  EXPECT_FALSE(msix_->Signal(0xffff));  // VIRTIO_MSI_NO_VECTOR
  EXPECT_TRUE(sink_->triggers().empty());
}

TEST_F(MsixTest, MaskedVectorPendsAndIsDeliveredWhenUnmasked) {
  WriteControl(kMsixControlEnable);
  Program(1, 0xfee0'0000, 0x41);
  WriteEntry(1, 12, kMsixVectorMasked);
  sink_->ClearHistory();

  EXPECT_TRUE(msix_->Signal(1));
  EXPECT_TRUE(msix_->Signal(1));
  EXPECT_TRUE(sink_->triggers().empty());
  EXPECT_TRUE(msix_->pending(1));
  EXPECT_EQ(ReadBar(kPbaOffset, 8), 0b10u);

  WriteEntry(1, 12, 0);
  EXPECT_EQ(sink_->configures(), (std::vector<Call>{{1, {0xfee0'0000, 0x41}, false}}));
  EXPECT_EQ(sink_->triggers(), std::vector<uint16_t>{1});  // one delivery for both events
  EXPECT_FALSE(msix_->pending(1));
  EXPECT_EQ(ReadBar(kPbaOffset, 4), 0u);
}

TEST_F(MsixTest, FunctionMaskMasksEveryVectorAndClearingItDeliversPending) {
  WriteControl(kMsixControlEnable);
  Program(0, 0xfee0'0000, 0x40);
  Program(2, 0xfee0'0000, 0x42);
  sink_->ClearHistory();

  WriteControl(kMsixControlEnable | kMsixControlFunctionMask);
  EXPECT_EQ(sink_->configures(), (std::vector<Call>{{0, {0xfee0'0000, 0x40}, true},
                                                    {2, {0xfee0'0000, 0x42}, true}}));
  EXPECT_FALSE(msix_->vector_masked(0));  // the entry's own bit is untouched
  EXPECT_TRUE(msix_->Signal(2));
  EXPECT_TRUE(sink_->triggers().empty());
  EXPECT_EQ(ReadBar(kPbaOffset, 8), 0b100u);

  sink_->ClearHistory();
  WriteControl(kMsixControlEnable);
  EXPECT_EQ(sink_->configures(), (std::vector<Call>{{0, {0xfee0'0000, 0x40}, false},
                                                    {2, {0xfee0'0000, 0x42}, false}}));
  EXPECT_EQ(sink_->triggers(), std::vector<uint16_t>{2});
}

TEST_F(MsixTest, EnableBitGatesEveryVectorsRoute) {
  Program(0, 0xfee0'0000, 0x40);  // unmasked entry, function disabled
  EXPECT_EQ(sink_->route(0)->masked, true);
  WriteControl(kMsixControlEnable);
  EXPECT_EQ(sink_->route(0)->masked, false);
  WriteControl(0);
  EXPECT_EQ(sink_->route(0)->masked, true);
  EXPECT_FALSE(msix_->Signal(0));
}

TEST_F(MsixTest, PbaIsReadOnly) {
  WriteControl(kMsixControlEnable);
  EXPECT_TRUE(msix_->Signal(3));  // masked: pends
  EXPECT_TRUE(msix_->BarWrite(kBar, kPbaOffset, LeBytes(0, 8)));
  EXPECT_EQ(ReadBar(kPbaOffset, 8), 0b1000u);
  EXPECT_TRUE(msix_->BarWrite(kBar, kPbaOffset, LeBytes(0xffff'ffff, 4)));
  EXPECT_EQ(ReadBar(kPbaOffset, 4), 0b1000u);
}

TEST_F(MsixTest, AccessesOutsideTableAndPbaAreNotClaimed) {
  std::vector<uint8_t> buf(4);
  EXPECT_FALSE(msix_->BarRead(kBar, 0, absl::MakeSpan(buf)));
  EXPECT_FALSE(msix_->BarRead(kBar, kTableOffset + kVectors * 16, absl::MakeSpan(buf)));
  EXPECT_FALSE(msix_->BarRead(kBar, kPbaOffset + 8, absl::MakeSpan(buf)));
  EXPECT_FALSE(msix_->BarRead(0, kTableOffset, absl::MakeSpan(buf)));
  EXPECT_FALSE(msix_->BarWrite(kBar, kTableOffset - 4, buf));
}

TEST_F(MsixTest, HostileTableAccessesChangeNothing) {
  WriteControl(kMsixControlEnable);
  Program(0, 0xfee0'0000, 0x40);
  sink_->ClearHistory();
  struct Access {
    uint64_t offset;
    size_t size;
  };
  for (Access a : std::vector<Access>{{kTableOffset, 1},
                                      {kTableOffset + 1, 4},
                                      {kTableOffset + 2, 2},
                                      {kTableOffset + 4, 8},  // misaligned qword
                                      {kTableOffset + 12, 3},
                                      {kTableOffset + kVectors * 16 - 4, 8},  // runs off the end
                                      {kPbaOffset + 1, 4},
                                      {kPbaOffset + 4, 8}}) {
    std::vector<uint8_t> buf(a.size, 0);
    EXPECT_TRUE(msix_->BarRead(kBar, a.offset, absl::MakeSpan(buf)));
    for (uint8_t b : buf) EXPECT_EQ(b, 0xff);
    EXPECT_TRUE(msix_->BarWrite(kBar, a.offset, std::vector<uint8_t>(a.size, 0)));
  }
  EXPECT_TRUE(sink_->configures().empty());
  EXPECT_EQ(msix_->message(0), (MsiMessage{0xfee0'0000, 0x40}));
  EXPECT_FALSE(msix_->vector_masked(0));
}

TEST_F(MsixTest, ReservedVectorControlBitsReadZero) {
  WriteEntry(0, 12, 0xffff'fffe);
  EXPECT_EQ(ReadBar(kTableOffset + 12, 4), 0u);
}

TEST(MsixCreateTest, RejectsImpossibleLayouts) {
  PciConfigSpace config(TestFunctionId());
  ASSERT_TRUE(config.AddBar(0, PciBarType::kMemory32, 0x1000).ok());
  ASSERT_TRUE(config.AddBar(1, PciBarType::kIo, 0x100).ok());
  auto sink = std::make_shared<FakeMsiSink>();
  auto layout = [](uint16_t n, int tbar, uint32_t toff, int pbar, uint32_t poff) {
    return MsixLayout{n, tbar, toff, pbar, poff};
  };
  EXPECT_FALSE(Msix::Create(config, layout(0, 0, 0, 0, 0x800), sink).ok());
  EXPECT_FALSE(Msix::Create(config, layout(2049, 0, 0, 0, 0x800), sink).ok());
  EXPECT_FALSE(Msix::Create(config, layout(4, 1, 0, 0, 0x800), sink).ok());   // IO BAR
  EXPECT_FALSE(Msix::Create(config, layout(4, 3, 0, 0, 0x800), sink).ok());   // no BAR
  EXPECT_FALSE(Msix::Create(config, layout(4, 0, 4, 0, 0x800), sink).ok());   // unaligned
  EXPECT_FALSE(Msix::Create(config, layout(4, 0, 0xfc8, 0, 0x800), sink).ok());  // past end
  EXPECT_FALSE(Msix::Create(config, layout(4, 0, 0, 0, 0x38), sink).ok());    // overlap
  EXPECT_TRUE(Msix::Create(config, layout(4, 0, 0, 0, 0x40), sink).ok());
}

TEST(MsixCreateTest, WithoutASinkSignalsStayPending) {
  PciConfigSpace config(TestFunctionId());
  ASSERT_TRUE(config.AddBar(0, PciBarType::kMemory32, 0x1000).ok());
  auto msix = Msix::Create(config, MsixLayout{1, 0, 0, 0, 0x800}, nullptr);
  ASSERT_TRUE(msix.ok());
  ConfigWrite(config, (*msix)->capability_offset() + 2, 2, kMsixControlEnable);
  ASSERT_TRUE((*msix)->BarWrite(0, 12, LeBytes(0, 4)));
  EXPECT_TRUE((*msix)->Signal(0));
  EXPECT_TRUE((*msix)->pending(0));
}

}  // namespace
}  // namespace vmm
