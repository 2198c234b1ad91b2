#include "vmm/seccomp_filter.h"

#include <linux/fs.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <seccomp.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <termios.h>

#include <cerrno>
#include <cstdlib>
#include <initializer_list>
#include <iterator>

#include "absl/base/internal/sysinfo.h"
#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "devices/vhost/vhost_uapi.h"
#include "vmm/kvm/kvm_uapi.h"

namespace vmm {
namespace {

// What every thread of a running VM does: memory management for the
// allocator, locks (futex), time, signals used to stop threads, reads and
// writes on eventfds and consoles, and leaving. sched_getparam and
// sched_getscheduler: a thread that queues on a contended absl::Mutex reads
// its own priority (pthread_getschedparam); a reset race with 2 vCPUs under
// hardware KVM (the nested lane) died of SIGSYS there. gettimeofday, time
// and clock_getres beside clock_gettime: the vDSO answers them without a
// system call only while the clocksource is one user space can read; when
// the kernel marks the TSC unstable (an L1 of the nested lane did, mid-run,
// and fell back to hpet) each becomes a real one — vmm died of SIGSYS in
// gettimeofday there.
constexpr int kCommonSyscalls[] = {
    SCMP_SYS(read),          SCMP_SYS(write),          SCMP_SYS(readv),
    SCMP_SYS(writev),        SCMP_SYS(close),          SCMP_SYS(futex),
    SCMP_SYS(mmap),          SCMP_SYS(munmap),         SCMP_SYS(mremap),
    SCMP_SYS(mprotect),      SCMP_SYS(madvise),        SCMP_SYS(brk),
    SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
    SCMP_SYS(clock_getres),  SCMP_SYS(gettimeofday),   SCMP_SYS(time),
    SCMP_SYS(sched_yield),   SCMP_SYS(gettid),         SCMP_SYS(getpid),
    SCMP_SYS(tgkill),        SCMP_SYS(rt_sigreturn),   SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(restart_syscall), SCMP_SYS(exit),         SCMP_SYS(exit_group),
    SCMP_SYS(epoll_ctl),     SCMP_SYS(fcntl),          SCMP_SYS(getrandom),
    SCMP_SYS(timerfd_settime), SCMP_SYS(timerfd_gettime), SCMP_SYS(fstat),
    SCMP_SYS(newfstatat),    SCMP_SYS(lseek),
    SCMP_SYS(sched_getparam), SCMP_SYS(sched_getscheduler),
};

// vCPU threads: COM1's chardev is written from the vCPU thread that wrote
// THR (poll: is stdout / the pty ready; sendto: a socket client). A
// vhost-user device's activation and reset are requests to its back-end
// (sendmsg with fds, recvmsg for the reply, poll for its deadline).
constexpr int kVcpuSyscalls[] = {
    SCMP_SYS(poll),
    SCMP_SYS(ppoll),
    SCMP_SYS(sendto),
    SCMP_SYS(sendmsg),
    SCMP_SYS(recvmsg),
};

// The signal thread: sigwait (rt_sigtimedwait); the rest is common.
constexpr int kSignalSyscalls[] = {
    SCMP_SYS(rt_sigtimedwait),
};

// The API thread: its own epoll loop, accepting and serving connections
// (libevent reads with readv after FIONREAD, writes with writev); and
// vm.snapshot, which writes the snapshot's files into the directory the
// client names (no socket, no exec, no new KVM objects).
constexpr int kApiSyscalls[] = {
    SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(accept4),   SCMP_SYS(accept),
    SCMP_SYS(recvfrom),   SCMP_SYS(sendto),      SCMP_SYS(shutdown),  SCMP_SYS(getsockopt),
    SCMP_SYS(mkdir),      SCMP_SYS(mkdirat),     SCMP_SYS(open),      SCMP_SYS(openat),
    SCMP_SYS(pwrite64),   SCMP_SYS(ftruncate),   SCMP_SYS(fsync),     SCMP_SYS(rename),
    SCMP_SYS(renameat),   SCMP_SYS(renameat2),   SCMP_SYS(unlink),    SCMP_SYS(unlinkat),
};

// The event-loop thread's device backends: block I/O, sockets (console,
// vsock), io_uring, waiting for events and for stop signals.
constexpr int kLoopSyscalls[] = {
    SCMP_SYS(epoll_wait),  SCMP_SYS(epoll_pwait), SCMP_SYS(pread64),   SCMP_SYS(pwrite64),
    SCMP_SYS(preadv),      SCMP_SYS(pwritev),     SCMP_SYS(preadv2),   SCMP_SYS(pwritev2),
    SCMP_SYS(fdatasync),   SCMP_SYS(fsync),       SCMP_SYS(fallocate), SCMP_SYS(accept4),
    SCMP_SYS(accept),      SCMP_SYS(connect),     SCMP_SYS(sendmsg),   SCMP_SYS(recvmsg),
    SCMP_SYS(sendto),      SCMP_SYS(recvfrom),    SCMP_SYS(shutdown),  SCMP_SYS(getsockopt),
    SCMP_SYS(unlink),      SCMP_SYS(io_uring_enter), SCMP_SYS(rt_sigtimedwait),
    SCMP_SYS(poll),        SCMP_SYS(ppoll),
};

// vCPU threads: their own ioctls, plus the VM-fd ioctls that device register
// writes cause (ioeventfd and irqfd wiring, MSI routes, IRQ lines).
constexpr unsigned long kVcpuIoctls[] = {
    KVM_RUN,
    KVM_GET_REGS,
    KVM_SET_REGS,
    KVM_GET_SREGS,
    KVM_SET_SREGS,
    KVM_GET_FPU,
    KVM_SET_FPU,
    kvm_uapi::kGetXsave,
    kvm_uapi::kSetXsave,
    KVM_GET_VCPU_EVENTS,
    KVM_SET_VCPU_EVENTS,
    KVM_GET_LAPIC,
    KVM_SET_LAPIC,
    KVM_GET_MP_STATE,
    kvm_uapi::kGetMsrs,
    KVM_TRANSLATE,
    KVM_IOEVENTFD,
    KVM_IRQFD,
    kvm_uapi::kSetGsiRouting,
    KVM_IRQ_LINE,
    // virtio-net activation mirrors the negotiated offloads to the tap.
    TUNSETOFFLOAD,
    TUNSETQUEUE,
    // vhost (vhost=on, backend=vhost): activation starts the kernel's rings,
    // reset stops them. Opening, SET_OWNER and GET_FEATURES happen before.
    vhost_uapi::kSetFeatures,
    vhost_uapi::kSetMemTable,
    vhost_uapi::kSetVringNum,
    vhost_uapi::kSetVringAddr,
    vhost_uapi::kSetVringBase,
    vhost_uapi::kGetVringBase,
    vhost_uapi::kSetVringKick,
    vhost_uapi::kSetVringCall,
    vhost_uapi::kNetSetBackend,
    vhost_uapi::kVsockSetRunning,
};

// The loop thread: device backends (terminal size, block-device discard,
// tap queues), tearing down the wiring, and the timeout report's RIPs.
constexpr unsigned long kLoopIoctls[] = {
    TCGETS,        TCSETS,       TCSETSW,  TCSETSF,      TIOCGWINSZ,
    BLKDISCARD,    BLKZEROOUT,   KVM_IOEVENTFD, KVM_IRQFD, kvm_uapi::kSetGsiRouting,
    KVM_IRQ_LINE,  KVM_GET_REGS, TUNSETOFFLOAD, TUNSETQUEUE,
    // vhost: a reset during teardown stops the kernel's rings.
    vhost_uapi::kGetVringBase, vhost_uapi::kSetVringKick, vhost_uapi::kSetVringCall,
    vhost_uapi::kNetSetBackend, vhost_uapi::kVsockSetRunning,
};

// The API thread: FIONREAD on its sockets; a pause reads the guest clock
// and a resume sets it; a snapshot reads every vCPU's state, the
// interrupt controllers and the PIT (vmm/snapshot.cc) — reads only.
constexpr unsigned long kApiIoctls[] = {
    FIONREAD,
    KVM_GET_CLOCK,
    KVM_SET_CLOCK,
    KVM_GET_MP_STATE,
    KVM_GET_REGS,
    KVM_GET_SREGS,
    kvm_uapi::kGetXsave,
    KVM_GET_XCRS,
    KVM_GET_DEBUGREGS,
    KVM_GET_LAPIC,
    KVM_GET_VCPU_EVENTS,
    kvm_uapi::kGetMsrs,
    kvm_uapi::kGetMsrIndexList,
    KVM_GET_IRQCHIP,
    KVM_GET_PIT2,
};

absl::Status Error(int rc, absl::string_view what) {
  return absl::ErrnoToStatus(-rc, absl::StrCat("seccomp: ", what));
}

absl::Status AllowAll(scmp_filter_ctx ctx, std::initializer_list<const int*> lists,
                      std::initializer_list<size_t> sizes) {
  auto size = sizes.begin();
  for (const int* list : lists) {
    for (size_t i = 0; i < *size; ++i) {
      // A name this kernel's architecture lacks resolves negative: skip it.
      if (list[i] < 0) continue;
      int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, list[i], 0);
      if (rc != 0) {
        char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, list[i]);
        absl::Status status = Error(rc, absl::StrCat("allowing ", name ? name : "?"));
        std::free(name);
        return status;
      }
    }
    ++size;
  }
  return absl::OkStatus();
}

