// The `vmm` command: parse flags, build the VM, run it, exit with the code the
// way it ended calls for. Everything decided here lives in vmm/cli.h and the
// library; this file only wires them to the process (stdio, signals).
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "base/lock_checks.h"
#include "vmm/cli.h"
#include "vmm/host_root/host_root.h"
#include "vmm/seccomp_filter.h"
#include "vmm/vmm.h"

namespace {

// Turns the terminating signals (see main) into a stop: during start-up
// they cancel it (Vm::Create gives up and unwinds), once the VM exists they
// call Vm::RequestStop (the first SIGTERM Vm::RequestShutdown). They are blocked in every thread (the mask is set
// before anything creates a thread, and threads inherit it) and taken
// synchronously by one thread in sigwait, so the stop runs in an ordinary
// thread context, not in a signal handler.
class SignalStopper {
 public:
  // The thread confines itself (seccomp `mode`) before it waits for
  // signals, beside the start-up rather than ahead of it: building the
  // filter and abseil's first look at the machine (its CPU count and, with
  // no tsc_freq_khz in sysfs, a TSC measurement that sleeps 1 ms then 2 ms)
  // took 3-5 ms of exec -> guest on the main thread (issue 16). Signals that
  // come meanwhile stay pending until its sigwait. WaitConfined() says
  // whether that worked; main asks before the guest runs.
  SignalStopper(const sigset_t& signals, vmm::SeccompMode mode, vmm::Cancellation& startup)
      : signals_(signals), mode_(mode), startup_(startup), thread_([this] { Loop(); }) {}
  SignalStopper(const SignalStopper&) = delete;
  SignalStopper& operator=(const SignalStopper&) = delete;

  ~SignalStopper() {
    done_.store(true);
    // A signal aimed at the thread wakes its sigwait; `done_` makes it a no-op.
    pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }

  const absl::Status& WaitConfined() const {
    confined_.WaitForNotification();
    return status_;
  }

  // From now on a stop signal stops `vm` (which must outlive this object);
  // one that came while Vm::Create was finishing stops it at once.
  void Attach(vmm::Vm& vm) {
    absl::MutexLock lock(&mu_);
    vm_ = &vm;
    if (startup_.cancelled()) vm.RequestStop();
  }

 private:
  void Loop() {
    // Every thread is under a filter, this one too: it only waits for
    // signals and cancels start-up or asks the VM to stop.
    status_ = vmm::InstallSeccompFilter(vmm::SeccompThread::kSignal, mode_);
    confined_.Notify();
    if (!status_.ok()) return;
    while (true) {
      int signal_number = 0;
      if (sigwait(&signals_, &signal_number) != 0) continue;
      if (done_.load()) return;
      absl::MutexLock lock(&mu_);
      if (vm_ != nullptr) {
        // The first SIGTERM asks the guest to shut down (its power button,
        // VmConfig::shutdown_grace); any other stop signal, or a second
        // SIGTERM, stops it at once.
        if (signal_number == SIGTERM && !shutdown_requested_) {
          shutdown_requested_ = true;
          vm_->RequestShutdown();
        } else {
          vm_->RequestStop();
        }
      } else {
        const char* name = sigabbrev_np(signal_number);
        startup_.Cancel(absl::StrCat("start-up interrupted by SIG", name ? name : "?"));
      }
    }
  }

