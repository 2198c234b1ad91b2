#include "firmware/mp_table.h"

#include <cstddef>
#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "base/status_macros.h"

namespace vmm::firmware {
namespace {

using x86_64::kEbdaStart;
using x86_64::kIoapicStart;
using x86_64::kIoapicPins;
using x86_64::kLapicStart;

// Entry types (MP spec 1.4, table 4-3).
constexpr uint8_t kEntryProcessor = 0;
constexpr uint8_t kEntryBus = 1;
constexpr uint8_t kEntryIoapic = 2;
constexpr uint8_t kEntryIoInterrupt = 3;
constexpr uint8_t kEntryLocalInterrupt = 4;

// Interrupt types (table 4-8).
constexpr uint8_t kIntTypeInt = 0;
constexpr uint8_t kIntTypeNmi = 1;
constexpr uint8_t kIntTypeExtInt = 3;
// Polarity and trigger "conform to the bus": edge, active high on ISA.
constexpr uint16_t kIntFlagsConformBus = 0;

constexpr uint8_t kCpuEnabled = 1 << 0;
constexpr uint8_t kCpuBootstrap = 1 << 1;
constexpr uint8_t kIoapicEnabled = 1 << 0;
constexpr uint8_t kAllLocalApics = 0xff;

// KVM's in-kernel LAPIC and IOAPIC versions.
constexpr uint8_t kLapicVersion = 0x14;
constexpr uint8_t kIoapicVersion = 0x11;
// Processor signature and features (family 6; FPU, APIC): informational,
// Linux reads CPUID itself.
constexpr uint32_t kCpuSignature = 0x600;
constexpr uint32_t kCpuFeatures = (1u << 0) | (1u << 9);
constexpr uint8_t kIsaBusId = 0;
constexpr uint8_t kSpecRevision = 4;  // 1.4

struct [[gnu::packed]] FloatingPointer {
  char signature[4];
  uint32_t config_table;
  uint8_t length;  // in 16-byte units
  uint8_t spec_revision;
  uint8_t checksum;
  uint8_t features[5];  // all 0: a configuration table is present, virtual wire mode
};

struct [[gnu::packed]] ConfigHeader {
  char signature[4];
  uint16_t base_table_length;
  uint8_t spec_revision;
  uint8_t checksum;
  char oem_id[8];
  char product_id[12];
  uint32_t oem_table;
  uint16_t oem_table_size;
  uint16_t entry_count;
  uint32_t lapic_address;
  uint16_t extended_table_length;
  uint8_t extended_table_checksum;
  uint8_t reserved;
};

struct [[gnu::packed]] ProcessorEntry {
  uint8_t type;
  uint8_t lapic_id;
  uint8_t lapic_version;
  uint8_t flags;
  uint32_t signature;
  uint32_t features;
  uint8_t reserved[8];
};

struct [[gnu::packed]] BusEntry {
  uint8_t type;
  uint8_t bus_id;
  char bus_type[6];
};

struct [[gnu::packed]] IoapicEntry {
  uint8_t type;
  uint8_t id;
  uint8_t version;
  uint8_t flags;
  uint32_t address;
};

// I/O and local interrupt assignment entries share a layout; the last two
// fields name an IOAPIC and its pin, or a LAPIC and its LINT pin.
struct [[gnu::packed]] InterruptEntry {
  uint8_t type;
  uint8_t interrupt_type;
  uint16_t flags;
  uint8_t source_bus;
  uint8_t source_irq;
  uint8_t dest_apic;
  uint8_t dest_pin;
};

static_assert(sizeof(FloatingPointer) == kMpFloatingPointerSize);
static_assert(sizeof(ConfigHeader) == kMpConfigHeaderSize);
static_assert(sizeof(ProcessorEntry) == kMpProcessorEntrySize);
static_assert(sizeof(BusEntry) == kMpEntrySize);
static_assert(sizeof(IoapicEntry) == kMpEntrySize);
static_assert(sizeof(InterruptEntry) == kMpEntrySize);
static_assert(kEbdaStart % 16 == 0, "the MP floating pointer must be 16-byte aligned");
static_assert(MpTableSize(1) <= x86_64::kLowRamEnd - kEbdaStart);

// Appends structures to a byte buffer.
class TableWriter {
 public:
  template <typename T>
  void Append(const T& value) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(&value);
    buffer_.insert(buffer_.end(), bytes, bytes + sizeof(T));
  }
  std::vector<uint8_t>& buffer() { return buffer_; }

