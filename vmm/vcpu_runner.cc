#include "vmm/vcpu_runner.h"

#include <pthread.h>
#include <signal.h>

#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "vmm/seccomp_filter.h"

namespace vmm {
namespace {

void InstallKickHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};  // only interrupts KVM_RUN (no SA_RESTART)
    sigemptyset(&sa.sa_mask);
    sigaction(VcpuKickSignal(), &sa, nullptr);
  });
}

ExitStatus Status(ExitStatus::Reason reason, std::string message = "") {
  ExitStatus s;
  s.reason = reason;
  s.message = std::move(message);
  return s;
}

}  // namespace

int VcpuKickSignal() { return SIGRTMIN; }

VcpuRunner::VcpuRunner(KvmVcpu vcpu, const Bus* pio, const Bus* mmio,
                       std::function<void(ExitStatus)> on_exit,
                       std::function<void()> on_first_run)
    : vcpu_(std::move(vcpu)),
      pio_(pio),
      mmio_(mmio),
      on_exit_(std::move(on_exit)),
      on_first_run_(std::move(on_first_run)) {
  InstallKickHandler();
}

VcpuRunner::~VcpuRunner() {
  Stop();
  Join();
}

void VcpuRunner::Start() {
  {
    absl::MutexLock lock(&park_mu_);
    started_ = true;
  }
  absl::MutexLock lock(&thread_mu_);
  thread_ = std::thread([this] { Loop(); });
}

void VcpuRunner::Pause() {
  pause_requested_ = true;
  vcpu_.SetImmediateExit(true);
  {
    absl::MutexLock lock(&thread_mu_);
    if (thread_.joinable()) pthread_kill(thread_.native_handle(), VcpuKickSignal());
  }
  absl::MutexLock lock(&park_mu_);
  park_mu_.Await(absl::Condition(
      +[](VcpuRunner* r) { return r->parked_ || r->finished_ || !r->started_; }, this));
}

void VcpuRunner::Resume() {
  absl::MutexLock lock(&park_mu_);
  pause_requested_ = false;
}

void VcpuRunner::Park() {
  absl::MutexLock lock(&park_mu_);
  parked_ = true;
  park_mu_.Await(absl::Condition(
      +[](VcpuRunner* r) { return !r->pause_requested_ || r->stop_; }, this));
  parked_ = false;
  // Back into the guest: KVM_RUN must not return at once, unless a Stop()
  // (which takes park_mu_ to set stop_) asked for exactly that.
  if (!stop_) vcpu_.SetImmediateExit(false);
}

void VcpuRunner::Stop() {
  {
    absl::MutexLock lock(&park_mu_);
    stop_ = true;
  }
  vcpu_.SetImmediateExit(true);
  // A thread that has not reached KVM_RUN yet sees immediate_exit; one in the
  // guest needs the signal.
  absl::MutexLock lock(&thread_mu_);
  if (thread_.joinable()) pthread_kill(thread_.native_handle(), VcpuKickSignal());
}

void VcpuRunner::Join() {
  std::thread thread;
  {
    absl::MutexLock lock(&thread_mu_);
    thread = std::move(thread_);
  }
  if (thread.joinable()) thread.join();
}

void VcpuRunner::Fail(std::string message) {
  on_exit_(Status(ExitStatus::Reason::kError,
                  absl::StrFormat("vCPU %d: %s", vcpu_.id(), message)));
}

std::string VcpuRunner::Where() const {
  absl::StatusOr<kvm_regs> regs = vcpu_.GetRegs();
  absl::StatusOr<kvm_sregs> sregs = vcpu_.GetSregs();
  if (!regs.ok() || !sregs.ok()) return "";
  return absl::StrFormat(" at RIP 0x%x (%s mode)", regs->rip,
                         x86_64::CpuModeName(x86_64::CpuModeFromSregs(*sregs)));
}

void VcpuRunner::Loop() {
  RunLoop();
  absl::MutexLock lock(&park_mu_);
  finished_ = true;
}

