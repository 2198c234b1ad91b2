// /init of a --host-root guest (vmm/host_root/host_root.h): a static
// program of our own that vmm puts in the initramfs it writes. It loads the
// kernel modules vmm packed (virtio-pci, virtio-fs, overlayfs...), mounts
// the host's root (virtio-fs tag "vmmroot", read-only) under a tmpfs
// overlay, the --rw directories (tags "vmmrw<N>") read-write at their own
// paths, switches into that root, runs the command on the virtio console
// (hvc0, vmm's stdio; the kernel's messages and this init's own lines stay
// on ttyS0) in the host's working directory, and reports its exit status to
// vmm through the debug-exit port, then powers off.
//
// What to do comes from /vmm/config: NUL-separated "key=value" records,
// written by vmm (host_root.cc): module=FILE (in /vmm/modules, in load
// order), arg=ARG (the command, in order), cwd=, env=NAME=VALUE, rw=TAG:DIR,
// uid=, gid=, stdin_tty=0|1, stdout_tty=0|1, verbose=0|1.
//
// The status word written to port 0x501 is kExitMagic | status: the
// command's exit status (0..255, 128 + N for a signal N), or
// kInitFailed | reason when the init itself could not run the command
// (vmm then exits 125 with this init's line on the console).
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define EXIT_PORT 0x501
#define EXIT_MAGIC 0x484f0000u  // "HO" << 16: a --host-root status word
#define INIT_FAILED 0x100u
#define MAX_RECORDS 4096

static char config[1 << 20];
static const char* records[MAX_RECORDS];
static int record_count;
static int verbose;