 private:
  std::vector<uint8_t> buffer_;
};

// The value that makes `bytes` sum to zero (mod 256) when stored in a
// checksum byte that is currently zero.
uint8_t Checksum(const uint8_t* bytes, size_t size) {
  uint8_t sum = 0;
  for (size_t i = 0; i < size; ++i) sum = static_cast<uint8_t>(sum + bytes[i]);
  return static_cast<uint8_t>(-sum);
}

InterruptEntry IoInterrupt(uint8_t source_irq, uint8_t ioapic_id, uint8_t pin) {
  return {kEntryIoInterrupt, kIntTypeInt, kIntFlagsConformBus, kIsaBusId, source_irq, ioapic_id, pin};
}

}  // namespace

absl::Status WriteMpTable(const GuestMemory& memory, uint32_t cpu_count) {
  if (cpu_count == 0 || cpu_count > kMpTableMaxCpus) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "MP table: %u CPUs requested, at most %u fit below 0x%x", cpu_count, kMpTableMaxCpus,
        x86_64::kLowRamEnd));
  }
  const uint8_t ioapic_id = static_cast<uint8_t>(cpu_count);
  const uint64_t config_table = kEbdaStart + kMpFloatingPointerSize;

  TableWriter w;
  // Floating pointer; its checksum is filled in below.
  FloatingPointer fp = {};
  std::memcpy(fp.signature, "_MP_", 4);
  fp.config_table = static_cast<uint32_t>(config_table);
  fp.length = 1;
  fp.spec_revision = kSpecRevision;
  w.Append(fp);

  // Configuration table header; length, count and checksum filled in below.
  ConfigHeader header = {};
  std::memcpy(header.signature, "PCMP", 4);
  header.spec_revision = kSpecRevision;
  std::memcpy(header.oem_id, "VMM     ", 8);
  std::memcpy(header.product_id, "VMM         ", 12);
  header.lapic_address = static_cast<uint32_t>(kLapicStart);
  w.Append(header);

  uint16_t entries = 0;
  for (uint32_t cpu = 0; cpu < cpu_count; ++cpu) {
    ProcessorEntry p = {};
    p.type = kEntryProcessor;
    p.lapic_id = static_cast<uint8_t>(cpu);
    p.lapic_version = kLapicVersion;
    p.flags = kCpuEnabled | (cpu == 0 ? kCpuBootstrap : 0);
    p.signature = kCpuSignature;
    p.features = kCpuFeatures;
    w.Append(p);
    ++entries;
  }

  BusEntry bus = {kEntryBus, kIsaBusId, {}};
  std::memcpy(bus.bus_type, "ISA   ", 6);
  w.Append(bus);
  ++entries;

  w.Append(IoapicEntry{kEntryIoapic, ioapic_id, kIoapicVersion, kIoapicEnabled,
                       static_cast<uint32_t>(kIoapicStart)});
  ++entries;

  for (uint8_t irq = 0; irq < kIoapicPins; ++irq) {
    if (irq == 2) continue;  // the 8259 cascade: no device behind it
    w.Append(IoInterrupt(irq, ioapic_id, irq == 0 ? kMpIsaIrq0IoapicPin : irq));
    ++entries;
  }

  w.Append(InterruptEntry{kEntryLocalInterrupt, kIntTypeExtInt, kIntFlagsConformBus, kIsaBusId, 0,
                          kAllLocalApics, 0});
  w.Append(InterruptEntry{kEntryLocalInterrupt, kIntTypeNmi, kIntFlagsConformBus, kIsaBusId, 0,
                          kAllLocalApics, 1});
  entries += 2;

  std::vector<uint8_t>& bytes = w.buffer();
  if (bytes.size() != MpTableSize(cpu_count)) {
    return absl::InternalError("MP table: size does not match MpTableSize");
  }
  const uint16_t config_length = static_cast<uint16_t>(bytes.size() - kMpFloatingPointerSize);
  uint8_t* config = bytes.data() + kMpFloatingPointerSize;
  std::memcpy(config + offsetof(ConfigHeader, base_table_length), &config_length, 2);
  std::memcpy(config + offsetof(ConfigHeader, entry_count), &entries, 2);
  config[offsetof(ConfigHeader, checksum)] = Checksum(config, config_length);
  bytes[offsetof(FloatingPointer, checksum)] = Checksum(bytes.data(), kMpFloatingPointerSize);

  return Annotate(memory.WriteBytes(GuestAddress(kEbdaStart), bytes), "writing the MP table");
}

}  // namespace vmm::firmware
