// VmImpl (vmm/vm_impl.h): what other threads ask of a running VM — stop,
// shutdown, pause and resume, console input — and what they may read of it
// (state, devices, stats), and the events it reports.
#include <sys/stat.h>
#include <sys/timerfd.h>

#include <unistd.h>

#include <cerrno>

#include <deque>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/status_macros.h"
#include "devices/legacy/serial.h"
#include "vmm/snapshot.h"
#include "vmm/vm_impl.h"

namespace vmm {

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

namespace {

bool Armed(const itimerspec& spec) {
  return spec.it_value.tv_sec != 0 || spec.it_value.tv_nsec != 0;
}

}  // namespace

void VmImpl::RequestShutdown() {
  // pause_mu_ first (the lock order): a paused VM's grace starts at Resume.
  absl::MutexLock pause_lock(&pause_mu_);
  bool pressed = false;
  if (config_.shutdown_grace > absl::ZeroDuration()) {
    absl::MutexLock machine_lock(&machine_mu_);
    pressed = machine_ != nullptr && machine_->PressPowerButton();
  }
  if (!pressed) {
    RequestStop();
    return;
  }
  itimerspec grace{};
  grace.it_value = absl::ToTimespec(config_.shutdown_grace);
  if (paused_) {
    if (!Armed(paused_grace_left_)) paused_grace_left_ = grace;
    return;
  }
  itimerspec current{};
  ::timerfd_gettime(shutdown_timer_.get(), &current);
  if (Armed(current)) return;  // counting
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
  const itimerspec disarm{};
  if (timeout_timer_.valid()) {
    ::timerfd_settime(timeout_timer_.get(), 0, &disarm, &paused_timer_left_);
  }
  paused_grace_left_ = {};
  ::timerfd_settime(shutdown_timer_.get(), 0, &disarm, &paused_grace_left_);
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
  if (timeout_timer_.valid() && Armed(paused_timer_left_)) {
    ::timerfd_settime(timeout_timer_.get(), 0, &paused_timer_left_, nullptr);
  }
  if (Armed(paused_grace_left_)) {
    ::timerfd_settime(shutdown_timer_.get(), 0, &paused_grace_left_, nullptr);
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

absl::Status VmImpl::SaveSnapshot(const std::string& dir) {
  // pause_mu_ keeps the machine (the Run() thread takes it before a
  // teardown); COM1's lock is taken without machine_mu_ (a vCPU writing to
  // the console holds it and may end the VM, which takes machine_mu_).
  absl::MutexLock pause_lock(&pause_mu_);
  if (!paused_) return absl::FailedPreconditionError("a snapshot needs a paused VM (Pause first)");
  Serial* serial = nullptr;
  {
    absl::MutexLock machine_lock(&machine_mu_);
    serial = &machine_->serial();
  }
  std::string com1 = serial->SaveState();
  StateFile file;
  const GuestMemory* memory = nullptr;
  {
    // What KVM holds, under machine_mu_; guest RAM is written after it (a
    // stop or stats() must not wait for gigabytes to reach the disk).
    absl::MutexLock machine_lock(&machine_mu_);
    RETURN_IF_ERROR(machine_->devices().SaveState(&file));
    RETURN_IF_ERROR(machine_->SaveLegacyState(&file));
    RETURN_IF_ERROR(file.Add("device/com1", std::move(com1)));
    RETURN_IF_ERROR(snapshot::SaveShape(
        {config_.memory_bytes, static_cast<uint32_t>(config_.cpus)}, &file));
    uint64_t clock = 0;
    if (paused_clock_) {
      clock = *paused_clock_;
    } else {
      ASSIGN_OR_RETURN(clock, machine_->vm().GetClock());
    }
    RETURN_IF_ERROR(snapshot::SaveVm(machine_->vm(), clock, &file));
    ASSIGN_OR_RETURN(std::vector<uint32_t> msrs, machine_->kvm().GetMsrIndexList());
    for (auto& runner : runners_) {
      RETURN_IF_ERROR(snapshot::SaveVcpu(runner->vcpu(), msrs, &file));
    }
    memory = &machine_->memory();
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot create the snapshot directory ", dir));
  }
  // An earlier snapshot's state goes first: it must never pair with this
  // memory should writing fail half-way.
  const std::string state_path = absl::StrCat(dir, "/", snapshot::kStateFile);
  ::unlink(state_path.c_str());
  RETURN_IF_ERROR(
      snapshot::WriteMemoryFile(*memory, absl::StrCat(dir, "/", snapshot::kMemoryFile)));
  // The state last: a directory with a state file has the memory that goes
  // with it.
  return snapshot::WriteStateFile(file, state_path);
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

}  // namespace vmm
