// Expected bytes come from the ACPI 6.5 grammar (chapter 20) and resource
// descriptor layouts (section 6.4), cross-checked against iasl output.
#include "firmware/acpi/aml.h"

#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vmm::firmware::acpi::aml {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

TEST(AmlPkgLength, ShortBodyTakesOneByteCountingItself) {
  EXPECT_THAT(PkgLength(0), ElementsAre(0x01));
  EXPECT_THAT(PkgLength(62), ElementsAre(0x3f));
}

TEST(AmlPkgLength, TwoBytesSplitLowNibbleAndNextByte) {
  EXPECT_THAT(PkgLength(63), ElementsAre(0x41, 0x04));  // 65 = 0x041
  EXPECT_THAT(PkgLength(4093), ElementsAre(0x4f, 0xff));  // 4095 = 0xfff
}

TEST(AmlPkgLength, ThreeAndFourByteEncodingsAtTheirBoundaries) {
  EXPECT_THAT(PkgLength(4094), ElementsAre(0x81, 0x00, 0x01));        // 0x1001
  EXPECT_THAT(PkgLength(1048572), ElementsAre(0x8f, 0xff, 0xff));     // 0xfffff
  EXPECT_THAT(PkgLength(1048573), ElementsAre(0xc1, 0x00, 0x00, 0x01));  // 0x100001
  EXPECT_THAT(PkgLength(kMaxPkgBody), ElementsAre(0xcf, 0xff, 0xff, 0xff));
}

TEST(AmlNameString, SingleSegmentIsPaddedWithUnderscores) {
  EXPECT_THAT(NameString("_SB_"), ElementsAre('_', 'S', 'B', '_'));
  EXPECT_THAT(NameString("_S5"), ElementsAre('_', 'S', '5', '_'));
}

TEST(AmlNameString, RootDualAndMultiSegmentPaths) {
  EXPECT_THAT(NameString("\\_SB_.PCI0"),
              ElementsAre('\\', 0x2e, '_', 'S', 'B', '_', 'P', 'C', 'I', '0'));
  EXPECT_THAT(NameString("\\_SB.PCI0.VR0"),
              ElementsAre('\\', 0x2f, 3, '_', 'S', 'B', '_', 'P', 'C', 'I', '0', 'V', 'R', '0',
                          '_'));
  EXPECT_THAT(NameString("^^FOO"), ElementsAre('^', '^', 'F', 'O', 'O', '_'));
}

TEST(AmlNameString, EmptyPathIsNullName) {
  EXPECT_THAT(NameString(""), ElementsAre(0x00));
  EXPECT_THAT(NameString("\\"), ElementsAre('\\', 0x00));
}

TEST(AmlNameStringDeathTest, MalformedSegmentIsAVmmBug) {
  EXPECT_DEATH(NameString("TOOLONG"), "name segment");
  EXPECT_DEATH(NameString("1ABC"), "name segment");
  EXPECT_DEATH(NameString("ab"), "name segment");
}