void VcpuRunner::RunLoop() {
  // The kick signal must be deliverable on this thread.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, VcpuKickSignal());
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);

  // on_first_run reads /proc, which the filter then forbids.
  if (on_first_run_ && !stop_) on_first_run_();
  if (absl::Status confined = InstallSeccompFilter(SeccompThread::kVcpu, seccomp_);
      !confined.ok()) {
    Fail(std::string(confined.message()));
    return;
  }
  while (!stop_) {
    if (pause_requested_) {
      // Parked between instructions, not half-way through an IN/OUT or MMIO
      // access (what a snapshot saves would repeat it): KVM_RUN with
      // immediate_exit (Pause set it) finishes the access and returns.
      if (io_to_complete_) {
        vcpu_.SetImmediateExit(true);
        (void)vcpu_.Run();
        io_to_complete_ = false;
      }
      Park();
      continue;
    }
    absl::StatusOr<VcpuExit> exit = vcpu_.Run();
    if (!exit.ok()) {
      Fail(std::string(exit.status().message()));
      return;
    }
    using Kind = VcpuExit::Kind;
    io_to_complete_ = exit->kind == Kind::kIoIn || exit->kind == Kind::kIoOut ||
                      exit->kind == Kind::kMmioRead || exit->kind == Kind::kMmioWrite;
    if (!Handle(*exit)) return;
  }
}

bool VcpuRunner::Handle(const VcpuExit& exit) {
  using Kind = VcpuExit::Kind;
  switch (exit.kind) {
    case Kind::kIoIn:
    case Kind::kIoOut: {
      counts_.pio.fetch_add(1, std::memory_order_relaxed);
      // `count` > 1 is a rep ins/outs: one bus access per element.
      for (uint32_t i = 0; i < exit.count; ++i) {
        absl::Span<uint8_t> element = exit.data.subspan(i * exit.size, exit.size);
        bool handled = exit.kind == Kind::kIoIn ? pio_->Read(exit.port, element)
                                                : pio_->Write(exit.port, element);
        if (!handled) counts_.unhandled_pio.fetch_add(1, std::memory_order_relaxed);
      }
      return true;
    }
    case Kind::kMmioRead:
    case Kind::kMmioWrite: {
      counts_.mmio.fetch_add(1, std::memory_order_relaxed);
      bool handled = exit.kind == Kind::kMmioRead ? mmio_->Read(exit.addr, exit.data)
                                                  : mmio_->Write(exit.addr, exit.data);
      if (!handled) counts_.unhandled_mmio.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    case Kind::kInterrupted:
      return true;  // the loop condition decides
    case Kind::kShutdown:
      // A triple fault: real hardware resets. Said on stderr (vmm/main.cc):
      // unlike a reboot the guest asked for, it is usually a crash.
    {
      ExitStatus reset = Status(ExitStatus::Reason::kReset,
                                absl::StrFormat("triple fault on vCPU %d%s", vcpu_.id(), Where()));
      reset.triple_fault = true;
      on_exit_(std::move(reset));
      return false;
    }
    case Kind::kSystemEvent:
      if (exit.system_event == KVM_SYSTEM_EVENT_SHUTDOWN) {
        on_exit_(Status(ExitStatus::Reason::kPowerOff));
      } else if (exit.system_event == KVM_SYSTEM_EVENT_RESET) {
        on_exit_(Status(ExitStatus::Reason::kReset, "KVM system event reset"));
      } else {
        Fail(absl::StrFormat("unexpected system event %d", exit.system_event));
      }
      return false;
    case Kind::kHlt:
      // With the in-kernel LAPIC, HLT never reaches user space.
      Fail("HLT exit without an in-kernel LAPIC");
      return false;
    case Kind::kInternalError: {
      std::string refused;
      if (assists_ != nullptr && exit.suberror == KVM_INTERNAL_ERROR_EMULATION &&
          !exit.insn_bytes.empty()) {
        x86_64::AssistVcpuAdapter<KvmVcpu> vcpu(vcpu_);
        absl::Status assisted = assists_->Apply(vcpu, exit.insn_bytes);
        if (assisted.ok()) return true;
        refused = absl::StrCat("; vmm cannot finish it: ", assisted.message());
      }
      std::string detail;
      if (!exit.insn_bytes.empty()) {
        detail = " instruction bytes: " +
                 absl::StrJoin(exit.insn_bytes, " ", [](std::string* out, uint8_t b) {
                   absl::StrAppendFormat(out, "%02x", b);
                 });
      }
      Fail(absl::StrFormat("KVM internal error, suberror %d%s;%s%s", exit.suberror, Where(),
                           detail.empty() ? " no instruction bytes reported" : detail, refused));
      return false;
    }
    case Kind::kFailEntry:
      Fail(absl::StrFormat("KVM_EXIT_FAIL_ENTRY, hardware reason 0x%x", exit.hardware_reason));
      return false;
    case Kind::kOther:
      Fail(absl::StrFormat("unexpected KVM exit reason %d", exit.raw_reason));
      return false;
  }
  return false;
}

}  // namespace vmm
