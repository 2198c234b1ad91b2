#include "firmware/mp_table.h"

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "arch/x86_64/layout.h"
#include "gtest/gtest.h"
#include "tests/fakes/test_guest_memory.h"

namespace vmm::firmware {
namespace {

using x86_64::kEbdaStart;
using x86_64::kLowRamEnd;

constexpr uint64_t kMiB = 1 << 20;

GuestMemory LowMemory() { return vmm::testing::TestGuestMemory(2 * kMiB); }

std::vector<uint8_t> ReadBytes(const GuestMemory& mem, uint64_t address, uint64_t size) {
  std::vector<uint8_t> bytes(size);
  EXPECT_TRUE(mem.ReadBytes(GuestAddress(address), absl::MakeSpan(bytes)).ok());
  return bytes;
}

uint8_t Sum(const std::vector<uint8_t>& bytes) {
  uint8_t sum = 0;
  for (uint8_t b : bytes) sum = static_cast<uint8_t>(sum + b);
  return sum;
}

template <typename T>
T At(const std::vector<uint8_t>& bytes, size_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

// Scans [start, start + length) the way Linux's smp_scan_config does: a
// 16-byte aligned "_MP_" whose 16 bytes sum to zero, length 1, revision 1
// or 4. Returns the floating pointer's address.
std::optional<uint64_t> ScanForFloatingPointer(const GuestMemory& mem, uint64_t start,
                                               uint64_t length) {
  for (uint64_t a = start; a + 16 <= start + length; a += 16) {
    auto fp = ReadBytes(mem, a, 16);
    if (std::memcmp(fp.data(), "_MP_", 4) == 0 && Sum(fp) == 0 && fp[8] == 1 &&
        (fp[9] == 1 || fp[9] == 4)) {
      return a;
    }
  }
  return std::nullopt;
}

struct Entry {
  uint8_t type;
  std::vector<uint8_t> bytes;
};

// The configuration table found through the floating pointer, checked on
// the way: signature, checksum, entries exactly filling the stated length.
struct ConfigTable {
  std::vector<uint8_t> header;
  std::vector<Entry> entries;
};

ConfigTable ReadConfigTable(const GuestMemory& mem) {
  ConfigTable table;
  auto fp = ReadBytes(mem, kEbdaStart, 16);
  const uint32_t address = At<uint32_t>(fp, 4);
  auto header = ReadBytes(mem, address, 44);
  EXPECT_EQ(std::string(header.begin(), header.begin() + 4), "PCMP");
  const uint16_t length = At<uint16_t>(header, 4);
  auto all = ReadBytes(mem, address, length);
  EXPECT_EQ(Sum(all), 0) << "configuration table checksum";
  size_t offset = 44;
  while (offset < length) {
    const uint8_t type = all[offset];
    const size_t size = type == 0 ? 20 : 8;
    EXPECT_LE(type, 4) << "unknown entry type at " << offset;
    EXPECT_LE(offset + size, length);
    if (type > 4 || offset + size > length) break;
    table.entries.push_back({type, std::vector<uint8_t>(all.begin() + offset,
                                                        all.begin() + offset + size)});
    offset += size;
  }
  EXPECT_EQ(offset, length) << "entries end exactly at the base table length";
  EXPECT_EQ(At<uint16_t>(header, 34), table.entries.size()) << "entry count";
  table.header = header;
  return table;
}

std::vector<Entry> OfType(const ConfigTable& table, uint8_t type) {
  std::vector<Entry> out;
  for (const Entry& e : table.entries) {
    if (e.type == type) out.push_back(e);
  }
  return out;
}

TEST(MpTableTest, FloatingPointerIsWhereLinuxScansAndSumsToZero) {
  GuestMemory mem = LowMemory();
  ASSERT_TRUE(WriteMpTable(mem, 2).ok());
  // Linux scans the last KiB of conventional memory (639 KiB).
  EXPECT_EQ(ScanForFloatingPointer(mem, 639 * 0x400, 0x400), kEbdaStart);
  auto fp = ReadBytes(mem, kEbdaStart, 16);
  EXPECT_EQ(Sum(fp), 0);
  EXPECT_EQ(fp[9], 4) << "MP spec 1.4";
  EXPECT_EQ(fp[11], 0) << "feature byte 1: a configuration table is present";
  EXPECT_EQ(fp[12] & 0x80, 0) << "virtual wire mode, no IMCR";
}

TEST(MpTableTest, ConfigurationTableChecksumAndLengthAreConsistent) {
  GuestMemory mem = LowMemory();
  ASSERT_TRUE(WriteMpTable(mem, 4).ok());
  ConfigTable table = ReadConfigTable(mem);
  EXPECT_EQ(At<uint16_t>(table.header, 4) + 16u, MpTableSize(4));
  EXPECT_EQ(table.header[6], 4) << "spec revision";
  EXPECT_EQ(At<uint32_t>(table.header, 36), x86_64::kLapicStart);
}

TEST(MpTableTest, OneEnabledProcessorEntryPerCpuWithBspFirst) {
  for (uint32_t cpus : {1u, 2u, 7u}) {
    SCOPED_TRACE(cpus);
    GuestMemory mem = LowMemory();
    ASSERT_TRUE(WriteMpTable(mem, cpus).ok());
    auto processors = OfType(ReadConfigTable(mem), 0);
    ASSERT_EQ(processors.size(), cpus);
    for (uint32_t i = 0; i < cpus; ++i) {
      EXPECT_EQ(processors[i].bytes[1], i) << "APIC ID";
      EXPECT_EQ(processors[i].bytes[3] & 1, 1) << "enabled";
      EXPECT_EQ((processors[i].bytes[3] >> 1) & 1, i == 0 ? 1 : 0) << "BSP flag";
    }
  }
}

TEST(MpTableTest, DescribesTheIoapicAndTheIsaBus) {
  GuestMemory mem = LowMemory();
  ASSERT_TRUE(WriteMpTable(mem, 3).ok());
  ConfigTable table = ReadConfigTable(mem);
  auto ioapics = OfType(table, 2);
  ASSERT_EQ(ioapics.size(), 1u);
  EXPECT_EQ(ioapics[0].bytes[1], 3) << "first APIC ID after the CPUs";
  EXPECT_EQ(ioapics[0].bytes[2], 0x11) << "version";
  EXPECT_EQ(ioapics[0].bytes[3], 1) << "enabled";
  EXPECT_EQ(At<uint32_t>(ioapics[0].bytes, 4), x86_64::kIoapicStart);
  auto buses = OfType(table, 1);
  ASSERT_EQ(buses.size(), 1u);
  EXPECT_EQ(std::string(buses[0].bytes.begin() + 2, buses[0].bytes.end()), "ISA   ");
}

TEST(MpTableTest, RoutesIsaIrqsWithThePitOnPin2AndVirtioPinsAbove) {
  GuestMemory mem = LowMemory();
  ASSERT_TRUE(WriteMpTable(mem, 1).ok());
  auto routes = OfType(ReadConfigTable(mem), 3);
  std::vector<int> pin_of_irq(24, -1);
  for (const Entry& e : routes) {
    EXPECT_EQ(e.bytes[1], 0) << "INT";
    EXPECT_EQ(e.bytes[4], 0) << "ISA bus";
    EXPECT_EQ(e.bytes[6], 1) << "the IOAPIC's ID";
    ASSERT_LT(e.bytes[5], 24);
    EXPECT_EQ(pin_of_irq[e.bytes[5]], -1) << "IRQ " << int{e.bytes[5]} << " listed twice";
    pin_of_irq[e.bytes[5]] = e.bytes[7];
  }
  EXPECT_EQ(pin_of_irq[0], 2) << "PIT";
  EXPECT_EQ(pin_of_irq[2], -1) << "cascade has no route";
  EXPECT_EQ(pin_of_irq[4], 4) << "COM1";
  for (int irq : {1, 3, 5, 8, 12, 14, 15, 16, 20, 23}) EXPECT_EQ(pin_of_irq[irq], irq);
}

TEST(MpTableTest, LocalInterruptsAreExtIntOnLint0AndNmiOnLint1) {
  GuestMemory mem = LowMemory();
  ASSERT_TRUE(WriteMpTable(mem, 2).ok());
  auto locals = OfType(ReadConfigTable(mem), 4);
  ASSERT_EQ(locals.size(), 2u);
  EXPECT_EQ(locals[0].bytes[1], 3) << "ExtINT";
  EXPECT_EQ(locals[0].bytes[7], 0) << "LINT0";
  EXPECT_EQ(locals[1].bytes[1], 1) << "NMI";
  EXPECT_EQ(locals[1].bytes[7], 1) << "LINT1";
  EXPECT_EQ(locals[1].bytes[6], 0xff) << "every LAPIC";
}

TEST(MpTableTest, MaximumCpuCountFitsBelowTheVgaHole) {
  EXPECT_EQ(kMpTableMaxCpus, 37u);
  EXPECT_LE(kEbdaStart + MpTableSize(kMpTableMaxCpus), kLowRamEnd);
  EXPECT_GT(kEbdaStart + MpTableSize(kMpTableMaxCpus + 1), kLowRamEnd);
  GuestMemory mem = LowMemory();
  ASSERT_TRUE(WriteMpTable(mem, kMpTableMaxCpus).ok());
  EXPECT_EQ(OfType(ReadConfigTable(mem), 0).size(), kMpTableMaxCpus);
}

TEST(MpTableTest, TooManyCpusFailsNamingTheMaximum) {
  GuestMemory mem = LowMemory();
  absl::Status status = WriteMpTable(mem, kMpTableMaxCpus + 1);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("at most 37"), absl::string_view::npos) << status;
  EXPECT_EQ(ScanForFloatingPointer(mem, kEbdaStart, 0x400), std::nullopt) << "nothing written";
  EXPECT_EQ(WriteMpTable(mem, 0).code(), absl::StatusCode::kInvalidArgument);
}

TEST(MpTableTest, FailsWhenTheEbdaIsNotRam) {
  RamRange ram[] = {{GuestAddress(kMiB), kMiB}};
  auto mem = GuestMemory::Create(ram);
  ASSERT_TRUE(mem.ok());
  absl::Status status = WriteMpTable(*mem, 1);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("MP table"), absl::string_view::npos) << status;
}

}  // namespace
}  // namespace vmm::firmware
