// DSDT (ACPI 6.5 section 5.2.11.1): the AML namespace Linux enumerates.
//
//   \_S5_                 SLP_TYP for soft-off (devices/legacy/acpi_pm.h)
//   \_SB_.C000 ...        one ACPI0007 processor device per vCPU (_UID =
//                         the MADT processor UID)
//   \_SB_.PCI0            PCIe host bridge: _CRS windows, _PRT for INTx
//   \_SB_.MBRD            PNP0C02: reserves the ECAM window (Linux refuses
//                         MMCONFIG it cannot find reserved) and the ACPI
//                         power-management ports
//   \_SB_.VR00 ...        LNRO0005 per populated virtio-mmio slot
//   \_SB_.COM1/PS2K/RTC_/PEVT  legacy devices, when present
//   \_SB_.PWRB, \_SB_.GED0      the power button (PNP0C0C) and the Generic
//                         Event Device (ACPI0013) whose interrupt on
//                         kPowerButtonGsi notifies it (0x80: pressed), as
//                         Cloud Hypervisor and QEMU's microvm do
#include <string>

#include "absl/strings/str_format.h"
#include "arch/x86_64/layout.h"
#include "firmware/acpi/aml.h"
#include "firmware/acpi/sdt.h"
#include "firmware/acpi/tables.h"

