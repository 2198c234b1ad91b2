// Machine: what the VM is — the KVM VM, guest RAM, buses and devices, the
// loaded kernel and boot information, and the configured vCPUs. Building it
// is all of Vm::Create's fallible work; running it is vm.cc's.
#ifndef VMM_VMM_MACHINE_H_
#define VMM_VMM_MACHINE_H_

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "arch/x86_64/loader/loaded_kernel.h"
#include "base/cancellation.h"
#include "base/event_loop.h"
#include "base/eventfd.h"
#include "base/guest_memory.h"
#include "base/state_file.h"
#include "devices/bus.h"
#include "vmm/device_manager.h"
#include "vmm/interrupts.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/kvm/kvm_vcpu.h"
#include "vmm/kvm/kvm_vm.h"
#include "vmm/vmm.h"

namespace vmm {

class Chardev;
class CmosRtc;
class I8042;
class Serial;

// How the machine reaches the rest of the VMM. Called from vCPU threads.
struct MachineHooks {
  // COM1's host side (may be null: output dropped, no input). It outlives
  // the machine: one chardev serves the machines of a restarting VM.
  Chardev* serial = nullptr;
  // The guest ended (debug-exit, i8042 reset, ...).
  std::function<void(ExitStatus)> on_exit;
  // A one-line notice for the user (what the VMM did on their behalf).
  std::function<void(absl::string_view)> notice;
  // Cuts Machine::Create short between its steps and in device factories'
  // waits (may be null). Used during Create only: dropped when it returns.
  const Cancellation* cancel = nullptr;
  // A device entered DEVICE_NEEDS_RESET (on the loop thread). May be empty.
  std::function<void(const DeviceInfo&)> on_device_needs_reset;
};

// How a machine starts: booting its kernel, or from a snapshot (no kernel
// is loaded, no boot tables written, no boot registers set: the snapshot's
// memory and vCPU state replace them, vmm/snapshot.h).
enum class MachineStart { kBoot, kRestore };

class Machine {
 public:
  // Validates `config` against the host, then builds and boots-prepares the
  // machine. User mistakes (missing kernel, too little memory, too many
  // vCPUs) are InvalidArgument/NotFound; host problems keep their code.
  // `loop` (which must outlive the machine) serves the devices' queue
  // notifications.
  static absl::StatusOr<std::unique_ptr<Machine>> Create(
      const VmConfig& config, MachineHooks hooks, EventLoop* loop,
      MachineStart start = MachineStart::kBoot);
  ~Machine();

  const Bus& pio_bus() const { return pio_bus_; }
  const Bus& mmio_bus() const { return mmio_bus_; }
  const GuestMemory& memory() const { return memory_; }
  const DeviceManager& devices() const { return *device_manager_; }
  DeviceManager& devices() { return *device_manager_; }
  KvmVm& vm() { return vm_; }
  const KvmSystem& kvm() const { return kvm_; }
  Serial& serial() const { return *serial_; }  // COM1
  // Snapshots (issue 15): the i8042 and the RTC, sections "device/i8042"
  // and "device/rtc" (COM1 is saved on its own: vm_control.cc says why).
  absl::Status SaveLegacyState(StateFile* file) const;
  absl::Status RestoreLegacyState(const StateFile& file);
  // Presses the ACPI power button (an irqfd on kPowerButtonGsi): false when
  // the machine has none (ACPI off). Safe from any thread.
  bool PressPowerButton() const;

  // Hands the configured vCPUs (BSP first) to their runners; once only.
  std::vector<KvmVcpu> TakeVcpus() { return std::move(vcpus_); }

 private:
  Machine(KvmSystem kvm, KvmVm vm, GuestMemory memory, MachineHooks hooks);
  // Also creates the in-kernel interrupt controllers, and the PIT if `pit`.
  absl::Status RegisterMemory(bool pit);
  absl::Status CreateDevices(const VmConfig& config, EventLoop* loop, const Cancellation* cancel);
  absl::Status CreateRtc(EventLoop* loop);
  absl::StatusOr<x86_64::LoadedKernel> LoadKernel(const VmConfig& config);
  absl::Status LoadAndDescribe(const VmConfig& config);
  absl::Status CreateVcpus(MachineStart start, const VmConfig& config,
                           absl::Span<const kvm_cpuid_entry2> supported);

  KvmSystem kvm_;
  KvmVm vm_;
  GuestMemory memory_;
  MachineHooks hooks_;
  // Declared (so destroyed) in dependency order: devices on the buses hold
  // MSI vectors that unroute themselves through the GSI router and the VM.
  std::unique_ptr<GsiRouter> gsi_router_;
  Bus pio_bus_;
  Bus mmio_bus_;
  std::unique_ptr<DeviceManager> device_manager_;
  std::shared_ptr<Serial> serial_;
  std::shared_ptr<I8042> i8042_;
  std::shared_ptr<CmosRtc> rtc_;
  UniqueFd rtc_timer_;            // the RTC's second-boundary wake-ups
  std::optional<EventFd> power_button_;  // the GED's irqfd (ACPI only)
  EventLoop* rtc_loop_ = nullptr;  // where rtc_timer_ is registered
  std::vector<KvmVcpu> vcpus_;
  // Where the BSP starts: filled by LoadAndDescribe, used by CreateVcpus.
  struct BootEntry {
    bool pvh = false;
    uint64_t entry = 0;
    uint64_t info = 0;  // boot_params (64-bit entry) or hvm_start_info (PVH)
  } boot_;
};

}  // namespace vmm

#endif  // VMM_VMM_MACHINE_H_