static void vsay(const char* fmt, va_list ap) {
  fputs("vmm-init: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}

static void say(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsay(fmt, ap);
  va_end(ap);
}

static void report(unsigned status) {
  sync();
  if (ioperm(EXIT_PORT, 4, 1) == 0) outl(EXIT_MAGIC | status, EXIT_PORT);
  reboot(RB_POWER_OFF);
  for (;;) pause();
}

// The init could not run the command: one line saying why, then vmm exits 125.
static void fail(unsigned reason, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsay(fmt, ap);
  va_end(ap);
  report(INIT_FAILED | reason);
}

static const char* value(const char* key) {
  const size_t n = strlen(key);
  for (int i = 0; i < record_count; ++i) {
    if (strncmp(records[i], key, n) == 0 && records[i][n] == '=') return records[i] + n + 1;
  }
  return NULL;
}

static void read_config(void) {
  int fd = open("/vmm/config", O_RDONLY);
  if (fd < 0) fail(1, "no /vmm/config: %s", strerror(errno));
  ssize_t size = read(fd, config, sizeof(config) - 1);
  close(fd);
  if (size <= 0) fail(1, "cannot read /vmm/config");
  for (ssize_t at = 0; at < size && record_count < MAX_RECORDS;) {
    records[record_count++] = config + at;
    at += (ssize_t)strlen(config + at) + 1;
  }
  const char* v = value("verbose");
  verbose = v != NULL && strcmp(v, "1") == 0;
}

static void mount_or_fail(const char* source, const char* target, const char* type,
                          unsigned long flags, const char* data) {
  mkdir(target, 0755);
  if (mount(source, target, type, flags, data) != 0) {
    fail(2, "cannot mount %s (%s) on %s: %s", source, type, target, strerror(errno));
  }
}

static void load_modules(void) {
  for (int i = 0; i < record_count; ++i) {
    if (strncmp(records[i], "module=", 7) != 0) continue;
    char path[512];
    snprintf(path, sizeof(path), "/vmm/modules/%s", records[i] + 7);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(3, "cannot open %s: %s", path, strerror(errno));
    if (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST) {
      fail(3, "cannot load the kernel module %s: %s", records[i] + 7, strerror(errno));
    }
    close(fd);
    if (verbose) say("loaded %s", records[i] + 7);
  }
}

// virtio-fs devices appear as their driver probes them: retry for a while.
static int mount_virtiofs(const char* tag, const char* target, unsigned long flags) {
  mkdir(target, 0755);
  for (int tries = 0; tries < 100; ++tries) {
    if (mount(tag, target, "virtiofs", flags, NULL) == 0) return 0;
    if (errno != ENOENT && errno != ENODEV && errno != ENXIO && errno != EINVAL) break;
    usleep(50000);
  }
  return -1;
}

// mkdir -p, inside whatever root is current.
static void make_path(const char* path) {
  char buf[4096];
  snprintf(buf, sizeof(buf), "%s", path);
  for (char* p = buf + 1; *p; ++p) {
    if (*p != '/') continue;
    *p = '\0';
    mkdir(buf, 0755);
    *p = '/';
  }
  mkdir(buf, 0755);
}

static void set_up_root(void) {
  if (mount_virtiofs("vmmroot", "/vmm/lower", MS_RDONLY) != 0) {
    fail(2, "cannot mount the host's root (virtio-fs tag vmmroot): %s", strerror(errno));
  }
  mount_or_fail("tmpfs", "/vmm/rw", "tmpfs", 0, "mode=0755");
  mkdir("/vmm/rw/upper", 0755);
  mkdir("/vmm/rw/work", 0755);
  mount_or_fail("overlay", "/vmm/root", "overlay", 0,
                "lowerdir=/vmm/lower,upperdir=/vmm/rw/upper,workdir=/vmm/rw/work");
  mount_or_fail("proc", "/vmm/root/proc", "proc", 0, NULL);
  mount_or_fail("sysfs", "/vmm/root/sys", "sysfs", 0, NULL);
  mount_or_fail("devtmpfs", "/vmm/root/dev", "devtmpfs", 0, NULL);
  mount_or_fail("devpts", "/vmm/root/dev/pts", "devpts", 0, "gid=5,mode=620,ptmxmode=666");
  mount_or_fail("tmpfs", "/vmm/root/dev/shm", "tmpfs", 0, "mode=1777");
  mount_or_fail("tmpfs", "/vmm/root/tmp", "tmpfs", 0, "mode=1777");
  mount_or_fail("tmpfs", "/vmm/root/run", "tmpfs", 0, "mode=0755");
  if (chdir("/vmm/root") != 0 || mount(".", "/", NULL, MS_MOVE, NULL) != 0 ||
      chroot(".") != 0 || chdir("/") != 0) {
    fail(2, "cannot switch to the new root: %s", strerror(errno));
  }
  for (int i = 0; i < record_count; ++i) {
    if (strncmp(records[i], "rw=", 3) != 0) continue;
    char tag[64];
    const char* colon = strchr(records[i] + 3, ':');
    if (colon == NULL || colon - (records[i] + 3) >= (long)sizeof(tag)) continue;
    snprintf(tag, sizeof(tag), "%.*s", (int)(colon - (records[i] + 3)), records[i] + 3);
    make_path(colon + 1);
    if (mount_virtiofs(tag, colon + 1, 0) != 0) {
      fail(2, "cannot mount %s read-write (virtio-fs tag %s): %s", colon + 1, tag,
           strerror(errno));
    }
  }
}

// The first /dev/vport<N>p<port>: the virtio console's plain ports, when
// vmm's stdin is not a terminal (port 0 the output, port 1 the input).
static int open_vport(const char* port, int flags) {
  DIR* dev = opendir("/dev");
  if (dev == NULL) return -1;
  int fd = -1;
  for (struct dirent* e; fd < 0 && (e = readdir(dev)) != NULL;) {
    const size_t n = strlen(e->d_name);
    if (strncmp(e->d_name, "vport", 5) == 0 && n > 2 && strcmp(e->d_name + n - 2, port) == 0) {
      char path[300];
      snprintf(path, sizeof(path), "/dev/%s", e->d_name);
      fd = open(path, flags);
    }
  }
  closedir(dev);
  return fd;
}

// The command's stdin/stdout/stderr: the virtio console, as its driver
// probes it — hvc0 (a terminal) or the plain port (a byte stream whose
// reader sees the end of vmm's stdin).
static void set_up_console(void) {
  setsid();
  const char* kind = value("console");
  const int vport = kind != NULL && strcmp(kind, "vport") == 0;
  int fd = -1, in = -1;
  for (int tries = 0; tries < 100 && (fd < 0 || (vport && in < 0)); ++tries) {
    if (fd < 0) fd = vport ? open_vport("p0", O_WRONLY) : open("/dev/hvc0", O_RDWR);
    if (vport && in < 0) in = open_vport("p1", O_RDONLY);
    if (fd < 0 || (vport && in < 0)) usleep(50000);
  }
  if (fd < 0 || (vport && in < 0)) {
    fail(4, "cannot open %s (the virtio console): %s",
         vport ? "/dev/vport*p0 and p1" : "/dev/hvc0", strerror(errno));
  }
  if (vport) {
    // The input port's end is vmm's stdin's (its host end closes).
    dup2(in, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    if (in > 2) close(in);
    if (fd > 2) close(fd);
    return;
  }
  dup2(fd, 0);
  dup2(fd, 1);
  dup2(fd, 2);
  if (fd > 2) close(fd);
  ioctl(0, TIOCSCTTY, 1);
  struct termios t;
  if (tcgetattr(0, &t) == 0) {
    // A pipe on the host side wants the bytes as they are: no echo of its
    // input, no "\r\n" for "\n".
    const char* in_tty = value("stdin_tty");
    const char* out_tty = value("stdout_tty");
    if (in_tty == NULL || strcmp(in_tty, "1") != 0) t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    if (out_tty == NULL || strcmp(out_tty, "1") != 0) t.c_oflag &= ~(tcflag_t)OPOST;
    tcsetattr(0, TCSANOW, &t);
  }
}

int main(void) {
  mkdir("/dev", 0755);
  mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
  read_config();
  load_modules();
  set_up_root();
  set_up_console();

  char* argv[MAX_RECORDS + 1];
  int argc = 0;
  clearenv();
  for (int i = 0; i < record_count; ++i) {
    if (strncmp(records[i], "arg=", 4) == 0) argv[argc++] = (char*)records[i] + 4;
    if (strncmp(records[i], "env=", 4) == 0) putenv((char*)records[i] + 4);
  }
  argv[argc] = NULL;
  if (argc == 0) fail(1, "no command");
  const char* cwd = value("cwd");
  if (cwd == NULL || chdir(cwd) != 0) {
    say("cannot enter %s in the guest (%s): running in /", cwd ? cwd : "(none)",
        strerror(errno));
    if (chdir("/") != 0) fail(2, "cannot enter /");
  }
  const char* uid = value("uid");
  const char* gid = value("gid");
  pid_t child = fork();
  if (child < 0) fail(5, "fork: %s", strerror(errno));
  if (child == 0) {
    if (gid != NULL && (setgroups(0, NULL) != 0 || setgid((gid_t)atol(gid)) != 0)) {
      say("cannot become group %s: %s", gid, strerror(errno));
      _exit(126);
    }
    if (uid != NULL && setuid((uid_t)atol(uid)) != 0) {
      say("cannot become user %s: %s", uid, strerror(errno));
      _exit(126);
    }
    execvp(argv[0], argv);
    const int e = errno;
    say("%s: %s", argv[0], strerror(e));
    _exit(e == ENOENT ? 127 : 126);
  }
  // PID 1 also reaps whatever the command left behind.
  int status = 0;
  for (;;) {
    const pid_t pid = waitpid(-1, &status, 0);
    if (pid == child) break;
    if (pid < 0 && errno != EINTR) fail(5, "waitpid: %s", strerror(errno));
  }
  unsigned code = WIFEXITED(status) ? (unsigned)WEXITSTATUS(status)
                                    : 128u + (unsigned)WTERMSIG(status);
  report(code & 0xff);
  return 0;
}