TEST(AmlInteger, UsesZeroOneOnesAndTheSmallestPrefix) {
  EXPECT_THAT(Integer(0), ElementsAre(0x00));
  EXPECT_THAT(Integer(1), ElementsAre(0x01));
  EXPECT_THAT(Integer(~uint64_t{0}), ElementsAre(0xff));
  EXPECT_THAT(Integer(2), ElementsAre(0x0a, 0x02));
  EXPECT_THAT(Integer(0xff), ElementsAre(0x0a, 0xff));
  EXPECT_THAT(Integer(0x100), ElementsAre(0x0b, 0x00, 0x01));
  EXPECT_THAT(Integer(0x1'0000), ElementsAre(0x0c, 0x00, 0x00, 0x01, 0x00));
  EXPECT_THAT(Integer(0x1'0000'0000),
              ElementsAre(0x0e, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00));
}

TEST(AmlString, IsNulTerminatedAscii) {
  EXPECT_THAT(String("LNRO0005"),
              ElementsAre(0x0d, 'L', 'N', 'R', 'O', '0', '0', '0', '5', 0x00));
}

TEST(AmlEisaId, CompressesToTheDWordIaslEmits) {
  EXPECT_THAT(EisaId("PNP0A03"), ElementsAre(0x0c, 0x41, 0xd0, 0x0a, 0x03));
  EXPECT_THAT(EisaId("PNP0A08"), ElementsAre(0x0c, 0x41, 0xd0, 0x0a, 0x08));
  EXPECT_THAT(EisaId("PNP0B00"), ElementsAre(0x0c, 0x41, 0xd0, 0x0b, 0x00));
}

TEST(AmlName, HidWithEisaId) {
  EXPECT_THAT(Name("_HID", EisaId("PNP0A03")),
              ElementsAre(0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03));
}

TEST(AmlPackage, SleepStatePackage) {
  // Name (_S5, Package (0x04) { 0x05, Zero, Zero, Zero })
  EXPECT_THAT(Name("\\_S5", Package({Integer(5), ZeroOp(), ZeroOp(), ZeroOp()})),
              ElementsAre(0x08, '\\', '_', 'S', '5', '_', 0x12, 0x07, 0x04, 0x0a, 0x05, 0x00,
                          0x00, 0x00));
}

TEST(AmlMethod, ReturnsAConstant) {
  // Method (_STA, 0, NotSerialized) { Return (0x0F) }
  EXPECT_THAT(Method("_STA", 0, {Return(Integer(0x0f))}),
              ElementsAre(0x14, 0x09, '_', 'S', 'T', 'A', 0x00, 0xa4, 0x0a, 0x0f));
}

TEST(AmlDevice, EmptyDeviceAndScope) {
  EXPECT_THAT(Device("PCI0", {}), ElementsAre(0x5b, 0x82, 0x05, 'P', 'C', 'I', '0'));
  EXPECT_THAT(Scope("\\_SB", {}), ElementsAre(0x10, 0x06, '\\', '_', 'S', 'B', '_'));
}

TEST(AmlDevice, LargeBodyGetsMultiBytePkgLength) {
  std::vector<Bytes> names;
  for (int i = 0; i < 20; ++i) names.push_back(Name("_UID", Integer(0x12345678)));  // 10 bytes each
  Bytes dev = Device("BIG0", names);
  // Body: name 4 + 200 bytes = 204; PkgLength 206 = 0xce -> 0x4e, 0x0c.
  ASSERT_EQ(dev.size(), 2 + 2 + 204u);
  EXPECT_THAT(std::vector<uint8_t>(dev.begin(), dev.begin() + 4), ElementsAre(0x5b, 0x82, 0x4e, 0x0c));
}

TEST(AmlBuffer, SizeTermThenBytes) {
  const uint8_t data[] = {0xaa, 0xbb};
  EXPECT_THAT(Buffer(data), ElementsAre(0x11, 0x05, 0x0a, 0x02, 0xaa, 0xbb));
}

TEST(AmlResourceTemplate, RtcIoAndIrqEndWithEndTag) {
  // ResourceTemplate () { IO (Decode16, 0x70, 0x70, 0x01, 0x02) IRQNoFlags () {8} }
  EXPECT_THAT(ResourceTemplate({Io(0x70, 0x70, 1, 2), IrqNoFlags(8)}),
              ElementsAre(0x11, 0x10, 0x0a, 0x0d,                                // Buffer (13)
                          0x47, 0x01, 0x70, 0x00, 0x70, 0x00, 0x01, 0x02,  // IO
                          0x22, 0x00, 0x01,                                // IRQNoFlags {8}
                          0x79, 0x00));                                    // EndTag
}

TEST(AmlResource, Memory32Fixed) {
  EXPECT_THAT(Memory32Fixed(true, 0xd000'0000, 0x1000),
              ElementsAre(0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x10, 0x00, 0x00));
  EXPECT_EQ(Memory32Fixed(false, 0, 0)[3], 0x00);  // ReadOnly
}

TEST(AmlResource, ExtendedInterruptFlags) {
  // Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) {16}
  EXPECT_THAT(Interrupt(Trigger::kEdge, Polarity::kActiveHigh, false, 16),
              ElementsAre(0x89, 0x06, 0x00, 0x03, 0x01, 0x10, 0x00, 0x00, 0x00));
  // Interrupt (ResourceConsumer, Level, ActiveLow, Shared) {5}
  EXPECT_THAT(Interrupt(Trigger::kLevel, Polarity::kActiveLow, true, 5),
              ElementsAre(0x89, 0x06, 0x00, 0x0d, 0x01, 0x05, 0x00, 0x00, 0x00));
}

TEST(AmlResource, WordBusNumberAsInQemuHostBridge) {
  // WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,
  //                0x0000, 0x0000, 0x00FF, 0x0000, 0x0100)
  EXPECT_THAT(WordBusNumber(0, 0xff),
              ElementsAre(0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x00,
                          0x00, 0x00, 0x00, 0x01));
}

TEST(AmlResource, WordIoEntireRange) {
  // WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
  //         0x0000, 0x0000, 0x0CF7, 0x0000, 0x0CF8)
  EXPECT_THAT(WordIo(0, 0xcf7),
              ElementsAre(0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0x00, 0x00, 0x00, 0x00, 0xf7, 0x0c,
                          0x00, 0x00, 0xf8, 0x0c));
}

TEST(AmlResource, DWordMemoryNonCacheable) {
  EXPECT_THAT(DWordMemory(Cacheable::kNonCacheable, 0xc000'0000, 0xcfff'ffff),
              ElementsAreArray<uint8_t>({0x87, 0x17, 0x00, 0x00, 0x0c, 0x01,
                                         0x00, 0x00, 0x00, 0x00,     // granularity
                                         0x00, 0x00, 0x00, 0xc0,     // min
                                         0xff, 0xff, 0xff, 0xcf,     // max
                                         0x00, 0x00, 0x00, 0x00,     // translation
                                         0x00, 0x00, 0x00, 0x10}));  // length
}

TEST(AmlResource, QWordMemoryCacheable) {
  Bytes q = QWordMemory(Cacheable::kCacheable, 0x1'0000'0000, 0x10'ffff'ffff);
  ASSERT_EQ(q.size(), 46u);
  EXPECT_THAT(std::vector<uint8_t>(q.begin(), q.begin() + 6),
              ElementsAre(0x8a, 0x2b, 0x00, 0x00, 0x0c, 0x03));
  EXPECT_THAT(std::vector<uint8_t>(q.begin() + 38, q.end()),  // length
              ElementsAre(0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00));
}

}  // namespace
}  // namespace vmm::firmware::acpi::aml
