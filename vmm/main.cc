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

#include "absl/synchronization/notification.h"
#include "vmm/cli.h"
#include "vmm/seccomp_filter.h"
#include "vmm/vmm.h"

namespace {

// Turns the terminating signals (see main) into Vm::RequestStop. They are
// blocked in every thread (the mask is set before the VM creates its
// threads, which inherit it) and taken synchronously by one thread in
// sigwait, so RequestStop runs in an ordinary thread context, not in a
// signal handler.
class SignalStopper {
 public:
  // The thread confines itself (seccomp `mode`) before it waits; `status()`
  // says whether that worked.
  SignalStopper(vmm::Vm& vm, const sigset_t& signals, vmm::SeccompMode mode)
      : vm_(vm), signals_(signals), mode_(mode), thread_([this] { Loop(); }) {
    confined_.WaitForNotification();
  }
  SignalStopper(const SignalStopper&) = delete;
  SignalStopper& operator=(const SignalStopper&) = delete;

  ~SignalStopper() {
    done_.store(true);
    // A signal aimed at the thread wakes its sigwait; `done_` makes it a no-op.
    pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }

  const absl::Status& status() const { return status_; }

 private:
  void Loop() {
    // Every thread of a running VM is under a filter, this one too: it only
    // waits for signals and asks the VM to stop.
    status_ = vmm::InstallSeccompFilter(vmm::SeccompThread::kSignal, mode_);
    confined_.Notify();
    if (!status_.ok()) return;
    while (true) {
      int signal_number = 0;
      if (sigwait(&signals_, &signal_number) != 0) continue;
      if (done_.load()) return;
      vm_.RequestStop();
    }
  }

  vmm::Vm& vm_;
  const sigset_t signals_;
  const vmm::SeccompMode mode_;
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

  // Block before Vm::Create starts any thread; a Ctrl-C during creation stays
  // pending and stops the guest as soon as the stopper is waiting.
  // Every catchable signal whose default would kill vmm takes this one clean
  // path (the terminal restored, socket files removed, exit 130), not just
  // Ctrl-C and SIGTERM: a closed terminal (HUP), Ctrl-\ (QUIT), a stray
  // kill -USR1 or alarm.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  for (int signal_number : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM}) {
    sigaddset(&stop_signals, signal_number);
  }
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const vmm::SeccompMode seccomp = vmm::EffectiveSeccompMode(request->config.seccomp);
  absl::StatusOr<std::unique_ptr<vmm::Vm>> vm = vmm::Vm::Create(std::move(request->config));
  if (!vm.ok()) {
    PrintLine(stderr, vmm::cli::ErrorLine(vm.status()));
    return vmm::cli::ExitCodeForError(vm.status());
  }

  // Once the guest runs, this thread (the event loop) can only do what
  // running this VM needs. The signal thread below only waits in sigwait.
  (*vm)->ConfineRunThread();

  vmm::ExitStatus status;
  {
    SignalStopper stopper(**vm, stop_signals, seccomp);
    if (!stopper.status().ok()) {
      PrintLine(stderr, vmm::cli::ErrorLine(stopper.status()));
      return vmm::cli::kExitVmmFailure;
    }
    status = (*vm)->Run();
  }
  if (request->print_stats) PrintLine(stderr, vmm::cli::StatsLine((*vm)->stats()));
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
  return status.ProcessExitCode();
}