template <size_t N>
absl::Status AllowIoctls(scmp_filter_ctx ctx, const unsigned long (&requests)[N]) {
  for (unsigned long request : requests) {
    // The request is an unsigned int in the kernel; compare the low 32 bits.
    int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                              SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, request & 0xffffffffu));
    if (rc != 0) return Error(rc, absl::StrCat("allowing ioctl 0x", absl::Hex(request)));
  }
  return absl::OkStatus();
}

}  // namespace

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

absl::Status InstallSeccompFilter(SeccompThread thread, SeccompMode mode) {
  if (mode == SeccompMode::kOff) return absl::OkStatus();
  // Abseil reads /sys the first time a Mutex is contended (how many CPUs
  // there are, to decide how long to spin) and caches the answer: ask now,
  // while files may still be opened.
  (void)absl::base_internal::NumCPUs();
  (void)absl::base_internal::NominalCPUFrequency();
  const uint32_t deny = mode == SeccompMode::kLog ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS;
  scmp_filter_ctx ctx = seccomp_init(deny);
  if (ctx == nullptr) return absl::InternalError("seccomp: seccomp_init failed");
  absl::Cleanup release = [ctx] { seccomp_release(ctx); };

  absl::Status status;
  switch (thread) {
    case SeccompThread::kVcpu:
      status = AllowAll(ctx, {kCommonSyscalls, kVcpuSyscalls},
                        {std::size(kCommonSyscalls), std::size(kVcpuSyscalls)});
      if (status.ok()) status = AllowIoctls(ctx, kVcpuIoctls);
      break;
    case SeccompThread::kLoop:
      status = AllowAll(ctx, {kCommonSyscalls, kLoopSyscalls},
                        {std::size(kCommonSyscalls), std::size(kLoopSyscalls)});
      if (status.ok()) status = AllowIoctls(ctx, kLoopIoctls);
      break;
    case SeccompThread::kSignal:
      status = AllowAll(ctx, {kCommonSyscalls, kSignalSyscalls},
                        {std::size(kCommonSyscalls), std::size(kSignalSyscalls)});
      break;
    case SeccompThread::kApi:
      status = AllowAll(ctx, {kCommonSyscalls, kApiSyscalls},
                        {std::size(kCommonSyscalls), std::size(kApiSyscalls)});
      if (status.ok()) status = AllowIoctls(ctx, kApiIoctls);
      break;
  }
  if (!status.ok()) return status;
  if (thread == SeccompThread::kLoop) {
    // vsock: a guest connection to host port P connects a new Unix socket to
    // "<path>_P". Unix sockets only: no network access of our own.
    if (int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                                  SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
        rc != 0) {
      return Error(rc, "allowing socket(AF_UNIX)");
    }
  }
  if (int rc = seccomp_load(ctx); rc != 0) return Error(rc, "loading the filter");
  return absl::OkStatus();
}

}  // namespace vmm
