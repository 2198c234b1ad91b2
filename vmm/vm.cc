// VmImpl (vmm/vm_impl.h): builds the machine from a VmConfig (KVM VM, guest
// memory, devices, loaded kernel, vCPUs) and runs it until the guest ends;
// vm_control.cc holds what other threads ask of it.
#include <fcntl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cstdio>
#include <atomic>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "base/event_loop.h"
#include "base/guest_memory.h"
#include "base/status_macros.h"
#include "devices/legacy/serial.h"
#include "devices/bus.h"
#include "devices/chardev/chardev.h"
#include "vmm/api/api_server.h"
#include "vmm/api/vm_routes.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/kvm/kvm_vm.h"
#include "vmm/machine.h"
#include "vmm/seccomp_filter.h"
#include "vmm/snapshot.h"
#include "vmm/terminal.h"
#include "vmm/vcpu_runner.h"
#include "vmm/vm_impl.h"
#include "vmm/vmm.h"

namespace vmm {
namespace {

// VmRSS of this process, from /proc/self/statm (0 if unreadable).
uint64_t ResidentSetBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0;
  int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)) : 0;
}

}  // namespace

bool VmImpl::ConsoleOwnsStdin() const {
  return absl::c_any_of(config_.devices,
                        [](const DeviceConfig& device) { return device->uses_stdin(); });
}

absl::Status VmImpl::OpenSerial() {
  const SerialConfig& serial = config_.serial;
  absl::StatusOr<std::unique_ptr<Chardev>> made;
  switch (serial.mode) {
    case SerialConfig::Mode::kOff:
      return absl::OkStatus();
    case SerialConfig::Mode::kStdio:
      made = MakeStdioChardev(*loop_, /*with_input=*/!ConsoleOwnsStdin());
      break;
    case SerialConfig::Mode::kFile:
    case SerialConfig::Mode::kSocket:
      if (serial.path.empty()) return absl::InvalidArgumentError("serial: the path is empty");
      made = serial.mode == SerialConfig::Mode::kFile ? MakeFileChardev(serial.path, *loop_)
                                                      : MakeSocketChardev(serial.path, *loop_);
      break;
    case SerialConfig::Mode::kPty:
      made = MakePtyChardev(*loop_);
      break;
    case SerialConfig::Mode::kCallback:
      if (!serial.sink) {
        return absl::InvalidArgumentError("serial mode is callback but no sink was given");
      }
      if (absl::StatusOr<std::unique_ptr<CallbackChardev>> callback =
              CallbackChardev::Create(serial.sink, loop_.get());
          callback.ok()) {
        console_input_ = callback->get();
        made = std::unique_ptr<Chardev>(*std::move(callback));
      } else {
        made = callback.status();
      }
      break;
  }
  if (!made.ok()) {
    return absl::Status(made.status().code(), absl::StrCat("serial: ", made.status().message()));
  }
  serial_chardev_ = std::move(*made);
  if (serial.mode == SerialConfig::Mode::kPty) {
    Notice(absl::StrCat("COM1 (ttyS0) is on ", serial_chardev_->path()));
  }
  return absl::OkStatus();
}