  const sigset_t signals_;
  const vmm::SeccompMode mode_;
  vmm::Cancellation& startup_;
  absl::Mutex mu_;
  vmm::Vm* vm_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool shutdown_requested_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> done_{false};
  absl::Notification confined_;
  absl::Status status_;  // written before confined_ is notified
  std::thread thread_;  // last: starts after the members it reads exist
};

void PrintLine(std::FILE* stream, const std::string& line) {
  std::fprintf(stream, "%s\n", line.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  vmm::SetLockChecksFromEnvironment();  // off unless VMM_LOCK_CHECKS (the tests)
  absl::StatusOr<vmm::cli::CliRequest> request = vmm::cli::ParseCommandLine(argc, argv);
  if (!request.ok()) {
    PrintLine(stderr, vmm::cli::UsageErrorLine(request.status()));
    return vmm::cli::kExitUsage;
  }
  switch (request->action) {
    case vmm::cli::CliRequest::Action::kPrintHelp:
      std::fputs(vmm::cli::HelpText().c_str(), stdout);
      return 0;
    case vmm::cli::CliRequest::Action::kPrintVersion:
      std::fputs(vmm::cli::VersionText().c_str(), stdout);
      return 0;
    case vmm::cli::CliRequest::Action::kPrintDeviceHelp:
      std::fputs(request->device_help.c_str(), stdout);
      return 0;
    case vmm::cli::CliRequest::Action::kRun:
      break;
  }

  // A console reader that goes away (`vmm ... | head`) must not kill the VMM
  // mid-write: the UART output then fails quietly and the guest runs on.
  signal(SIGPIPE, SIG_IGN);

  // Blocked before any thread exists (threads inherit the mask), so that
  // only the stopper's sigwait takes them. Every catchable signal whose
  // default would kill vmm takes this one clean path (the terminal restored,
  // socket files removed, exit 130; SIGTERM first asks the guest to shut
  // down), not just Ctrl-C and SIGTERM: a closed terminal (HUP), Ctrl-\ (QUIT),
  // a stray kill -USR1 or alarm.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  for (int signal_number : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM}) {
    sigaddset(&stop_signals, signal_number);
  }
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  absl::StatusOr<std::unique_ptr<vmm::Cancellation>> startup = vmm::Cancellation::Create();
  if (!startup.ok()) {
    PrintLine(stderr, vmm::cli::ErrorLine(startup.status()));
    return vmm::cli::kExitVmmFailure;
  }
  // --host-root's virtiofsd processes and initramfs: declared before the VM,
  // so they outlive it (its virtio-fs devices hang up first).
  std::unique_ptr<vmm::host_root::HostRoot> host_root;
  if (request->host_root.enabled) {
    absl::StatusOr<std::unique_ptr<vmm::host_root::HostRoot>> prepared =
        vmm::host_root::HostRoot::Prepare(request->host_root, &request->config);
    if (!prepared.ok()) {
      PrintLine(stderr, vmm::cli::ErrorLine(prepared.status()));
      return vmm::cli::ExitCodeForError(prepared.status());
    }
    host_root = *std::move(prepared);
  }
  // Declared before the stopper, so destroyed after it: the stopper's thread
  // never sees a dead VM.
  std::unique_ptr<vmm::Vm> vm;
  const vmm::SeccompMode seccomp = vmm::EffectiveSeccompMode(request->config.seccomp);
  SignalStopper stopper(stop_signals, seccomp, **startup);
  // A stop signal now cancels start-up: Create unwinds (socket files
  // removed, the terminal restored) and vmm exits 130 with one line.
  absl::StatusOr<std::unique_ptr<vmm::Vm>> created =
      vmm::Vm::Create(std::move(request->config), startup->get());
  // Every thread is under its filter before the guest runs.
  if (const absl::Status& confined = stopper.WaitConfined(); !confined.ok()) {
    PrintLine(stderr, vmm::cli::ErrorLine(confined));
    return vmm::cli::kExitVmmFailure;
  }
  if (!created.ok()) {
    PrintLine(stderr, vmm::cli::ErrorLine(created.status()));
    return vmm::cli::ExitCodeForError(created.status());
  }
  vm = *std::move(created);
  if (host_root) host_root->VmCreated();
  stopper.Attach(*vm);

  // Once the guest runs, this thread (the event loop) can only do what
  // running this VM needs.
  vm->ConfineRunThread();
  const vmm::ExitStatus status = vm->Run();
  if (request->print_stats) {
    PrintLine(stderr, vmm::cli::StatsLine(vm->stats()));
    for (const vmm::DeviceInfo& device : vm->devices()) {
      PrintLine(stderr, vmm::cli::DeviceStatsLine(device));
    }
  }
  if (status.reason == vmm::ExitStatus::Reason::kTimeout ||
      status.reason == vmm::ExitStatus::Reason::kGuestPanic) {
    PrintLine(stderr, "vmm: " + status.message);
  }
  // A reset the guest did not ask for (a triple fault) still exits 0, as
  // hardware would reset, but never silently.
  if (status.reason == vmm::ExitStatus::Reason::kReset && status.triple_fault) {
    PrintLine(stderr, "vmm: the guest reset after a " + status.message);
  }
  if (status.reason == vmm::ExitStatus::Reason::kError) {
    PrintLine(stderr, vmm::cli::ErrorLine(absl::InternalError(
                          status.message.empty() ? "the VM failed" : status.message)));
  }
  if (host_root) {
    std::string message;
    const int code = vmm::host_root::HostRoot::ExitCode(status, &message);
    if (!message.empty()) PrintLine(stderr, "vmm: " + message);
    return code;
  }
  return status.ProcessExitCode();
}
