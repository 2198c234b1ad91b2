// One thread per vCPU: KVM_RUN in a loop, port-I/O and MMIO exits dispatched
// to the buses, terminal exits reported to the VM.
#ifndef VMM_VMM_VCPU_RUNNER_H_
#define VMM_VMM_VCPU_RUNNER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "devices/bus.h"
#include "arch/x86_64/emulation_assist.h"
#include "vmm/kvm/kvm_vcpu.h"
#include "vmm/vmm.h"

namespace vmm {

// Exits counted per vCPU, for diagnostics and for proving that a data path
// took no user-space exits.
struct VcpuExitCounts {
  std::atomic<uint64_t> pio{0};
  std::atomic<uint64_t> mmio{0};
  std::atomic<uint64_t> unhandled_pio{0};
  std::atomic<uint64_t> unhandled_mmio{0};
};

class VcpuRunner {
 public:
  // `on_exit` is called (from the vCPU thread) when the guest reaches a
  // terminal state or the vCPU fails; the VM then stops every runner.
  // `on_first_run`, if set, is called on the vCPU thread just before its
  // first KVM_RUN.
  VcpuRunner(KvmVcpu vcpu, const Bus* pio, const Bus* mmio,
             std::function<void(ExitStatus)> on_exit, std::function<void()> on_first_run = {});
  ~VcpuRunner();
  VcpuRunner(const VcpuRunner&) = delete;
  VcpuRunner& operator=(const VcpuRunner&) = delete;

  KvmVcpu& vcpu() { return vcpu_; }
  const VcpuExitCounts& counts() const { return counts_; }

  // Lets this runner finish instructions KVM's emulator stopped on (a PVM
  // host; see emulation_assist.h) instead of ending the VM. `assists` is
  // shared by the VM's runners and outlives them; set before Start().
  void SetEmulationAssists(x86_64::EmulationAssists* assists) { assists_ = assists; }

  void Start();
  // The seccomp filter the thread installs before its first KVM_RUN; set
  // before Start().
  void SetSeccompMode(SeccompMode mode) { seccomp_ = mode; }
  // Makes the thread leave KVM_RUN and return; safe from any thread.
  void Stop();
  void Join();

  // Parks the thread outside KVM_RUN until Resume(); returns once it is
  // parked (or has ended, or was never started). A Stop() ends a parked
  // thread. Safe from any thread; Pause/Resume calls must not overlap.
  void Pause();
  void Resume();

 private:
  void Loop();
  void RunLoop();
  // Waits while a pause is asked for (the vCPU thread).
  void Park();
  // Handles one exit; returns false when the vCPU must stop.
  bool Handle(const VcpuExit& exit);
  void Fail(std::string message);
  // " at RIP 0x... (long mode)": where this vCPU is, for messages.
  std::string Where() const;

  KvmVcpu vcpu_;
  const Bus* pio_;
  const Bus* mmio_;
  std::function<void(ExitStatus)> on_exit_;
  std::function<void()> on_first_run_;
  x86_64::EmulationAssists* assists_ = nullptr;
  SeccompMode seccomp_ = SeccompMode::kOff;
  std::atomic<bool> stop_{false};
  // Pause state: asked for, and the thread's answer. stop_ is written under
  // park_mu_ too, so that a parked thread leaving does not clear
  // immediate_exit over a Stop().
  std::atomic<bool> pause_requested_{false};
  // The last exit was port or MMIO I/O, which KVM finishes (RIP, the value
  // read) at the next KVM_RUN (the loop thread only).
  bool io_to_complete_ = false;
  absl::Mutex park_mu_;
  // Written under park_mu_; atomic because abseil may evaluate a wait's
  // condition on another thread.
  std::atomic<bool> parked_{false};
  std::atomic<bool> finished_{false};
  std::atomic<bool> started_{false};
  // Guards the thread handle: Stop() may race with Start() when another vCPU
  // ends the VM while this one is being started.
  absl::Mutex thread_mu_;
  std::thread thread_ ABSL_GUARDED_BY(thread_mu_);
  VcpuExitCounts counts_;
};

// The signal used to kick vCPU threads out of KVM_RUN.
int VcpuKickSignal();

}  // namespace vmm

#endif  // VMM_VMM_VCPU_RUNNER_H_
