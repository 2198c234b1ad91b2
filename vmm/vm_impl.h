// VmImpl, the Vm that vmm/vmm.h's Vm::Create makes (internal: not
// installed). Its methods live in two files: vm.cc builds the machine and
// runs it (the thread in Run()); vm_control.cc is what other threads ask of
// a running VM (stop, shutdown, pause, resume, console input, state,
// devices, stats, events).
#ifndef VMM_VMM_VM_IMPL_H_
#define VMM_VMM_VM_IMPL_H_

#include <sys/timerfd.h>

#include <atomic>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "base/cancellation.h"
#include "base/event_loop.h"
#include "base/unique_fd.h"
#include "devices/chardev/chardev.h"
#include "vmm/api/api_server.h"
#include "vmm/machine.h"
#include "vmm/seccomp_filter.h"
#include "vmm/vcpu_runner.h"
#include "vmm/vmm.h"

namespace vmm {

class VmImpl : public Vm {
 public:
  VmImpl(VmConfig config, std::unique_ptr<EventLoop> loop)
      : config_(std::move(config)), loop_(std::move(loop)) {}
  ~VmImpl() override {
    api_server_.reset();  // no request may reach a VM being torn down
    TearDownMachine();
  }

  absl::Status Build(const Cancellation* cancel);
  // Sets the machine just built from config_.restore_from's snapshot.
  absl::Status RestoreSnapshot();
  // Serves config_.api_socket_path, if set (last: the VM is complete).
  absl::Status StartApiServer();
  ExitStatus Run() override;
  void ConfineRunThread() override { confine_run_thread_ = true; }
  void RequestStop() override;
  void RequestShutdown() override;
  absl::Status Pause() override {
    absl::Status paused = DoPause();
    if (paused.ok()) EmitStateChange(VmState::kPaused, "");
    return paused;
  }
  absl::Status Resume() override {
    absl::Status resumed = DoResume();
    if (resumed.ok()) EmitStateChange(VmState::kRunning, "");
    return resumed;
  }
  absl::StatusOr<size_t> SendConsoleInput(std::string_view bytes) override;
  bool paused() const override;
  absl::Status SaveSnapshot(const std::string& dir) override;
  VmStats stats() const override;
  VmState state() const override;
  const VmConfig& config() const override { return config_; }
  std::vector<DeviceInfo> devices() const override;

 private:
  // Builds the machine and its vCPU runners from config_ (again after a
  // restart, when `cancel` is null).
  absl::Status BuildMachine(const Cancellation* cancel, MachineStart start);
  // Stops and joins the vCPUs and destroys the machine, keeping its counts.
  void TearDownMachine();
  // Runs the current machine until something ends it; returns how.
  ExitStatus RunMachine();
  SeccompMode SeccompModeForThisBuild() const { return EffectiveSeccompMode(config_.seccomp); }
  // A one-line notice to the user (VmConfig::notice, or stderr).
  void Notice(absl::string_view text) const;
  // Records how the VM ended (the first report wins) and wakes Run().
  void Finish(ExitStatus status);
  // Finish with kError and `message`.
  void FinishWithError(std::string message);
  // Watches a timerfd in the loop (control work: it runs while paused):
  // when it fires the run ends with kTimeout and `message`.
  absl::Status WatchTimeoutTimer(int timer_fd, std::string message);
  // The current machine's runners. Valid while the Run() thread keeps the
  // machine (a caller holding pause_mu_ is sure of that).
  std::vector<VcpuRunner*> Runners();
  // Lets the devices and vCPUs of a machine that is ending go (a stop while
  // paused); the Run() thread, before the machine is torn down.
  void EndPause();
  absl::Status DoPause();
  absl::Status DoResume();
  // Hands `event` to config_.on_event: one at a time, in order, without the
  // VM's locks; an event raised from inside the callback is delivered after
  // it returns.
  void Emit(VmEvent event);
  void EmitStateChange(VmState state, std::string detail) {
    Emit(VmEvent{VmEvent::Kind::kStateChanged, state, "", std::move(detail)});
  }
  // COM1's chardev from config_.serial (none for kOff).
  absl::Status OpenSerial();
  // Whether the virtio console reads stdin (--console stdio): then COM1 does not.
  bool ConsoleOwnsStdin() const;

