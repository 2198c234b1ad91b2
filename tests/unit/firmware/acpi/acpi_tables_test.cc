#include "firmware/acpi/acpi_tables.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "arch/x86_64/layout.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/test_guest_memory.h"
#include "tests/unit/firmware/acpi/acpi_test_util.h"

namespace vmm::firmware::acpi {
namespace {

using testing::At;
using testing::Sum;
using testing::Text;
namespace x = x86_64;

AcpiPlatform TypicalPlatform() {
  AcpiPlatform platform;
  platform.cpus = 4;
  platform.ram_end = 8ull << 30;
  platform.virtio_mmio_slots = {0, 1, 2};
  platform.pvpanic = true;
  return platform;
}

// The table bytes at guest address `address`, using its length field.
std::vector<uint8_t> TableAt(const AcpiTables& tables, uint64_t address) {
  const uint64_t offset = address - tables.base.value();
  EXPECT_LT(offset + 8, tables.bytes.size()) << std::hex << address;
  if (offset + 8 >= tables.bytes.size()) return {};
  const uint32_t length = At<uint32_t>(tables.bytes, offset + 4);
  EXPECT_LE(offset + length, tables.bytes.size());
  return std::vector<uint8_t>(tables.bytes.begin() + offset,
                              tables.bytes.begin() + std::min<uint64_t>(offset + length,
                                                                        tables.bytes.size()));
}

TEST(BuildAcpiTables, RsdpComesFirstAtAcpiStart) {
  auto tables = BuildAcpiTables(TypicalPlatform());
  ASSERT_TRUE(tables.ok()) << tables.status();
  EXPECT_EQ(tables->base.value(), x::kAcpiStart);
  EXPECT_EQ(tables->rsdp.value(), x::kAcpiStart);
  EXPECT_EQ(Text(tables->bytes, 0, 8), "RSD PTR ");
  EXPECT_EQ(Sum(tables->bytes.data(), 36), 0);
}

TEST(BuildAcpiTables, EveryTableIsAlignedInsideTheWindowWithAValidChecksum) {
  auto tables = BuildAcpiTables(TypicalPlatform());
  ASSERT_TRUE(tables.ok()) << tables.status();
  EXPECT_LE(tables->bytes.size(), x::kAcpiSize);
  std::vector<std::string> signatures;
  uint64_t previous_end = tables->base.value();
  for (const auto& t : tables->tables) {
    signatures.push_back(t.signature);
    EXPECT_EQ(t.address.value() % 16, 0u) << t.signature;
    EXPECT_GE(t.address.value(), previous_end) << t.signature << " overlaps";
    previous_end = t.address.value() + t.size;
    EXPECT_LE(previous_end, x::kAcpiStart + x::kAcpiSize);
    const uint64_t offset = t.address - tables->base;
    EXPECT_EQ(Sum(tables->bytes.data() + offset, t.size), 0) << t.signature;
    if (t.signature != "RSD PTR ") {
      EXPECT_EQ(Text(tables->bytes, offset, 4), t.signature);
      EXPECT_EQ(At<uint32_t>(tables->bytes, offset + 4), t.size) << t.signature;
    }
  }
  EXPECT_THAT(signatures,
              ::testing::ElementsAre("RSD PTR ", "XSDT", "FACP", "APIC", "MCFG", "DSDT"));
}

TEST(BuildAcpiTables, PointersLeadFromTheRsdpToEveryTable) {
  auto tables = BuildAcpiTables(TypicalPlatform());
  ASSERT_TRUE(tables.ok()) << tables.status();
  const uint64_t xsdt_address = At<uint64_t>(tables->bytes, 24);
  std::vector<uint8_t> xsdt = TableAt(*tables, xsdt_address);
  ASSERT_EQ(Text(xsdt, 0, 4), "XSDT");

  std::map<std::string, uint64_t> found;
  for (size_t off = 36; off + 8 <= xsdt.size(); off += 8) {
    const uint64_t address = At<uint64_t>(xsdt, off);
    std::vector<uint8_t> table = TableAt(*tables, address);
    ASSERT_GE(table.size(), 36u);
    EXPECT_EQ(Sum(table), 0);
    found[Text(table, 0, 4)] = address;
  }
  EXPECT_EQ(found.size(), 3u);
  ASSERT_TRUE(found.count("FACP"));
  EXPECT_TRUE(found.count("APIC"));
  EXPECT_TRUE(found.count("MCFG"));

  std::vector<uint8_t> fadt = TableAt(*tables, found["FACP"]);
  std::vector<uint8_t> dsdt = TableAt(*tables, At<uint64_t>(fadt, 140));
  EXPECT_EQ(Text(dsdt, 0, 4), "DSDT");
  EXPECT_EQ(Sum(dsdt), 0);
}

TEST(BuildAcpiTables, WithoutPciThereIsNoMcfg) {
  AcpiPlatform platform = TypicalPlatform();
  platform.pci = false;
  auto tables = BuildAcpiTables(platform);
  ASSERT_TRUE(tables.ok()) << tables.status();
  for (const auto& t : tables->tables) EXPECT_NE(t.signature, "MCFG");
  std::vector<uint8_t> xsdt = TableAt(*tables, At<uint64_t>(tables->bytes, 24));
  EXPECT_EQ(xsdt.size(), 36u + 2 * 8);
}

TEST(BuildAcpiTables, TheMostCpusAndEverySlotFit) {
  AcpiPlatform platform = TypicalPlatform();
  platform.cpus = kAcpiMaxCpus;
  platform.virtio_mmio_slots.clear();
  for (uint32_t i = 0; i < x::kVirtioMmioSlotCount; ++i) platform.virtio_mmio_slots.push_back(i);
  auto tables = BuildAcpiTables(platform);
  ASSERT_TRUE(tables.ok()) << tables.status();
  EXPECT_LE(tables->bytes.size(), x::kAcpiSize);
}

TEST(BuildAcpiTables, RejectsZeroOrTooManyCpus) {
  AcpiPlatform platform = TypicalPlatform();
  platform.cpus = 0;
  EXPECT_EQ(BuildAcpiTables(platform).status().code(), absl::StatusCode::kInvalidArgument);
  platform.cpus = kAcpiMaxCpus + 1;
  auto status = BuildAcpiTables(platform).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("255 CPUs"));
}

TEST(BuildAcpiTables, RejectsOutOfRangeAndDuplicateVirtioSlots) {
  AcpiPlatform platform = TypicalPlatform();
  platform.virtio_mmio_slots = {x::kVirtioMmioSlotCount};
  EXPECT_EQ(BuildAcpiTables(platform).status().code(), absl::StatusCode::kInvalidArgument);
  platform.virtio_mmio_slots = {1, 1};
  auto status = BuildAcpiTables(platform).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("slot 1 listed twice"));
}

