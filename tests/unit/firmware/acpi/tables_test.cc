#include "firmware/acpi/tables.h"

#include <cstdint>
#include <vector>

#include "arch/x86_64/layout.h"
#include "firmware/acpi/aml.h"
#include "firmware/acpi/sdt.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/firmware/acpi/acpi_test_util.h"

namespace vmm::firmware::acpi {
namespace {

using testing::At;
using testing::Contains;
using testing::MadtEntries;
using testing::Sum;
using testing::Text;
namespace x = x86_64;

// Checks what every table shares: signature, length field, revision,
// checksum, OEM IDs.
void ExpectValidTable(const std::vector<uint8_t>& table, const char* signature,
                      uint8_t revision) {
  ASSERT_GE(table.size(), kSdtHeaderSize);
  EXPECT_EQ(Text(table, 0, 4), signature);
  EXPECT_EQ(At<uint32_t>(table, 4), table.size()) << signature << " length field";
  EXPECT_EQ(table[8], revision) << signature;
  EXPECT_EQ(Sum(table), 0) << signature << " checksum";
  EXPECT_EQ(Text(table, 10, 6), "VMM   ");
  EXPECT_EQ(Text(table, 16, 8), std::string("VMM") + signature + " ");
}

TEST(Rsdp, IsRevision2WithBothChecksumsAndTheXsdtAddress) {
  std::vector<uint8_t> rsdp = BuildRsdp(0xe0030);
  ASSERT_EQ(rsdp.size(), 36u);
  EXPECT_EQ(Text(rsdp, 0, 8), "RSD PTR ");
  EXPECT_EQ(Sum(rsdp.data(), 20), 0) << "ACPI 1.0 checksum over the first 20 bytes";
  EXPECT_EQ(Sum(rsdp), 0) << "extended checksum";
  EXPECT_EQ(Text(rsdp, 9, 6), "VMM   ");
  EXPECT_EQ(rsdp[15], 2) << "revision";
  EXPECT_EQ(At<uint32_t>(rsdp, 16), 0u) << "no RSDT";
  EXPECT_EQ(At<uint32_t>(rsdp, 20), 36u) << "length";
  EXPECT_EQ(At<uint64_t>(rsdp, 24), 0xe0030u);
}

TEST(Xsdt, HoldsOne64BitPointerPerTable) {
  const uint64_t tables[] = {0x1000, 0x2'0000'0000, 0x3000};
  std::vector<uint8_t> xsdt = BuildXsdt(tables);
  ExpectValidTable(xsdt, "XSDT", 1);
  ASSERT_EQ(xsdt.size(), 36u + 3 * 8);
  EXPECT_EQ(At<uint64_t>(xsdt, 36), 0x1000u);
  EXPECT_EQ(At<uint64_t>(xsdt, 44), 0x2'0000'0000u);
  EXPECT_EQ(At<uint64_t>(xsdt, 52), 0x3000u);
}

// GAS fields at `offset`: address space, bit width, bit offset, access size, address.
void ExpectIoByteRegister(const std::vector<uint8_t>& fadt, size_t offset, uint16_t port) {
  EXPECT_EQ(fadt[offset], 1) << "system I/O";
  EXPECT_EQ(fadt[offset + 1], 8) << "8 bits wide (Linux resets only through 8-bit registers)";
  EXPECT_EQ(fadt[offset + 2], 0) << "bit offset";
  EXPECT_EQ(fadt[offset + 3], 1) << "byte access";
  EXPECT_EQ(At<uint64_t>(fadt, offset + 4), port);
}

TEST(Fadt, IsHardwareReducedWithSleepAndResetRegistersAtTheLayoutPorts) {
  std::vector<uint8_t> fadt = BuildFadt(AcpiPlatform{}, 0xe1000);
  ExpectValidTable(fadt, "FACP", 6);
  ASSERT_EQ(fadt.size(), 276u);
  const uint32_t flags = At<uint32_t>(fadt, 112);
  EXPECT_TRUE(flags & (1u << 20)) << "HW_REDUCED_ACPI";
  EXPECT_TRUE(flags & (1u << 10)) << "RESET_REG_SUP";
  ExpectIoByteRegister(fadt, 116, x::kAcpiResetPort);
  EXPECT_EQ(fadt[128], x::kAcpiResetValue);
  ExpectIoByteRegister(fadt, 244, x::kAcpiSleepControlPort);
  ExpectIoByteRegister(fadt, 256, x::kAcpiSleepStatusPort);
  EXPECT_EQ(At<uint16_t>(fadt, 46), 0) << "no SCI";
  EXPECT_EQ(At<uint32_t>(fadt, 56), 0u) << "no PM1a event block";
}

TEST(Fadt, PointsAtTheDsdtThroughBothFields) {
  std::vector<uint8_t> fadt = BuildFadt(AcpiPlatform{}, 0xe1230);
  EXPECT_EQ(At<uint32_t>(fadt, 40), 0xe1230u);
  EXPECT_EQ(At<uint64_t>(fadt, 140), 0xe1230u);
}

TEST(Fadt, BootArchitectureFlagsFollowTheLegacyDevices) {
  AcpiPlatform with_all;
  const uint16_t all = At<uint16_t>(BuildFadt(with_all, 0), 109);
  EXPECT_TRUE(all & kBootArch8042);
  EXPECT_TRUE(all & kBootArchLegacyDevices);
  EXPECT_TRUE(all & kBootArchNoVga);
  EXPECT_FALSE(all & kBootArchNoCmosRtc);

  AcpiPlatform bare;
  bare.serial = bare.i8042 = bare.rtc = bare.pvpanic = false;
  const uint16_t none = At<uint16_t>(BuildFadt(bare, 0), 109);
  EXPECT_FALSE(none & kBootArch8042);
  EXPECT_FALSE(none & kBootArchLegacyDevices);
  EXPECT_TRUE(none & kBootArchNoCmosRtc);
}

TEST(Madt, HasOneEnabledLocalApicPerCpuAndTheIoapicAfterThem) {
  AcpiPlatform platform;
  platform.cpus = 3;
  std::vector<uint8_t> madt = BuildMadt(platform);
  ExpectValidTable(madt, "APIC", 5);
  EXPECT_EQ(At<uint32_t>(madt, 36), x::kLapicStart);
  EXPECT_EQ(At<uint32_t>(madt, 40), 1u) << "PCAT_COMPAT";

  std::vector<uint8_t> apic_ids;
  int ioapics = 0;
  for (const auto& e : MadtEntries(madt)) {
    if (e.type == 0) {
      ASSERT_EQ(e.bytes.size(), 8u);
      EXPECT_EQ(e.bytes[2], e.bytes[3]) << "processor UID == APIC ID";
      EXPECT_EQ(At<uint32_t>(e.bytes, 4), 1u) << "enabled";
      apic_ids.push_back(e.bytes[3]);
    } else if (e.type == 1) {
      ++ioapics;
      ASSERT_EQ(e.bytes.size(), 12u);
      EXPECT_EQ(e.bytes[2], 3) << "IOAPIC ID = CPU count, as in the MP table";
      EXPECT_EQ(At<uint32_t>(e.bytes, 4), x::kIoapicStart);
      EXPECT_EQ(At<uint32_t>(e.bytes, 8), 0u) << "GSI base";
    }
  }
  EXPECT_THAT(apic_ids, ::testing::ElementsAre(0, 1, 2));
  EXPECT_EQ(ioapics, 1);
}

TEST(Madt, OverridesIrq0ToThePitPinAndPciIntxToLevelActiveLow) {
  std::vector<uint8_t> madt = BuildMadt(AcpiPlatform{});
  std::vector<std::pair<uint8_t, uint32_t>> overrides;
  for (const auto& e : MadtEntries(madt)) {
    if (e.type != 2) continue;
    ASSERT_EQ(e.bytes.size(), 10u);
    EXPECT_EQ(e.bytes[2], 0) << "ISA bus";
    const uint8_t irq = e.bytes[3];
    const uint32_t gsi = At<uint32_t>(e.bytes, 4);
    const uint16_t flags = At<uint16_t>(e.bytes, 8);
    overrides.push_back({irq, gsi});
    if (irq == 0) {
      EXPECT_EQ(flags, 0) << "the PIT conforms to ISA: edge, active high";
    } else {
      EXPECT_EQ(flags, 0x000f) << "IRQ " << int{irq} << ": level, active low";
    }
  }
  EXPECT_THAT(overrides, ::testing::UnorderedElementsAre(
                             std::pair<uint8_t, uint32_t>{0, x::kPitIoapicPin},
                             std::pair<uint8_t, uint32_t>{x::kPciIntxGsis[0], x::kPciIntxGsis[0]},
                             std::pair<uint8_t, uint32_t>{x::kPciIntxGsis[1], x::kPciIntxGsis[1]},
                             std::pair<uint8_t, uint32_t>{x::kPciIntxGsis[2], x::kPciIntxGsis[2]},
                             std::pair<uint8_t, uint32_t>{x::kPciIntxGsis[3], x::kPciIntxGsis[3]}));
}

TEST(Madt, WithoutPciOnlyThePitIsOverridden) {
  AcpiPlatform platform;
  platform.pci = false;
  int overrides = 0;
  for (const auto& e : MadtEntries(BuildMadt(platform))) overrides += e.type == 2;
  EXPECT_EQ(overrides, 1);
}

TEST(Madt, NmiReachesLint1OfEveryCpu) {
  std::vector<testing::MadtEntry> nmis;
  for (auto& e : MadtEntries(BuildMadt(AcpiPlatform{}))) {
    if (e.type == 4) nmis.push_back(e);
  }
  ASSERT_EQ(nmis.size(), 1u);
  ASSERT_EQ(nmis[0].bytes.size(), 6u);
  EXPECT_EQ(nmis[0].bytes[2], 0xff) << "all processors";
  EXPECT_EQ(nmis[0].bytes[5], 1) << "LINT1";
}

TEST(Mcfg, DescribesTheEcamWindowForAllItsBuses) {
  std::vector<uint8_t> mcfg = BuildMcfg();
  ExpectValidTable(mcfg, "MCFG", 1);
  ASSERT_EQ(mcfg.size(), 44u + 16);
  EXPECT_EQ(At<uint64_t>(mcfg, 44), x::kEcamStart);
  EXPECT_EQ(At<uint16_t>(mcfg, 52), 0) << "segment";
  EXPECT_EQ(mcfg[54], 0) << "start bus";
  EXPECT_EQ(mcfg[55], x::kEcamSize / (1 << 20) - 1) << "end bus";
}

TEST(Dsdt, IsRevision2AndDefinesS5ForPoweroff) {
  std::vector<uint8_t> dsdt = BuildDsdt(AcpiPlatform{});
  ExpectValidTable(dsdt, "DSDT", 2);
  EXPECT_TRUE(Contains(dsdt, aml::Name("\\_S5", aml::Package({aml::Integer(5), aml::ZeroOp(),
                                                               aml::ZeroOp(), aml::ZeroOp()}))));
}

TEST(Dsdt, DescribesEachPopulatedVirtioMmioSlotOnly) {
  AcpiPlatform platform;
  platform.virtio_mmio_slots = {0, 3};
  std::vector<uint8_t> dsdt = BuildDsdt(platform);
  for (uint32_t slot : {0u, 3u}) {
    const uint32_t base = static_cast<uint32_t>(x::kVirtioMmioStart + slot * x::kVirtioMmioSlotSize);
    EXPECT_TRUE(Contains(
        dsdt, aml::Name("_CRS", aml::ResourceTemplate(
                                    {aml::Memory32Fixed(true, base, x::kVirtioMmioSlotSize),
                                     aml::Interrupt(aml::Trigger::kEdge,
                                                    aml::Polarity::kActiveHigh, false,
                                                    x::kVirtioMmioFirstGsi + slot)}))))
        << "slot " << slot;
  }
  std::vector<uint8_t> hid = aml::Name("_HID", aml::String("LNRO0005"));
  EXPECT_TRUE(Contains(dsdt, hid));
  EXPECT_TRUE(Contains(dsdt, {'V', 'R', '0', '3'}));
  EXPECT_FALSE(Contains(dsdt, {'V', 'R', '0', '1'}));
  EXPECT_FALSE(Contains(BuildDsdt(AcpiPlatform{}), hid));
}

TEST(Dsdt, PvpanicIsQemu0001AtItsPortWhenPresent) {
  AcpiPlatform platform;
  platform.pvpanic = true;
  const std::vector<uint8_t> hid = aml::Name("_HID", aml::String("QEMU0001"));
  const std::vector<uint8_t> crs =
      aml::Name("_CRS", aml::ResourceTemplate({aml::Io(0x505, 0x505, 1, 1)}));
  EXPECT_TRUE(Contains(BuildDsdt(platform), hid));
  EXPECT_TRUE(Contains(BuildDsdt(platform), crs));
  platform.pvpanic = false;
  EXPECT_FALSE(Contains(BuildDsdt(platform), hid));
}

TEST(Dsdt, RtcIsPnp0b00WithItsPortsAndIrq8) {
  AcpiPlatform platform;
  EXPECT_TRUE(Contains(BuildDsdt(platform), aml::Name("_HID", aml::EisaId("PNP0B00"))));
  EXPECT_TRUE(Contains(BuildDsdt(platform),
                       aml::Name("_CRS", aml::ResourceTemplate(
                                             {aml::Io(0x70, 0x70, 1, 2), aml::IrqNoFlags(8)}))));
  platform.rtc = false;
  EXPECT_FALSE(Contains(BuildDsdt(platform), aml::Name("_HID", aml::EisaId("PNP0B00"))));
}

TEST(Dsdt, HostBridgeWindowsMatchTheLayout) {
  AcpiPlatform platform;
  platform.ram_end = 6ull << 30;
  std::vector<uint8_t> dsdt = BuildDsdt(platform);
  EXPECT_TRUE(Contains(dsdt, aml::Name("_HID", aml::EisaId("PNP0A08"))));
  EXPECT_TRUE(Contains(dsdt, aml::WordBusNumber(0, 0xff)));
  EXPECT_TRUE(Contains(dsdt, aml::WordIo(0, 0xcf7)));
  EXPECT_TRUE(Contains(dsdt, aml::WordIo(0xd00, 0xffff)));
  EXPECT_TRUE(Contains(dsdt, aml::DWordMemory(aml::Cacheable::kNonCacheable, 0xc000'0000,
                                              0xcfff'ffff)));
  const uint64_t mmio64 = x::PciMmio64Start(6ull << 30);
  EXPECT_TRUE(Contains(dsdt, aml::QWordMemory(aml::Cacheable::kCacheable, mmio64,
                                              mmio64 + x::kPciMmio64Size - 1)));
  // The ECAM window is reserved as a motherboard resource.
  EXPECT_TRUE(Contains(dsdt, aml::Memory32Fixed(true, static_cast<uint32_t>(x::kEcamStart),
                                                static_cast<uint32_t>(x::kEcamSize))));
  platform.pci = false;
  EXPECT_FALSE(Contains(BuildDsdt(platform), aml::Name("_HID", aml::EisaId("PNP0A08"))));
}

TEST(Dsdt, PciRoutingSendsIntaOfSlotDToItsGsiAndSwizzlesTheOtherPins) {
  std::vector<uint8_t> dsdt = BuildDsdt(AcpiPlatform{});
  auto entry = [](uint32_t slot, uint32_t pin, uint32_t gsi) {
    return aml::Package({aml::Integer((uint64_t{slot} << 16) | 0xffff), aml::Integer(pin),
                         aml::ZeroOp(), aml::Integer(gsi)});
  };
  for (uint32_t slot : {0u, 1u, 5u, 31u}) {
    EXPECT_TRUE(Contains(dsdt, entry(slot, 0, x::kPciIntxGsis[slot % 4]))) << "slot " << slot;
    EXPECT_TRUE(Contains(dsdt, entry(slot, 3, x::kPciIntxGsis[(slot + 3) % 4])))
        << "slot " << slot;
  }
}

TEST(Dsdt, OneProcessorDevicePerCpu) {
  AcpiPlatform platform;
  platform.cpus = 17;
  std::vector<uint8_t> dsdt = BuildDsdt(platform);
  EXPECT_TRUE(Contains(dsdt, {'C', '0', '1', '0'}));
  EXPECT_FALSE(Contains(dsdt, {'C', '0', '1', '1'}));
}

}  // namespace
}  // namespace vmm::firmware::acpi
