// The MSR values a vCPU starts with (KVM_SET_MSRS), the same for every vCPU.
#ifndef VMM_ARCH_X86_64_MSRS_H_
#define VMM_ARCH_X86_64_MSRS_H_

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

namespace vmm::x86_64 {

inline constexpr uint32_t kMsrIa32SysenterCs = 0x174;
inline constexpr uint32_t kMsrIa32SysenterEsp = 0x175;
inline constexpr uint32_t kMsrIa32SysenterEip = 0x176;
inline constexpr uint32_t kMsrIa32MiscEnable = 0x1a0;
inline constexpr uint32_t kMsrMtrrDefType = 0x2ff;
inline constexpr uint32_t kMsrStar = 0xc000'0081;
inline constexpr uint32_t kMsrLstar = 0xc000'0082;
inline constexpr uint32_t kMsrCstar = 0xc000'0083;
inline constexpr uint32_t kMsrSyscallMask = 0xc000'0084;
inline constexpr uint32_t kMsrKernelGsBase = 0xc000'0102;

inline constexpr uint64_t kMiscEnableFastStrings = 1ull << 0;
inline constexpr uint64_t kMtrrDefTypeEnable = 1ull << 11;
inline constexpr uint64_t kMtrrTypeWriteBack = 6;

// SYSENTER/SYSCALL MSRs zeroed, fast strings on, and MTRRs enabled with
// write-back as the default type (no variable ranges), so all of guest RAM is
// cacheable rather than the UC that an all-zero MTRRdefType means.
std::vector<kvm_msr_entry> BootMsrs();

}  // namespace vmm::x86_64

#endif  // VMM_ARCH_X86_64_MSRS_H_
