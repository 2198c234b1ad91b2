// What a PC's firmware keeps at the reset vector (real mode F000:FFF0,
// physical 0xFFFF0): code that resets the machine.
//
// Why a VMM without a BIOS needs it: on a hardware-reduced ACPI platform
// (vmm's FADT) Linux picks reboot=efi by default (efi_reboot_required()),
// and without EFI runtime services it falls through to BOOT_BIOS:
// machine_real_restart() drops to real mode and far-jumps to F000:FFF0.
// Without this stub a `reboot` in such a guest spins in zeroed memory until
// --timeout (found by the nested lane's Linux suite). The stub pulses the
// reset line through the i8042 (command 0xFE to port 0x64), as Linux's own
// reboot=k does, and halts; vmm treats that as the guest's reset. It lies
// in the e820-reserved [kEbdaStart, 1 MiB), so the guest leaves it alone.
#ifndef VMM_FIRMWARE_RESET_VECTOR_H_
#define VMM_FIRMWARE_RESET_VECTOR_H_

#include <array>
#include <cstdint>

#include "absl/status/status.h"
#include "base/guest_memory.h"

namespace vmm::firmware {

// mov al, 0xFE; out 0x64, al; cli; hlt; jmp short (back to cli)
inline constexpr std::array<uint8_t, 8> kResetVectorCode = {0xb0, 0xfe, 0xe6, 0x64,
                                                            0xfa, 0xf4, 0xeb, 0xfc};

// Writes kResetVectorCode at x86_64::kResetVectorStart.
absl::Status WriteResetVector(const GuestMemory& memory);

}  // namespace vmm::firmware

#endif  // VMM_FIRMWARE_RESET_VECTOR_H_
