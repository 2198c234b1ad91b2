// VmImpl: builds the machine from a VmConfig (KVM VM, guest memory, devices,
// loaded kernel, vCPUs) and runs it until the guest ends.
#include <fcntl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cstdio>
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
#include "devices/legacy/serial.h"
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

// VmConfig::seccomp as this build can honour it: sanitizer runtimes make
// system calls of their own (LeakSanitizer's thread at exit, shadow memory),
// so their builds log instead of killing.
SeccompMode EffectiveSeccompMode(SeccompMode mode) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  if (mode == SeccompMode::kEnforce) return SeccompMode::kLog;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(undefined_behavior_sanitizer)
  if (mode == SeccompMode::kEnforce) return SeccompMode::kLog;
#endif
#endif
  return mode;
}

class VmImpl : public Vm {
 public:
  VmImpl(VmConfig config, std::unique_ptr<EventLoop> loop, EventFd stdin_wakeup)
      : config_(std::move(config)), loop_(std::move(loop)), stdin_wakeup_(std::move(stdin_wakeup)) {}
  ~VmImpl() override { TearDownMachine(); }

  absl::Status Build();
  ExitStatus Run() override;
  void ConfineRunThread() override { confine_run_thread_ = true; }
  void RequestStop() override;
  VmStats stats() const override;

 private:
  // Builds the machine and its vCPU runners from config_ (again after a
  // restart).
  absl::Status BuildMachine();
  // Stops and joins the vCPUs and destroys the machine, keeping its counts.
  void TearDownMachine();
  // Runs the current machine until something ends it; returns how.
  ExitStatus RunMachine();
  SeccompMode SeccompModeForThisBuild() const { return EffectiveSeccompMode(config_.seccomp); }
  // A one-line notice to the user (VmConfig::notice, or stderr).
  void Notice(absl::string_view text) const;
  // Records how the VM ended (the first report wins) and wakes Run().
  void Finish(ExitStatus status);
  absl::Status OpenSerialOutput();
  void WriteSerialOutput(absl::Span<const uint8_t> bytes);
  void PumpStdin();
  void WatchStdin(bool watch);

  VmConfig config_;
  std::unique_ptr<EventLoop> loop_;
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
  UniqueFd serial_file_;
  bool ran_ = false;
  bool confine_run_thread_ = false;
  // Loop-thread state of stdin forwarding: stdin is unwatched while the
  // UART's receive FIFO is full, so a fast producer waits instead of being
  // dropped or spinning.
  bool stdin_usable_ = false;
  bool stdin_watched_ = false;
  EventFd stdin_wakeup_;
  std::vector<uint8_t> stdin_pending_;  // read from stdin, not yet taken by the UART
  int stdin_flags_ = -1;                // restored when Run() returns

  mutable absl::Mutex mu_;
  std::optional<ExitStatus> exit_ ABSL_GUARDED_BY(mu_);
  absl::Time create_started_ = absl::Now();
  absl::Time first_kvm_run_ ABSL_GUARDED_BY(mu_) = absl::UnixEpoch();
  uint64_t rss_at_first_run_ ABSL_GUARDED_BY(mu_) = 0;
};

absl::Status VmImpl::OpenSerialOutput() {
  if (config_.serial.mode == SerialConfig::Mode::kFile) {
    if (config_.serial.path.empty()) {
      return absl::InvalidArgumentError("serial output file path is empty");
    }
    int fd = ::open(config_.serial.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "cannot open serial output file %s: %s", config_.serial.path, strerror(errno)));
    }
    serial_file_.Reset(fd);
  }
  if (config_.serial.mode == SerialConfig::Mode::kCallback && !config_.serial.sink) {
    return absl::InvalidArgumentError("serial mode is callback but no sink was given");
  }
  return absl::OkStatus();
}

