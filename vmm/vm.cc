// VmImpl: builds the machine from a VmConfig (KVM VM, guest memory, devices,
// loaded kernel, vCPUs) and runs it until the guest ends.
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
#include "devices/bus.h"
#include "devices/chardev/chardev.h"
#include "vmm/api/api_server.h"
#include "vmm/api/vm_routes.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/kvm/kvm_vm.h"
#include "vmm/machine.h"
#include "vmm/seccomp_filter.h"
#include "vmm/terminal.h"
#include "vmm/vcpu_runner.h"
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

class VmImpl : public Vm {
 public:
  VmImpl(VmConfig config, std::unique_ptr<EventLoop> loop)
      : config_(std::move(config)), loop_(std::move(loop)) {}
  ~VmImpl() override {
    api_server_.reset();  // no request may reach a VM being torn down
    TearDownMachine();
  }

  absl::Status Build(const Cancellation* cancel);
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
  VmStats stats() const override;
  VmState state() const override;
  const VmConfig& config() const override { return config_; }
  std::vector<DeviceInfo> devices() const override;

 private:
  // Builds the machine and its vCPU runners from config_ (again after a
  // restart, when `cancel` is null).
  absl::Status BuildMachine(const Cancellation* cancel);
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
  return BuildMachine(cancel);
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

absl::Status VmImpl::BuildMachine(const Cancellation* cancel) {
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
  ASSIGN_OR_RETURN(machine_, Machine::Create(config_, std::move(hooks), loop_.get()));
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

VmStats VmImpl::stats() const {
  VmStats stats;
  stats.create_started = create_started_;
  {
    // Before machine_mu_: pause_mu_ comes first.
    absl::MutexLock pause_lock(&pause_mu_);
    stats.paused = paused_total_ + (paused_ ? absl::Now() - paused_since_ : absl::ZeroDuration());
  }
  {
    absl::MutexLock lock(&mu_);
    stats.first_kvm_run = first_kvm_run_;
    stats.rss_at_first_run_bytes = rss_at_first_run_;
  }
  absl::MutexLock machine_lock(&machine_mu_);
  stats.pio_exits = past_pio_exits_;
  stats.mmio_exits = past_mmio_exits_;
  stats.virtio_notify_exits = past_notify_exits_;
  stats.restarts = restarts_;
  stats.virtio_needs_reset = past_needs_reset_;
  stats.emulation_assists = past_assists_;
  stats.emulation_user_ud = past_user_ud_;
  if (assists_) {
    stats.emulation_assists += assists_->counts().Finished();
    stats.emulation_user_ud += assists_->counts().user_ud.load(std::memory_order_relaxed);
  }
  if (machine_) {
    const VirtioCounters counters = machine_->devices().counters();
    stats.virtio_notify_exits += counters.notify_exits;
    stats.virtio_needs_reset += counters.needs_reset;
  }
  for (const auto& runner : runners_) {
    stats.pio_exits += runner->counts().pio.load(std::memory_order_relaxed);
    stats.mmio_exits += runner->counts().mmio.load(std::memory_order_relaxed);
  }
  return stats;
}

VmState VmImpl::state() const {
  {
    absl::MutexLock lock(&mu_);
    // A reboot waiting to be restarted is not an end.
    if (exit_ && !(exit_->reason == ExitStatus::Reason::kReset &&
                   config_.on_reboot == VmConfig::RebootAction::kRestart)) {
      return VmState::kEnded;
    }
  }
  if (!ran_.load()) return VmState::kCreated;
  return paused() ? VmState::kPaused : VmState::kRunning;
}

std::vector<DeviceInfo> VmImpl::devices() const {
  absl::MutexLock machine_lock(&machine_mu_);
  if (!machine_) return {};
  return machine_->devices().devices();
}

void VmImpl::Emit(VmEvent event) {
  if (!config_.on_event) return;
  {
    absl::MutexLock lock(&event_mu_);
    events_.push_back(std::move(event));
    if (dispatching_) return;  // the thread dispatching delivers it
    dispatching_ = true;
  }
  for (;;) {
    VmEvent next;
    {
      absl::MutexLock lock(&event_mu_);
      if (events_.empty()) {
        dispatching_ = false;
        return;
      }
      next = std::move(events_.front());
      events_.pop_front();
    }
    config_.on_event(next);
  }
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

std::vector<VcpuRunner*> VmImpl::Runners() {
  absl::MutexLock machine_lock(&machine_mu_);
  std::vector<VcpuRunner*> runners;
  for (auto& runner : runners_) runners.push_back(runner.get());
  return runners;
}

void VmImpl::RequestStop() {
  ExitStatus status;
  status.reason = ExitStatus::Reason::kStopped;
  Finish(std::move(status));
}

void VmImpl::RequestShutdown() {
  bool pressed = false;
  if (config_.shutdown_grace > absl::ZeroDuration()) {
    absl::MutexLock machine_lock(&machine_mu_);
    pressed = machine_ != nullptr && machine_->PressPowerButton();
  }
  if (!pressed) {
    RequestStop();
    return;
  }
  itimerspec current{};
  ::timerfd_gettime(shutdown_timer_.get(), &current);
  if (current.it_value.tv_sec != 0 || current.it_value.tv_nsec != 0) return;  // counting
  itimerspec grace{};
  grace.it_value = absl::ToTimespec(config_.shutdown_grace);
  ::timerfd_settime(shutdown_timer_.get(), 0, &grace, nullptr);
}

absl::Status VmImpl::DoPause() {
  absl::MutexLock pause_lock(&pause_mu_);
  if (!machine_running_) return absl::FailedPreconditionError("the VM is not running");
  if (paused_) return absl::FailedPreconditionError("the VM is already paused");
  // Not under machine_mu_: a vCPU on its way to park may be in Finish(),
  // which takes it. The runners stay: the Run() thread takes pause_mu_
  // before it tears them down.
  for (VcpuRunner* runner : Runners()) runner->Pause();
  loop_->Hold();
  {
    absl::MutexLock machine_lock(&machine_mu_);
    // Without the clock (a KVM that refuses), the guest sees the pause as
    // time passed: worse, not wrong.
    absl::StatusOr<uint64_t> clock = machine_->vm().GetClock();
    paused_clock_ = clock.ok() ? std::optional<uint64_t>(*clock) : std::nullopt;
  }
  paused_timer_left_ = {};
  if (timeout_timer_.valid()) {
    const itimerspec disarm{};
    ::timerfd_settime(timeout_timer_.get(), 0, &disarm, &paused_timer_left_);
  }
  paused_since_ = absl::Now();
  paused_ = true;
  return absl::OkStatus();
}

absl::Status VmImpl::DoResume() {
  absl::MutexLock pause_lock(&pause_mu_);
  if (!paused_) return absl::FailedPreconditionError("the VM is not paused");
  if (paused_clock_) {
    absl::MutexLock machine_lock(&machine_mu_);
    (void)machine_->vm().SetClock(*paused_clock_);
  }
  if (timeout_timer_.valid() &&
      (paused_timer_left_.it_value.tv_sec != 0 || paused_timer_left_.it_value.tv_nsec != 0)) {
    ::timerfd_settime(timeout_timer_.get(), 0, &paused_timer_left_, nullptr);
  }
  loop_->Release();
  for (VcpuRunner* runner : Runners()) runner->Resume();
  paused_total_ += absl::Now() - paused_since_;
  paused_ = false;
  return absl::OkStatus();
}

absl::StatusOr<size_t> VmImpl::SendConsoleInput(std::string_view bytes) {
  if (console_input_ == nullptr) {
    return absl::FailedPreconditionError(
        "console input needs the serial console in callback mode (SerialConfig::kCallback)");
  }
  return console_input_->SendInput(bytes);
}

bool VmImpl::paused() const {
  absl::MutexLock pause_lock(&pause_mu_);
  return paused_;
}

void VmImpl::EndPause() {
  absl::MutexLock pause_lock(&pause_mu_);
  machine_running_ = false;
  if (!paused_) return;
  // The vCPUs are stopping (Stop() ends a parked one); the devices must
  // run again for the machine's teardown and for a restarted machine.
  loop_->Release();
  paused_total_ += absl::Now() - paused_since_;
  paused_ = false;
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
    if (absl::Status built = BuildMachine(/*cancel=*/nullptr); !built.ok()) {
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
  {
    absl::MutexLock machine_lock(&machine_mu_);
    for (auto& runner : runners_) runner->Start();
  }
  {
    absl::MutexLock pause_lock(&pause_mu_);
    machine_running_ = true;
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

}  // namespace

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
