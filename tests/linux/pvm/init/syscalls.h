// Raw x86-64 Linux system calls for the boot suite's libc-free init: glibc's
// SSE/AVX string routines cannot run under this platform's instruction
// emulator (shared/PLATFORM.md), so init carries its own few calls.
#ifndef TESTS_LINUX_INIT_SYSCALLS_H_
#define TESTS_LINUX_INIT_SYSCALLS_H_

typedef unsigned long size_t;
typedef long ssize_t;

enum {
  SYS_read = 0, SYS_write = 1, SYS_close = 3, SYS_pread64 = 17,
  SYS_pwrite64 = 18, SYS_nanosleep = 35, SYS_exit = 60, SYS_fsync = 74,
  SYS_sync = 162, SYS_mount = 165, SYS_reboot = 169, SYS_getdents64 = 217,
  SYS_openat = 257, SYS_mkdirat = 258, SYS_readlinkat = 267,
  SYS_finit_module = 313,
};

enum {
  AT_FDCWD = -100,
  O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_DIRECTORY = 0200000,
  O_CLOEXEC = 02000000,
  EEXIST = 17,
  LINUX_REBOOT_MAGIC1 = 0xfee1dead, LINUX_REBOOT_MAGIC2 = 672274793,
  LINUX_REBOOT_CMD_RESTART = 0x01234567,
  LINUX_REBOOT_CMD_POWER_OFF = 0x4321fedc,
};

static inline long syscall6(long n, long a, long b, long c, long d, long e,
                            long f) {
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#define SYSCALL(n, a, b, c, d, e, f) \
  syscall6((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

static inline ssize_t sys_read(int fd, void* buf, size_t n) {
  return SYSCALL(SYS_read, fd, buf, n, 0, 0, 0);
}
static inline ssize_t sys_write(int fd, const void* buf, size_t n) {
  return SYSCALL(SYS_write, fd, buf, n, 0, 0, 0);
}
static inline ssize_t sys_pread(int fd, void* buf, size_t n, long off) {
  return SYSCALL(SYS_pread64, fd, buf, n, off, 0, 0);
}
static inline ssize_t sys_pwrite(int fd, const void* buf, size_t n, long off) {
  return SYSCALL(SYS_pwrite64, fd, buf, n, off, 0, 0);
}
static inline int sys_open(const char* path, int flags) {
  return (int)SYSCALL(SYS_openat, AT_FDCWD, path, flags | O_CLOEXEC, 0, 0, 0);
}
static inline int sys_close(int fd) { return (int)SYSCALL(SYS_close, fd, 0, 0, 0, 0, 0); }
static inline int sys_fsync(int fd) { return (int)SYSCALL(SYS_fsync, fd, 0, 0, 0, 0, 0); }
static inline void sys_sync(void) { SYSCALL(SYS_sync, 0, 0, 0, 0, 0, 0); }
static inline int sys_mkdir(const char* path, int mode) {
  return (int)SYSCALL(SYS_mkdirat, AT_FDCWD, path, mode, 0, 0, 0);
}
static inline int sys_mount(const char* src, const char* target,
                            const char* type, unsigned long flags,
                            const void* data) {
  return (int)SYSCALL(SYS_mount, src, target, type, flags, data, 0);
}
static inline int sys_finit_module(int fd, const char* params, int flags) {
  return (int)SYSCALL(SYS_finit_module, fd, params, flags, 0, 0, 0);
}
static inline ssize_t sys_readlink(const char* path, char* buf, size_t n) {
  return SYSCALL(SYS_readlinkat, AT_FDCWD, path, buf, n, 0, 0);
}
struct timespec_raw { long sec, nsec; };
static inline int sys_nanosleep(long sec, long nsec) {
  struct timespec_raw ts = {sec, nsec};
  return (int)SYSCALL(SYS_nanosleep, &ts, 0, 0, 0, 0, 0);
}
static inline int sys_reboot(unsigned cmd) {
  return (int)SYSCALL(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
                      cmd, 0, 0, 0);
}
static inline __attribute__((noreturn)) void sys_exit(int code) {
  for (;;) SYSCALL(SYS_exit, code, 0, 0, 0, 0, 0);
}

#endif  // TESTS_LINUX_INIT_SYSCALLS_H_
