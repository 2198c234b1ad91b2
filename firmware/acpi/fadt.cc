// FADT (ACPI 6.5 section 5.2.9), hardware-reduced (section 4.1): Linux then
// needs no PM1 event/control blocks, PM timer, GPEs or SCI. It powers off
// by writing SLP_TYP (from \_S5) | SLP_EN to SLEEP_CONTROL_REG and reboots
// by writing RESET_VALUE to RESET_REG.
#include <cstddef>

#include "arch/x86_64/layout.h"
#include "firmware/acpi/sdt.h"
#include "firmware/acpi/tables.h"

namespace vmm::firmware::acpi {
namespace {

constexpr uint8_t kFadtRevision = 6;
constexpr uint8_t kFadtMinorRevision = 0;  // ACPI 6.0 layout: 276 bytes
constexpr uint8_t kPmProfileUnspecified = 0;

// Everything after the common header.
struct [[gnu::packed]] FadtBody {
  uint32_t firmware_ctrl;  // FACS: optional when hardware-reduced
  uint32_t dsdt;
  uint8_t reserved0;
  uint8_t preferred_pm_profile;
  uint16_t sci_int;
  uint32_t smi_cmd;
  uint8_t acpi_enable, acpi_disable, s4bios_req, pstate_cnt;
  uint32_t pm1a_evt_blk, pm1b_evt_blk, pm1a_cnt_blk, pm1b_cnt_blk;
  uint32_t pm2_cnt_blk, pm_tmr_blk, gpe0_blk, gpe1_blk;
  uint8_t pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len;
  uint8_t gpe0_blk_len, gpe1_blk_len, gpe1_base, cst_cnt;
  uint16_t p_lvl2_lat, p_lvl3_lat, flush_size, flush_stride;
  uint8_t duty_offset, duty_width, day_alrm, mon_alrm, century;
  uint16_t iapc_boot_arch;
  uint8_t reserved1;
  uint32_t flags;
  GenericAddress reset_reg;
  uint8_t reset_value;
  uint16_t arm_boot_arch;
  uint8_t minor_version;
  uint64_t x_firmware_ctrl;
  uint64_t x_dsdt;
  GenericAddress x_pm1a_evt_blk, x_pm1b_evt_blk, x_pm1a_cnt_blk, x_pm1b_cnt_blk;
  GenericAddress x_pm2_cnt_blk, x_pm_tmr_blk, x_gpe0_blk, x_gpe1_blk;
  GenericAddress sleep_control_reg, sleep_status_reg;
  uint64_t hypervisor_vendor_identity;
};
static_assert(kSdtHeaderSize + sizeof(FadtBody) == kFadtSize);
// Table offsets from the specification, less the header.
static_assert(offsetof(FadtBody, flags) == 112 - kSdtHeaderSize);
static_assert(offsetof(FadtBody, reset_reg) == 116 - kSdtHeaderSize);
static_assert(offsetof(FadtBody, x_dsdt) == 140 - kSdtHeaderSize);
static_assert(offsetof(FadtBody, sleep_control_reg) == 244 - kSdtHeaderSize);

}  // namespace

std::vector<uint8_t> BuildFadt(const AcpiPlatform& platform, uint64_t dsdt_address) {
  FadtBody fadt = {};
  fadt.dsdt = static_cast<uint32_t>(dsdt_address);  // both copies, as Linux compares them
  fadt.x_dsdt = dsdt_address;
  fadt.preferred_pm_profile = kPmProfileUnspecified;
  fadt.iapc_boot_arch = kBootArchNoVga;
  if (platform.serial || platform.i8042 || platform.rtc || platform.pvpanic) {
    fadt.iapc_boot_arch |= kBootArchLegacyDevices;
  }
  if (platform.i8042) fadt.iapc_boot_arch |= kBootArch8042;
  if (!platform.rtc) fadt.iapc_boot_arch |= kBootArchNoCmosRtc;
  fadt.flags = kFadtFlagHwReducedAcpi | kFadtFlagResetRegSup;
  fadt.reset_reg = IoByteRegister(x86_64::kAcpiResetPort);
  fadt.reset_value = x86_64::kAcpiResetValue;
  fadt.minor_version = kFadtMinorRevision;
  fadt.sleep_control_reg = IoByteRegister(x86_64::kAcpiSleepControlPort);
  fadt.sleep_status_reg = IoByteRegister(x86_64::kAcpiSleepStatusPort);
  SdtBuilder builder("FACP", kFadtRevision);
  builder.Append(fadt);
  return std::move(builder).Finish();
}

}  // namespace vmm::firmware::acpi
