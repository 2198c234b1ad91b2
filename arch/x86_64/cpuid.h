// Shapes the CPUID table KVM supports (KVM_GET_SUPPORTED_CPUID) into the one
// a given vCPU gets (KVM_SET_CPUID2).
//
// Topology: one socket, one die, each vCPU its own core with one thread, and
// vCPU i has APIC ID = x2APIC ID = i (the VMM must create vCPU i with KVM id
// i, since KVM derives the LAPIC's ID from that, not from CPUID).
//
// What changes, leaf by leaf (everything else passes through unchanged, in
// input order; leaves synthesized from nothing are appended at the end):
//   0x1         EBX[31:24] APIC ID, EBX[23:16] logical processors in the
//               package (N); EDX.HTT iff N > 1; ECX.HYPERVISOR set;
//               ECX.MONITOR cleared (KVM advertises it only for setups that
//               let the guest MWAIT, which we do not); ECX.CX16 cleared on
//               request (PVM hosts cannot emulate CMPXCHG16B);
//               ECX.TSC_DEADLINE set on request (KVM_GET_SUPPORTED_CPUID
//               never reports it: it depends on KVM_CAP_TSC_DEADLINE_TIMER).
//   0x4         for each cache: EAX[31:26] cores in package - 1 = N-1,
//               EAX[25:14] threads sharing - 1: 0 for L1/L2, N-1 for L3+.
//   0xB, 0x1F   replaced: subleaf 0 SMT (1 thread, shift 0), subleaf 1 core
//               (N processors, shift = bits for N-1), subleaf 2 invalid; EDX
//               = x2APIC ID in each. 0xB is synthesized when missing but the
//               maximum basic leaf covers it; 0x1F only replaced if present.
//   0x40000000  "KVMKVMKVM\0\0\0", EAX = highest 0x400000xx leaf supplied
//               (KVM's feature leaf 0x40000001 itself passes through).
//   0x80000008  ECX[7:0] NC = N-1, ECX[15:12] ApicIdSize = bits for N-1.
//   0x8000001D  AMD cache topology, as for leaf 4 (EAX[25:14]).
//   0x8000001E  AMD: EAX extended APIC ID, EBX core ID = i with one thread
//               per core, ECX node 0 of 1.
// Leaves 6, 0xA (power, performance monitoring) and the rest stay as KVM
// reports them.
#ifndef VMM_ARCH_X86_64_CPUID_H_
#define VMM_ARCH_X86_64_CPUID_H_

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace vmm::x86_64 {

// xAPIC IDs are 8 bits and 0xff is the broadcast ID.
inline constexpr uint32_t kMaxCpuidVcpus = 254;

struct CpuidOptions {
  uint32_t vcpu_index = 0;  // also the vCPU's APIC ID
  uint32_t vcpu_count = 1;
  bool clear_cx16 = false;          // PVM: leaf 1 ECX bit 13
  // PVM: hide KVM's paravirtual IPIs, PV unhalt (spinlock kicks) and PV
  // sched-yield (leaf 0x40000001 EAX bits 11, 7, 13). A guest run by PVM's
  // instruction emulator loses the cross-CPU wake-ups they carry (Linux then
  // stalls in stop_machine() at its clocksource switch; tests/linux/
  // BOOT_LOG.md), while plain APIC IPIs work. kvm-clock stays.
  bool disable_kvm_pv_ipi = false;
  bool tsc_deadline_timer = false;  // KVM_CAP_TSC_DEADLINE_TIMER is present
};

// Deterministic: the same input and options give the same table. Fails only
// on bad options (no vCPUs, index out of range, too many vCPUs).
absl::StatusOr<std::vector<kvm_cpuid_entry2>> ShapeCpuid(
    absl::Span<const kvm_cpuid_entry2> supported, const CpuidOptions& options);

}  // namespace vmm::x86_64

#endif  // VMM_ARCH_X86_64_CPUID_H_