absl::Status VmImpl::Build(const Cancellation* cancel) {
  shutdown_timer_.Reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!shutdown_timer_.valid()) return ErrnoStatus("timerfd_create (shutdown grace)");
  RETURN_IF_ERROR(OpenSerial());
  const bool restore = !config_.restore_from.empty();
  RETURN_IF_ERROR(BuildMachine(cancel, restore ? MachineStart::kRestore : MachineStart::kBoot));
  if (restore) {
    if (absl::Status restored = RestoreSnapshot(); !restored.ok()) {
      return absl::Status(restored.code(), absl::StrCat("restoring the snapshot in ",
                                                        config_.restore_from, ": ",
                                                        restored.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status VmImpl::RestoreSnapshot() {
  const std::string& dir = config_.restore_from;
  ASSIGN_OR_RETURN(StateFile file,
                   snapshot::ReadStateFile(absl::StrCat(dir, "/", snapshot::kStateFile)));
  RETURN_IF_ERROR(snapshot::CheckShape(
      file, {config_.memory_bytes, static_cast<uint32_t>(config_.cpus)}));
  // COM1 first, without machine_mu_ (vm_control.cc's SaveSnapshot says
  // why); nothing runs yet.
  Serial* serial = nullptr;
  {
    absl::MutexLock machine_lock(&machine_mu_);
    serial = &machine_->serial();
  }
  ASSIGN_OR_RETURN(absl::string_view com1, file.Get("device/com1"));
  RETURN_IF_ERROR(serial->RestoreState(com1));
  absl::MutexLock machine_lock(&machine_mu_);
  RETURN_IF_ERROR(snapshot::ReadMemoryFile(machine_->memory(),
                                           absl::StrCat(dir, "/", snapshot::kMemoryFile)));
  RETURN_IF_ERROR(snapshot::RestoreVm(machine_->vm(), file));
  for (auto& runner : runners_) {
    RETURN_IF_ERROR(snapshot::RestoreVcpu(runner->vcpu(), file, /*refused_msrs=*/nullptr));
  }
  // The devices last: what they signal on restore (an INTx level, an event
  // a restored device sends, the RTC's line) lands in the restored
  // interrupt controllers.
  RETURN_IF_ERROR(machine_->RestoreLegacyState(file));
  return machine_->devices().RestoreState(file);
}

absl::Status VmImpl::StartApiServer() {
  if (config_.api_socket_path.empty()) return absl::OkStatus();
  ApiServerOptions options;
  options.seccomp = SeccompModeForThisBuild();
  ASSIGN_OR_RETURN(api_server_,
                   ApiServer::Start(config_.api_socket_path,
                                    [this](const ApiRequest& request) {
                                      return HandleVmRequest(*this, request);
                                    },
                                    options));
  return absl::OkStatus();
}

absl::Status VmImpl::BuildMachine(const Cancellation* cancel, MachineStart start) {
  absl::MutexLock machine_lock(&machine_mu_);
  MachineHooks hooks;
  hooks.serial = serial_chardev_.get();
  hooks.on_exit = [this](ExitStatus status) { Finish(std::move(status)); };
  hooks.notice = [this](absl::string_view text) { Notice(text); };
  hooks.cancel = cancel;
  if (config_.on_event) {
    hooks.on_device_needs_reset = [this](const DeviceInfo& device) {
      Emit(VmEvent{VmEvent::Kind::kDeviceNeedsReset, state(),
                   absl::StrCat(device.kind, " at ", device.address),
                   device.needs_reset_reason});
    };
  }
  auto notice = hooks.notice;
  ASSIGN_OR_RETURN(machine_, Machine::Create(config_, std::move(hooks), loop_.get(), start));
  assists_ = std::make_unique<x86_64::EmulationAssists>(&machine_->memory(), notice);
  std::vector<KvmVcpu> vcpus = machine_->TakeVcpus();
  for (KvmVcpu& vcpu : vcpus) {
    std::function<void()> on_first_run;
    if (runners_.empty()) {  // the boot vCPU
      on_first_run = [this] {
        uint64_t rss = ResidentSetBytes();
        absl::MutexLock lock(&mu_);
        if (first_kvm_run_ != absl::UnixEpoch()) return;  // a restart: keep the first boot's
        first_kvm_run_ = absl::Now();
        rss_at_first_run_ = rss;
      };
    }
    runners_.push_back(std::make_unique<VcpuRunner>(
        std::move(vcpu), &machine_->pio_bus(), &machine_->mmio_bus(),
        [this](ExitStatus status) { Finish(std::move(status)); }, std::move(on_first_run)));
    runners_.back()->SetEmulationAssists(assists_.get());
    runners_.back()->SetSeccompMode(SeccompModeForThisBuild());
  }
  return absl::OkStatus();
}

void VmImpl::Notice(absl::string_view text) const {
  if (config_.notice) {
    config_.notice(std::string_view(text.data(), text.size()));
  } else {
    std::fprintf(stderr, "vmm: %.*s\n", static_cast<int>(text.size()), text.data());
  }
}

void VmImpl::TearDownMachine() {
  std::vector<std::unique_ptr<VcpuRunner>> runners;
  {
    absl::MutexLock machine_lock(&machine_mu_);
    for (auto& runner : runners_) runner->Stop();
    runners = std::move(runners_);
    runners_.clear();
  }
  // Joined without the lock: a vCPU thread may be in Finish().
  for (auto& runner : runners) runner->Join();
  std::unique_ptr<Machine> machine;
  std::unique_ptr<x86_64::EmulationAssists> assists;
  {
    absl::MutexLock machine_lock(&machine_mu_);
    for (auto& runner : runners) {
      past_pio_exits_ += runner->counts().pio.load(std::memory_order_relaxed);
      past_mmio_exits_ += runner->counts().mmio.load(std::memory_order_relaxed);
    }
    if (machine_) {
      const VirtioCounters counters = machine_->devices().counters();
      past_notify_exits_ += counters.notify_exits;
      past_needs_reset_ += counters.needs_reset;
    }
    if (assists_) {
      past_assists_ += assists_->counts().Finished();
      past_user_ud_ += assists_->counts().user_ud.load(std::memory_order_relaxed);
    }
    machine = std::move(machine_);
    assists = std::move(assists_);
  }
  // Runners first (they point into the machine), then the machine.
  runners.clear();
  assists.reset();
  machine.reset();
}

void VmImpl::Finish(ExitStatus status) {
  {
    absl::MutexLock lock(&mu_);
    // The first report wins, except that with --on-reboot restart a stop,
    // timeout or error overrides a reboot still waiting to be restarted.
    const bool overrides_reboot =
        exit_ && exit_->reason == ExitStatus::Reason::kReset &&
        status.reason != ExitStatus::Reason::kReset &&
        config_.on_reboot == VmConfig::RebootAction::kRestart;
    if (!exit_ || overrides_reboot) exit_ = std::move(status);
  }
  // Stop every vCPU now, not when the loop thread wakes: the guest must not
  // run on past the event that ended it.
  {
    absl::MutexLock machine_lock(&machine_mu_);
    for (auto& runner : runners_) runner->Stop();
  }
  loop_->Stop();
}

void VmImpl::FinishWithError(std::string message) {
  ExitStatus error;
  error.message = std::move(message);
  Finish(std::move(error));
}

absl::Status VmImpl::WatchTimeoutTimer(int timer_fd, std::string message) {
  return loop_->Add(timer_fd, EPOLLIN, [this, message = std::move(message)](uint32_t) {
    ExitStatus status;
    status.reason = ExitStatus::Reason::kTimeout;
    status.message = message;
    Finish(std::move(status));
  }, EventLoop::Kind::kControl);
}

ExitStatus VmImpl::Run() {
  if (ran_.exchange(true)) {
    ExitStatus error;
    error.message = "Vm::Run called twice";
    return error;
  }

  // A terminal on stdin is put in raw mode when the guest reads it.
  std::optional<RawTerminal> terminal;
  if (ConsoleOwnsStdin() || config_.serial.mode == SerialConfig::Mode::kStdio) {
    terminal.emplace(STDIN_FILENO);
  }

  if (config_.timeout != absl::InfiniteDuration()) {
    timeout_timer_.Reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    itimerspec spec{};
    spec.it_value = absl::ToTimespec(config_.timeout);
    if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
    if (!timeout_timer_.valid() ||
        ::timerfd_settime(timeout_timer_.get(), 0, &spec, nullptr) != 0 ||
        !WatchTimeoutTimer(timeout_timer_.get(),
                           absl::StrFormat("the guest ran for its %s timeout",
                                           absl::FormatDuration(config_.timeout)))
             .ok()) {
      FinishWithError("cannot arm the --timeout timer");
    }
  }
  if (!WatchTimeoutTimer(
           shutdown_timer_.get(),
           absl::StrFormat(
               "the guest did not power off within its %s shutdown grace after the power button",
               absl::FormatDuration(config_.shutdown_grace)))
           .ok()) {
    FinishWithError("cannot watch the shutdown grace timer");
  }

  EmitStateChange(VmState::kRunning, "");
  ExitStatus status = RunMachine();
  while (status.reason == ExitStatus::Reason::kReset &&
         config_.on_reboot == VmConfig::RebootAction::kRestart) {
    TearDownMachine();
    {
      absl::MutexLock lock(&mu_);
      if (exit_->reason != ExitStatus::Reason::kReset) {
        status = *exit_;
        break;
      }
      exit_.reset();
    }
    uint64_t restarts;
    {
      absl::MutexLock machine_lock(&machine_mu_);
      restarts = ++restarts_;
    }
    Notice(absl::StrCat("the guest rebooted",
                        status.message.empty() ? "" : absl::StrCat(" (", status.message, ")"),
                        "; starting it again (restart ", restarts, ", --on-reboot restart)"));
    // A restarted machine boots its kernel, restored or not.
    if (absl::Status built = BuildMachine(/*cancel=*/nullptr, MachineStart::kBoot); !built.ok()) {
      FinishWithError(absl::StrCat("restarting the guest after its reboot: ", built.message()));
    }
    status = RunMachine();
  }
  if (status.reason == ExitStatus::Reason::kGuestPanic) {
    Emit(VmEvent{VmEvent::Kind::kGuestPanic, VmState::kEnded, "", status.message});
  }
  std::string how(ExitReasonName(status.reason));
  if (status.reason == ExitStatus::Reason::kDebugExit) absl::StrAppend(&how, " ", status.debug_code);
  if (!status.message.empty()) absl::StrAppend(&how, ": ", status.message);
  EmitStateChange(VmState::kEnded, std::move(how));
  return status;
}

ExitStatus VmImpl::RunMachine() {
  bool have_machine;
  {
    absl::MutexLock machine_lock(&machine_mu_);
    for (auto& runner : runners_) runner->Start();
    have_machine = machine_ != nullptr;  // not after a restart that failed
  }
  {
    absl::MutexLock pause_lock(&pause_mu_);
    machine_running_ = have_machine;
  }
  // After the vCPU threads exist: they must not inherit this filter.
  if (confine_run_thread_ && config_.on_reboot != VmConfig::RebootAction::kRestart) {
    confine_run_thread_ = false;
    if (absl::Status confined = InstallSeccompFilter(SeccompThread::kLoop,
                                                     SeccompModeForThisBuild());
        !confined.ok()) {
      FinishWithError(std::string(confined.message()));
    }
  }
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (exit_) break;
    }
    // Returns at each Stop(): one left over from an earlier machine's end
    // is harmless, the loop just runs again.
    absl::Status loop_status = loop_->Run();
    if (!loop_status.ok()) {
      FinishWithError(std::string(loop_status.message()));
    }
  }
  std::vector<VcpuRunner*> runners;
  {
    absl::MutexLock machine_lock(&machine_mu_);
    for (auto& runner : runners_) {
      runner->Stop();
      runners.push_back(runner.get());
    }
  }
  EndPause();
  // Joined without the lock: a vCPU thread may be in Finish(). Only this
  // thread replaces runners_, so the pointers stay valid.
  for (VcpuRunner* runner : runners) runner->Join();
  absl::MutexLock lock(&mu_);
  if (exit_->reason == ExitStatus::Reason::kTimeout) {
    // Where a guest that ran out of time was stuck: the first thing a user
    // debugging a hang wants.
    for (VcpuRunner* runner : runners) {
      absl::StatusOr<kvm_regs> regs = runner->vcpu().GetRegs();
      if (regs.ok()) {
        absl::StrAppendFormat(&exit_->message, "; vCPU %d at RIP 0x%x", runner->vcpu().id(),
                              regs->rip);
      }
    }
  }
  return *exit_;
}

absl::StatusOr<std::unique_ptr<Vm>> Vm::Create(VmConfig config, const Cancellation* cancel) {
  RETURN_IF_ERROR(CancellationStatus(cancel));
  ASSIGN_OR_RETURN(std::unique_ptr<EventLoop> loop, EventLoop::Create());
  auto vm = std::make_unique<VmImpl>(std::move(config), std::move(loop));
  RETURN_IF_ERROR(vm->Build(cancel));
  RETURN_IF_ERROR(CancellationStatus(cancel));
  RETURN_IF_ERROR(vm->StartApiServer());
  return std::unique_ptr<Vm>(std::move(vm));
}

}  // namespace vmm