  VmConfig config_;
  std::unique_ptr<EventLoop> loop_;
  // COM1's host side; outlives the machines (declared before them).
  std::unique_ptr<Chardev> serial_chardev_;
  // serial_chardev_ when it takes the host program's input (kCallback).
  CallbackChardev* console_input_ = nullptr;
  // The current machine. Replaced only by the thread in Run() (or Build()),
  // under machine_mu_, while no vCPU runs; other threads (Finish, stats) read
  // it under machine_mu_.
  mutable absl::Mutex machine_mu_;
  std::unique_ptr<Machine> machine_ ABSL_GUARDED_BY(machine_mu_);
  std::unique_ptr<x86_64::EmulationAssists> assists_ ABSL_GUARDED_BY(machine_mu_);
  std::vector<std::unique_ptr<VcpuRunner>> runners_ ABSL_GUARDED_BY(machine_mu_);
  // Exit counts and restarts of machines already torn down.
  uint64_t past_pio_exits_ ABSL_GUARDED_BY(machine_mu_) = 0;
  uint64_t past_mmio_exits_ ABSL_GUARDED_BY(machine_mu_) = 0;
  uint64_t past_notify_exits_ ABSL_GUARDED_BY(machine_mu_) = 0;
  uint64_t past_needs_reset_ ABSL_GUARDED_BY(machine_mu_) = 0;
  uint64_t restarts_ ABSL_GUARDED_BY(machine_mu_) = 0;
  uint64_t past_assists_ ABSL_GUARDED_BY(machine_mu_) = 0;
  uint64_t past_user_ud_ ABSL_GUARDED_BY(machine_mu_) = 0;
  std::atomic<bool> ran_{false};
  bool confine_run_thread_ = false;
  // The --timeout timer (invalid without one); disarmed while paused.
  UniqueFd timeout_timer_;
  // RequestShutdown's grace: armed at the first press, watched by the loop
  // from Run() on.
  UniqueFd shutdown_timer_;

  // Pause state. pause_mu_ comes before machine_mu_ and mu_; the Run()
  // thread takes it before it tears a machine down, so a Pause() in
  // progress keeps its runners.
  mutable absl::Mutex pause_mu_;
  bool machine_running_ ABSL_GUARDED_BY(pause_mu_) = false;
  bool paused_ ABSL_GUARDED_BY(pause_mu_) = false;
  std::optional<uint64_t> paused_clock_ ABSL_GUARDED_BY(pause_mu_);
  itimerspec paused_timer_left_ ABSL_GUARDED_BY(pause_mu_) = {};
  // The shutdown grace left at the pause (a paused guest cannot answer its
  // power button, so the grace waits for Resume too).
  itimerspec paused_grace_left_ ABSL_GUARDED_BY(pause_mu_) = {};
  absl::Time paused_since_ ABSL_GUARDED_BY(pause_mu_);
  absl::Duration paused_total_ ABSL_GUARDED_BY(pause_mu_) = absl::ZeroDuration();

  mutable absl::Mutex mu_;
  std::optional<ExitStatus> exit_ ABSL_GUARDED_BY(mu_);
  absl::Time create_started_ = absl::Now();
  absl::Time first_kvm_run_ ABSL_GUARDED_BY(mu_) = absl::UnixEpoch();
  uint64_t rss_at_first_run_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Mutex event_mu_;
  std::deque<VmEvent> events_ ABSL_GUARDED_BY(event_mu_);
  bool dispatching_ ABSL_GUARDED_BY(event_mu_) = false;
  // Last: its thread calls this object's methods until it is stopped.
  std::unique_ptr<ApiServer> api_server_;
};

}  // namespace vmm

#endif  // VMM_VMM_VM_IMPL_H_