// Linux's acpi_find_root_pointer: 16-byte steps through 0xE0000-0xFFFFF for
// "RSD PTR " whose first 20 bytes (and, for revision 2, all 36) sum to 0.
std::optional<uint64_t> ScanForRsdp(const GuestMemory& memory) {
  for (uint64_t a = 0xe0000; a + 36 <= 0x100000; a += 16) {
    std::vector<uint8_t> bytes(36);
    if (!memory.ReadBytes(GuestAddress(a), absl::MakeSpan(bytes)).ok()) return std::nullopt;
    if (Text(bytes, 0, 8) == "RSD PTR " && Sum(bytes.data(), 20) == 0 && Sum(bytes) == 0) {
      return a;
    }
  }
  return std::nullopt;
}

TEST(WriteAcpiTables, LinuxsLegacyScanFindsTheRsdpItReturns) {
  GuestMemory memory = vmm::testing::TestGuestMemory(2 << 20);
  auto rsdp = WriteAcpiTables(memory, TypicalPlatform());
  ASSERT_TRUE(rsdp.ok()) << rsdp.status();
  EXPECT_EQ(ScanForRsdp(memory), rsdp->value());

  auto tables = BuildAcpiTables(TypicalPlatform());
  ASSERT_TRUE(tables.ok());
  std::vector<uint8_t> written(tables->bytes.size());
  ASSERT_TRUE(memory.ReadBytes(tables->base, absl::MakeSpan(written)).ok());
  EXPECT_EQ(written, tables->bytes);
}

TEST(WriteAcpiTables, FailsCleanlyWhenTheWindowIsNotRam) {
  GuestMemory memory = vmm::testing::TestGuestMemory(0x80000);
  auto rsdp = WriteAcpiTables(memory, TypicalPlatform());
  ASSERT_FALSE(rsdp.ok());
  EXPECT_THAT(std::string(rsdp.status().message()), ::testing::HasSubstr("ACPI"));
}

TEST(WriteAcpiTables, InvalidPlatformIsReportedNotWritten) {
  GuestMemory memory = vmm::testing::TestGuestMemory(2 << 20);
  AcpiPlatform platform;
  platform.cpus = 0;
  EXPECT_EQ(WriteAcpiTables(memory, platform).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ScanForRsdp(memory), std::nullopt);
}

}  // namespace
}  // namespace vmm::firmware::acpi
