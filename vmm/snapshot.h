// Snapshots of a paused machine (issue 15), the part KVM holds: each vCPU's
// registers and in-kernel state (LAPIC, pending events, MSRs, XSAVE), the
// in-kernel interrupt controllers and PIT, the guest clock, and guest RAM.
// Sections of the state file (base/state_file.h):
//   "machine"              memory size and vCPU count, checked at restore
//   "clock"                kvmclock at the pause
//   "irqchip/0".."/2"      PIC master, PIC slave, IOAPIC
//   "pit"                  the PIT, when the VM has one (--acpi off)
//   "vcpu<N>"              vCPU N
//   "device/com1"          the 16550 UART (devices/legacy/serial.h)
//   "device/i8042", "device/rtc"   the keyboard controller and CMOS clock
//   "virtio/<transport>/<address>"  each virtio device: its kind, PCI config
//                          space, MSI-X table, transport registers, and —
//                          while the guest uses it — its queues' positions
//                          and own state (DeviceManager::SaveState)
// Guest RAM goes to its own file, each region at its guest physical address
// as the file offset, pages of zeros left as holes (a sparse file).
//
// A restore builds the VM from the same configuration (its disks and taps
// re-opened by the paths and names given), then loads these sections into
// it: memory, KVM's state, the vCPUs, and the devices last (what they raise
// on restore lands in the restored interrupt controllers). Devices whose
// state lives outside the VMM (vhost-net, vhost-vsock, vhost-user) are
// refused by name while the guest uses them.
#ifndef VMM_VMM_SNAPSHOT_H_
#define VMM_VMM_SNAPSHOT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/guest_memory.h"
#include "base/state_file.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/kvm/kvm_vcpu.h"
#include "vmm/kvm/kvm_vm.h"

namespace vmm::snapshot {

inline constexpr char kStateFile[] = "state";
inline constexpr char kMemoryFile[] = "memory";
// A state file larger than this is not one of ours (vCPU state is ~10 KiB
// each).
inline constexpr uint64_t kMaxStateFileBytes = 64ull << 20;

// What the snapshot was taken of; a restore must build the same machine.
struct MachineShape {
  uint64_t memory_bytes = 0;
  uint32_t cpus = 0;
};
absl::Status SaveShape(const MachineShape& shape, StateFile* file);
// FailedPrecondition, in words, when `want` differs from the snapshot's.
absl::Status CheckShape(const StateFile& file, const MachineShape& want);

// The VM-wide state KVM holds; `clock` is kvmclock at the pause.
absl::Status SaveVm(const KvmVm& vm, uint64_t clock, StateFile* file);
absl::Status RestoreVm(KvmVm& vm, const StateFile& file);

// vCPU `vcpu.id()`'s state, every MSR in `msrs` that KVM reads.
absl::Status SaveVcpu(const KvmVcpu& vcpu, absl::Span<const uint32_t> msrs, StateFile* file);
// Restores it; MSRs KVM refuses to set are skipped and counted in
// *refused_msrs (may be null).
absl::Status RestoreVcpu(KvmVcpu& vcpu, const StateFile& file, int* refused_msrs);

// Guest RAM to `path` (created 0600, sparse) and back: mapped privately
// (copy-on-write) over each region, or copied into memfd-backed RAM. The
// file must not change while a VM restored from it runs.
absl::Status WriteMemoryFile(const GuestMemory& memory, const std::string& path);
absl::Status ReadMemoryFile(const GuestMemory& memory, const std::string& path);

// The state file to `path` (written to a temporary name, then renamed) and
// back (bounded by kMaxStateFileBytes, then parsed).
absl::Status WriteStateFile(const StateFile& file, const std::string& path);
absl::StatusOr<StateFile> ReadStateFile(const std::string& path);

}  // namespace vmm::snapshot

#endif  // VMM_VMM_SNAPSHOT_H_
