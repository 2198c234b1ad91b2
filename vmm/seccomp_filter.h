// seccomp-bpf filters for the threads of a running VM, built with libseccomp
// from allow-lists of what each thread class actually does once the guest
// runs (Firecracker's model: everything that opens files, creates KVM objects
// or maps memory happens before, while building the machine).
//
// Thread classes:
//   kVcpu  KVM_RUN and the vCPU ioctls; the bus handlers it calls (device
//          registers, so also ioeventfd/irqfd/GSI-route wiring on the VM fd
//          and device activation); console output; waking other threads.
//   kLoop  the thread in Vm::Run(): the event loop with every device's
//          backend I/O (disk reads and writes, fdatasync, tap, sockets,
//          getrandom, timers), stdin, and the VM's teardown after Run.
//   kSignal  the vmm binary's signal thread: it waits in sigwait and asks
//          the VM to stop (a mutex, an eventfd write), nothing else.
//   kApi   the API socket's thread (vmm/api/api_server.h): accepting and
//          serving its Unix-socket connections, and what the requests do to
//          the VM (stop, shutdown, pause and resume: vCPU kicks, the guest
//          clock's KVM_GET_CLOCK/KVM_SET_CLOCK, timers; a snapshot: the
//          KVM_GET_* of the vCPUs and VM, creating and writing its files).
//          No socket, no exec, no KVM object created or changed but the clock.
//
// A filter is per thread and inherited by threads the filtered thread starts
// later. Disallowed calls kill the whole process (SIGSYS) in kEnforce, or are
// allowed and logged by the kernel (audit / dmesg "type=1326") in kLog.
#ifndef VMM_VMM_SECCOMP_FILTER_H_
#define VMM_VMM_SECCOMP_FILTER_H_

#include "absl/status/status.h"
#include "vmm/vmm.h"

namespace vmm {

enum class SeccompThread { kVcpu, kLoop, kSignal, kApi };

// `mode` as this build can honour it: sanitizer runtimes make system calls of
// their own (LeakSanitizer's thread at exit, shadow memory), so their builds
// log instead of killing.
SeccompMode EffectiveSeccompMode(SeccompMode mode);

// Installs the allow-list of `thread` on the calling thread (no-op for
// SeccompMode::kOff). Irreversible. Fails if the kernel or libseccomp
// refuses; the caller then must not run the guest unconfined silently.
absl::Status InstallSeccompFilter(SeccompThread thread, SeccompMode mode);

}  // namespace vmm

#endif  // VMM_VMM_SECCOMP_FILTER_H_