namespace vmm::firmware::acpi {
namespace {

namespace x = x86_64;
using aml::Bytes;

// Revision 2: integers are 64 bits wide.
constexpr uint8_t kDsdtRevision = 2;
constexpr uint64_t kS5SleepType = 5;  // AcpiPm::kDefaultS5SleepType
constexpr uint32_t kPciSlots = 32;
constexpr uint32_t kIntxPins = 4;  // INTA..INTD

Bytes Hid(absl::string_view eisa_id) { return aml::Name("_HID", aml::EisaId(eisa_id)); }
Bytes HidString(absl::string_view id) { return aml::Name("_HID", aml::String(id)); }
Bytes Uid(uint64_t uid) { return aml::Name("_UID", aml::Integer(uid)); }
Bytes Crs(std::initializer_list<Bytes> descriptors) {
  return aml::Name("_CRS", aml::ResourceTemplate(descriptors));
}

Bytes Processors(uint32_t cpus) {
  Bytes out;
  for (uint32_t cpu = 0; cpu < cpus; ++cpu) {
    Bytes dev = aml::Device(absl::StrFormat("C%03X", cpu), {HidString("ACPI0007"), Uid(cpu)});
    out.insert(out.end(), dev.begin(), dev.end());
  }
  return out;
}

// Device d's pin p (0 = INTA) reaches kPciIntxGsis[(d + p) % 4]: INTA of
// device d is kPciIntxGsis[d % 4] as the PCI bus raises it, the other pins
// follow the usual swizzle. Source Zero: a static GSI, no link device.
Bytes PciRoutingTable() {
  std::vector<Bytes> entries;
  for (uint32_t slot = 0; slot < kPciSlots; ++slot) {
    for (uint32_t pin = 0; pin < kIntxPins; ++pin) {
      entries.push_back(aml::Package({aml::Integer((uint64_t{slot} << 16) | 0xffff),
                                      aml::Integer(pin), aml::ZeroOp(),
                                      aml::Integer(x::kPciIntxGsis[(slot + pin) % 4])}));
    }
  }
  return aml::Name("_PRT", aml::Package(entries));
}

Bytes PciHostBridge(const AcpiPlatform& platform) {
  const uint64_t mmio64 = x::PciMmio64Start(platform.ram_end);
  return aml::Device(
      "PCI0",
      {
          Hid("PNP0A08"),  // PCI Express root bridge
          aml::Name("_CID", aml::EisaId("PNP0A03")),
          aml::Name("_SEG", aml::ZeroOp()),
          aml::Name("_BBN", aml::ZeroOp()),
          Uid(0),
          Crs({
              aml::WordBusNumber(0, kEcamLastBus),  // what the MCFG covers
              aml::Io(x::kPciConfigAddressPort, x::kPciConfigAddressPort, 1, 8),
              aml::WordIo(0x0000, x::kPciConfigAddressPort - 1),
              aml::WordIo(x::kPciConfigAddressPort + 8, 0xffff),
              aml::DWordMemory(aml::Cacheable::kNonCacheable,
                               static_cast<uint32_t>(x::kPciMmio32Start),
                               static_cast<uint32_t>(x::kPciMmio32Start + x::kPciMmio32Size - 1)),
              aml::QWordMemory(aml::Cacheable::kCacheable, mmio64, mmio64 + x::kPciMmio64Size - 1),
          }),
          PciRoutingTable(),
      });
}

Bytes MotherboardResources(const AcpiPlatform& platform) {
  std::vector<Bytes> resources;
  if (platform.pci) {
    resources.push_back(aml::Memory32Fixed(true, static_cast<uint32_t>(x::kEcamStart),
                                           static_cast<uint32_t>(x::kEcamSize)));
  }
  resources.push_back(aml::Io(x::kAcpiSleepControlPort, x::kAcpiSleepControlPort, 1, 3));
  static_assert(x::kAcpiSleepStatusPort == x::kAcpiSleepControlPort + 1 &&
                x::kAcpiResetPort == x::kAcpiSleepControlPort + 2);
  return aml::Device("MBRD", {Hid("PNP0C02"), Uid(0),
                              aml::Name("_CRS", aml::ResourceTemplate(resources))});
}

// Edge-triggered, active high: the transport's interrupt reaches KVM as an
// irqfd pulse (as Firecracker describes its virtio-mmio devices).
Bytes VirtioMmioDevice(uint32_t slot) {
  const uint64_t base = x::kVirtioMmioStart + uint64_t{slot} * x::kVirtioMmioSlotSize;
  return aml::Device(absl::StrFormat("VR%02X", slot),
                     {HidString("LNRO0005"), Uid(slot),
                      Crs({aml::Memory32Fixed(true, static_cast<uint32_t>(base),
                                              static_cast<uint32_t>(x::kVirtioMmioSlotSize)),
                           aml::Interrupt(aml::Trigger::kEdge, aml::Polarity::kActiveHigh, false,
                                          x::kVirtioMmioFirstGsi + slot)})});
}

Bytes LegacyDevices(const AcpiPlatform& platform) {
  std::vector<Bytes> devices;
  if (platform.serial) {
    devices.push_back(aml::Device(
        "COM1", {Hid("PNP0501"), Uid(1),
                 Crs({aml::Io(x::kSerialPort, x::kSerialPort, 1, x::kSerialPortCount),
                      aml::IrqNoFlags(x::kSerialIrq)})}));
  }
  if (platform.i8042) {
    devices.push_back(aml::Device(
        "PS2K", {Hid("PNP0303"),
                 Crs({aml::Io(x::kI8042DataPort, x::kI8042DataPort, 1, 1),
                      aml::Io(x::kI8042CommandPort, x::kI8042CommandPort, 1, 1),
                      aml::IrqNoFlags(1)})}));
  }
  if (platform.rtc) {
    devices.push_back(aml::Device(
        "RTC_", {Hid("PNP0B00"), Crs({aml::Io(x::kRtcPort, x::kRtcPort, 1, 2),
                                      aml::IrqNoFlags(static_cast<uint8_t>(x::kRtcIrq))})}));
  }
  if (platform.pvpanic) {
    // QEMU's pvpanic ISA device: Linux's pvpanic driver binds to QEMU0001.
    devices.push_back(aml::Device(
        "PEVT", {HidString("QEMU0001"), Crs({aml::Io(x::kPvpanicPort, x::kPvpanicPort, 1, 1)})}));
  }
  if (platform.power_button) {
    devices.push_back(aml::Device("PWRB", {Hid("PNP0C0C"), Uid(0)}));
    // The OS calls _EVT with the GSI that fired (ACPI 6.5 section 5.6.9).
    devices.push_back(aml::Device(
        "GED0",
        {HidString("ACPI0013"), Uid(0),
         Crs({aml::Interrupt(aml::Trigger::kEdge, aml::Polarity::kActiveHigh, /*shared=*/false,
                             x::kPowerButtonGsi)}),
         aml::Method("_EVT", 1,
                     {aml::If(aml::LEqual(aml::Arg(0), aml::Integer(x::kPowerButtonGsi)),
                              {aml::Notify("\\_SB_.PWRB", 0x80)})})}));
  }
  Bytes out;
  for (const Bytes& d : devices) out.insert(out.end(), d.begin(), d.end());
  return out;
}

}  // namespace

std::vector<uint8_t> BuildDsdt(const AcpiPlatform& platform) {
  std::vector<Bytes> sb = {Processors(platform.cpus)};
  if (platform.pci) sb.push_back(PciHostBridge(platform));
  sb.push_back(MotherboardResources(platform));
  for (uint32_t slot : platform.virtio_mmio_slots) sb.push_back(VirtioMmioDevice(slot));
  sb.push_back(LegacyDevices(platform));

  SdtBuilder dsdt("DSDT", kDsdtRevision);
  // SLP_TYPa 5; SLP_TYPb and the two reserved values 0.
  dsdt.AppendBytes(aml::Name("\\_S5_", aml::Package({aml::Integer(kS5SleepType), aml::ZeroOp(),
                                                 aml::ZeroOp(), aml::ZeroOp()})));
  dsdt.AppendBytes(aml::Scope("\\_SB_", sb));
  return std::move(dsdt).Finish();
}

}  // namespace vmm::firmware::acpi
