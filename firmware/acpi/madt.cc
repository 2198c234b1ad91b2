// MADT (ACPI 6.5 section 5.2.12).
#include "arch/x86_64/layout.h"
#include "firmware/acpi/sdt.h"
#include "firmware/acpi/tables.h"

namespace vmm::firmware::acpi {
namespace {

// Revision 5 (ACPI 6.3+): a Local APIC's "online capable" bit means what
// it says; every CPU listed here is enabled anyway.
constexpr uint8_t kMadtRevision = 5;
constexpr uint32_t kPcatCompat = 1;  // dual 8259s present (KVM's in-kernel PIC)

constexpr uint8_t kTypeLocalApic = 0;
constexpr uint8_t kTypeIoApic = 1;
constexpr uint8_t kTypeInterruptOverride = 2;
constexpr uint8_t kTypeLocalApicNmi = 4;

constexpr uint32_t kLocalApicEnabled = 1;
constexpr uint8_t kAllProcessors = 0xff;
constexpr uint8_t kBusIsa = 0;
// MPS INTI flags: polarity bits 1:0, trigger mode bits 3:2.
constexpr uint16_t kConformsToBus = 0;
constexpr uint16_t kActiveLow = 3;
constexpr uint16_t kLevel = 3 << 2;

struct [[gnu::packed]] LocalApic {
  uint8_t type, length, processor_uid, apic_id;
  uint32_t flags;
};
struct [[gnu::packed]] IoApic {
  uint8_t type, length, ioapic_id, reserved;
  uint32_t address;
  uint32_t gsi_base;
};
struct [[gnu::packed]] InterruptOverride {
  uint8_t type, length, bus, source;
  uint32_t gsi;
  uint16_t flags;
};
struct [[gnu::packed]] LocalApicNmi {
  uint8_t type, length, processor_uid;
  uint16_t flags;
  uint8_t lint;
};
static_assert(sizeof(LocalApic) == 8 && sizeof(IoApic) == 12);
static_assert(sizeof(InterruptOverride) == 10 && sizeof(LocalApicNmi) == 6);

}  // namespace

std::vector<uint8_t> BuildMadt(const AcpiPlatform& platform) {
  SdtBuilder madt("APIC", kMadtRevision);
  madt.Append(static_cast<uint32_t>(x86_64::kLapicStart));
  madt.Append(kPcatCompat);
  // CPU i: ACPI processor UID i (the DSDT's C### devices), APIC ID i.
  for (uint32_t cpu = 0; cpu < platform.cpus; ++cpu) {
    madt.Append(LocalApic{kTypeLocalApic, sizeof(LocalApic), static_cast<uint8_t>(cpu),
                          static_cast<uint8_t>(cpu), kLocalApicEnabled});
  }
  madt.Append(IoApic{kTypeIoApic, sizeof(IoApic), static_cast<uint8_t>(platform.cpus), 0,
                     static_cast<uint32_t>(x86_64::kIoapicStart), 0});
  // The PIT's IRQ 0 reaches pin 2 (layout.h); edge, active high as on ISA.
  madt.Append(InterruptOverride{kTypeInterruptOverride, sizeof(InterruptOverride), kBusIsa, 0,
                                x86_64::kPitIoapicPin, kConformsToBus});
  // PCI INTx lines share ISA IRQ numbers but are level-triggered and active
  // low; say so, or Linux programs those pins edge/high before any PCI
  // driver asks (QEMU emits the same overrides for its PCI link IRQs).
  if (platform.pci) {
    for (uint32_t gsi : x86_64::kPciIntxGsis) {
      madt.Append(InterruptOverride{kTypeInterruptOverride, sizeof(InterruptOverride), kBusIsa,
                                    static_cast<uint8_t>(gsi), gsi,
                                    static_cast<uint16_t>(kLevel | kActiveLow)});
    }
  }
  // NMI arrives on LINT1 of every CPU (flags as QEMU: conforming).
  madt.Append(LocalApicNmi{kTypeLocalApicNmi, sizeof(LocalApicNmi), kAllProcessors,
                           kConformsToBus, 1});
  return std::move(madt).Finish();
}

}  // namespace vmm::firmware::acpi