void VmImpl::WriteSerialOutput(absl::Span<const uint8_t> bytes) {
  int fd = -1;
  switch (config_.serial.mode) {
    case SerialConfig::Mode::kStdio:
      fd = STDOUT_FILENO;
      break;
    case SerialConfig::Mode::kFile:
      fd = serial_file_.get();
      break;
    case SerialConfig::Mode::kOff:
      return;
    case SerialConfig::Mode::kCallback:
      config_.serial.sink(std::string_view(reinterpret_cast<const char*>(bytes.data()),
                                           bytes.size()));
      return;
  }
  // Written straight through (no user-space buffer) so the log survives the
  // VMM being killed.
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // output gone (closed pipe, full disk): drop, keep running
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

absl::Status VmImpl::Build() {
  RETURN_IF_ERROR(OpenSerialOutput());
  return BuildMachine();
}

absl::Status VmImpl::BuildMachine() {
  absl::MutexLock machine_lock(&machine_mu_);
  MachineHooks hooks;
  hooks.serial_output = [this](absl::Span<const uint8_t> bytes) { WriteSerialOutput(bytes); };
  hooks.on_exit = [this](ExitStatus status) { Finish(std::move(status)); };
  // The guest drained the UART's receive FIFO (vCPU thread): let the loop
  // thread resume reading stdin.
  hooks.on_serial_rx_space = [this] { (void)stdin_wakeup_.Write(1); };
  hooks.notice = [this](absl::string_view text) { Notice(text); };
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

void VmImpl::RequestStop() {
  ExitStatus status;
  status.reason = ExitStatus::Reason::kStopped;
  Finish(std::move(status));
}

void VmImpl::WatchStdin(bool watch) {
  if (watch == stdin_watched_) return;
  if (watch) {
    stdin_watched_ = loop_->Add(STDIN_FILENO, EPOLLIN, [this](uint32_t events) {
      if (events & EPOLLIN) {
        PumpStdin();  // reads what is left, then sees end of input
      } else if (events & (EPOLLHUP | EPOLLERR)) {
        stdin_usable_ = false;
        WatchStdin(false);
      }
    }).ok();
  } else {
    (void)loop_->Remove(STDIN_FILENO);
    stdin_watched_ = false;
  }
}

void VmImpl::PumpStdin() {
  // Offer what is left from the last read first; read more only once the UART
  // took all of it, and stop watching stdin while the UART is full.
  if (stdin_pending_.empty()) {
    uint8_t buf[Serial::kRxFifoCapacity];
    ssize_t n = ::read(STDIN_FILENO, buf, sizeof(buf));
    if (n == 0) {  // end of input
      stdin_usable_ = false;
      WatchStdin(false);
      return;
    }
    if (n < 0) return;  // EAGAIN / EINTR: wait for the next readiness
    stdin_pending_.assign(buf, buf + n);
  }
  size_t taken = machine_->SerialInput(stdin_pending_);
  stdin_pending_.erase(stdin_pending_.begin(), stdin_pending_.begin() + taken);
  WatchStdin(stdin_pending_.empty());
}

ExitStatus VmImpl::Run() {
  if (ran_) {
    ExitStatus error;
    error.message = "Vm::Run called twice";
    return error;
  }
  ran_ = true;

  // stdin has one owner: the virtio console with --console stdio (it reads
  // stdin itself), else COM1 with --serial stdio.
  const bool console_owns_stdin = absl::c_any_of(
      config_.devices, [](const DeviceConfig& device) { return device->uses_stdin(); });
  std::optional<RawTerminal> terminal;
  if (console_owns_stdin || config_.serial.mode == SerialConfig::Mode::kStdio) {
    terminal.emplace(STDIN_FILENO);
  }
  if (!console_owns_stdin && config_.serial.mode == SerialConfig::Mode::kStdio) {
    int flags = ::fcntl(STDIN_FILENO, F_GETFL);
    if (flags >= 0 && ::fcntl(STDIN_FILENO, F_SETFL, flags | O_NONBLOCK) == 0) {
      stdin_flags_ = flags;
      // Regular files and /dev/null cannot be watched by epoll: the guest
      // then simply gets no input.
      WatchStdin(true);
      stdin_usable_ = stdin_watched_;
      (void)loop_->Add(stdin_wakeup_.fd(), EPOLLIN, [this](uint32_t) {
        (void)stdin_wakeup_.Read();
        if (stdin_usable_) PumpStdin();
      });
    }
  }

  UniqueFd timer;
  if (config_.timeout != absl::InfiniteDuration()) {
    timer.Reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    itimerspec spec{};
    spec.it_value = absl::ToTimespec(config_.timeout);
    if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
    if (!timer.valid() || ::timerfd_settime(timer.get(), 0, &spec, nullptr) != 0 ||
        !loop_->Add(timer.get(), EPOLLIN, [this](uint32_t) {
               ExitStatus status;
               status.reason = ExitStatus::Reason::kTimeout;
               status.message = absl::StrFormat("the guest ran for its %s timeout",
                                                absl::FormatDuration(config_.timeout));
               Finish(std::move(status));
             }).ok()) {
      ExitStatus status;
      status.message = "cannot arm the --timeout timer";
      Finish(std::move(status));
    }
  }

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
    if (absl::Status built = BuildMachine(); !built.ok()) {
      ExitStatus error;
      error.message = absl::StrCat("restarting the guest after its reboot: ", built.message());
      Finish(std::move(error));
    }
    status = RunMachine();
  }
  WatchStdin(false);
  // O_NONBLOCK is shared with whoever else has this stdin (the shell).
  if (stdin_flags_ >= 0) ::fcntl(STDIN_FILENO, F_SETFL, stdin_flags_);
  return status;
}

ExitStatus VmImpl::RunMachine() {
  {
    absl::MutexLock machine_lock(&machine_mu_);
    for (auto& runner : runners_) runner->Start();
  }
  // After the vCPU threads exist: they must not inherit this filter.
  if (confine_run_thread_ && config_.on_reboot != VmConfig::RebootAction::kRestart) {
    confine_run_thread_ = false;
    if (absl::Status confined = InstallSeccompFilter(SeccompThread::kLoop,
                                                     SeccompModeForThisBuild());
        !confined.ok()) {
      ExitStatus error;
      error.message = std::string(confined.message());
      Finish(std::move(error));
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
      ExitStatus status;
      status.message = std::string(loop_status.message());
      Finish(std::move(status));
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

absl::StatusOr<std::unique_ptr<Vm>> Vm::Create(VmConfig config) {
  ASSIGN_OR_RETURN(std::unique_ptr<EventLoop> loop, EventLoop::Create());
  ASSIGN_OR_RETURN(EventFd stdin_wakeup, EventFd::Create());
  auto vm = std::make_unique<VmImpl>(std::move(config), std::move(loop), std::move(stdin_wakeup));
  RETURN_IF_ERROR(vm->Build());
  return std::unique_ptr<Vm>(std::move(vm));
}

}  // namespace vmm
