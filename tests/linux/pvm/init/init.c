// The Linux boot suite's /init: libc-free (raw syscalls, general registers
// only) because this platform's instruction emulator runs no SSE/AVX.
//
// It mounts devtmpfs, proc and sysfs, loads the modules listed in
// /lib/modules/load-order with finit_module (passing "<module>.<param>=..."
// fragments of the kernel command line, as modprobe would), then:
//   linux_test=disks (default): reads the host's pattern from /dev/vda and
//     /dev/vdb, writes its answer behind it, fsyncs, reports the online CPUs;
//   linux_test=panic: crashes the kernel through /proc/sysrq-trigger.
// Every result is a "linux-init: ..." line on the console; a failed check is
// "linux-init: FAIL: ...". It finishes with reboot(POWER_OFF) when ACPI is
// present, else reboot(RESTART) (vmm reports both as exit 0).
#include "disk_pattern.h"
#include "syscalls.h"

// GCC may emit calls to these even in freestanding code.
void* memset(void* d, int c, size_t n) {
  unsigned char* p = d;
  while (n--) *p++ = (unsigned char)c;
  return d;
}
void* memcpy(void* d, const void* s, size_t n) {
  unsigned char* p = d;
  const unsigned char* q = s;
  while (n--) *p++ = *q++;
  return d;
}

static size_t str_len(const char* s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}
static int starts_with(const char* s, const char* prefix) {
  while (*prefix)
    if (*s++ != *prefix++) return 0;
  return 1;
}
static int contains(const char* s, const char* needle) {
  for (; *s; s++)
    if (starts_with(s, needle)) return 1;
  return 0;
}

// --- console ---------------------------------------------------------------
static char line[512];
static size_t line_len;
static int failures;

static void put(const char* s) {
  while (*s && line_len < sizeof(line) - 1) line[line_len++] = *s++;
}
static void put_num(long v) {
  char buf[24];
  int i = 0;
  unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
  do buf[i++] = (char)('0' + u % 10); while ((u /= 10) && i < 23);
  if (v < 0) put("-");
  while (i) {
    char c[2] = {buf[--i], 0};
    put(c);
  }
}
static void begin(void) { line_len = 0; put("linux-init: "); }
static void end(void) {
  line[line_len++] = '\n';
  sys_write(1, line, line_len);
  line_len = 0;
}
static void say(const char* s) { begin(); put(s); end(); }
static void fail(const char* what, long err) {
  failures++;
  begin();
  put("FAIL: ");
  put(what);
  if (err) { put(" (error "); put_num(err); put(")"); }
  end();
}

// --- kernel command line ---------------------------------------------------
static char cmdline[4096];

static void read_cmdline(void) {
  int fd = sys_open("/proc/cmdline", O_RDONLY);
  if (fd < 0) { fail("open /proc/cmdline", fd); return; }
  ssize_t n = sys_read(fd, cmdline, sizeof(cmdline) - 1);
  sys_close(fd);
  cmdline[n > 0 ? n : 0] = 0;
  for (ssize_t i = 0; i < n; i++)
    if (cmdline[i] == '\n') cmdline[i] = 0;
}

// Copies the value of "key=" from the command line into out ("" if absent).
static void cmdline_value(const char* key, char* out, size_t cap) {
  size_t klen = str_len(key);
  out[0] = 0;
  for (const char* p = cmdline; *p;) {
    while (*p == ' ') p++;
    if (starts_with(p, key) && p[klen] == '=') {
      size_t i = 0;
      for (p += klen + 1; *p && *p != ' ' && i + 1 < cap; p++) out[i++] = *p;
      out[i] = 0;
      return;
    }
    while (*p && *p != ' ') p++;
  }
}

// Collects "<module>.<param>=<value>" tokens as "<param>=<value> ...", the
// way modprobe passes kernel command-line options to a module it loads.
static void module_params(const char* module, char* out, size_t cap) {
  size_t mlen = str_len(module), o = 0;
  for (const char* p = cmdline; *p;) {
    while (*p == ' ') p++;
    const char* tok = p;
    while (*p && *p != ' ') p++;
    size_t i = 0;
    for (; i < mlen && tok + i < p; i++) {
      char a = tok[i] == '-' ? '_' : tok[i], b = module[i] == '-' ? '_' : module[i];
      if (a != b) break;
    }
    if (i != mlen || tok + mlen >= p || tok[mlen] != '.') continue;
    if (o && o + 1 < cap) out[o++] = ' ';
    for (const char* q = tok + mlen + 1; q < p && o + 1 < cap; q++) out[o++] = *q;
  }
  out[o] = 0;
}

// --- modules ---------------------------------------------------------------
static char load_order[1024];

static void load_modules(void) {
  int fd = sys_open("/lib/modules/load-order", O_RDONLY);
  if (fd < 0) { fail("open /lib/modules/load-order", fd); return; }
  ssize_t n = sys_read(fd, load_order, sizeof(load_order) - 1);
  sys_close(fd);
  load_order[n > 0 ? n : 0] = 0;
  for (char* p = load_order; *p;) {
    char* name = p;
    while (*p && *p != '\n') p++;
    if (*p) *p++ = 0;
    if (!*name) continue;
    char path[128] = "/lib/modules/";
    size_t l = str_len(path);
    for (const char* q = name; *q && l < sizeof(path) - 4; q++) path[l++] = *q;
    memcpy(path + l, ".ko", 4);
    static char params[1024];
    module_params(name, params, sizeof(params));
    int mfd = sys_open(path, O_RDONLY);
    if (mfd < 0) { fail(path, mfd); continue; }
    int r = sys_finit_module(mfd, params, 0);
    sys_close(mfd);
    if (r < 0 && r != -EEXIST) {
      begin(); put("module "); put(name); end();
      fail("finit_module", r);
      continue;
    }
    begin(); put("loaded "); put(name);
    if (params[0]) { put(" "); put(params); }
    end();
  }
}

// --- disks -----------------------------------------------------------------
static unsigned char region[DISK_REGION_BYTES];

static int exists(const char* path) {
  int fd = sys_open(path, O_RDONLY);
  if (fd < 0) return 0;
  sys_close(fd);
  return 1;
}

// Which transport a block device sits on, from its sysfs path.
static const char* transport_of(const char* name) {
  char sys[64] = "/sys/block/", target[256];
  memcpy(sys + 11, name, str_len(name) + 1);
  ssize_t n = sys_readlink(sys, target, sizeof(target) - 1);
  if (n < 0) return "unknown";
  target[n] = 0;
  begin(); put(name); put(" is "); put(target); end();
  if (contains(target, "/pci")) return "pci";
  if (contains(target, "mmio") || contains(target, "LNRO0005")) return "mmio";
  return "unknown";
}

static void check_disk(const char* name) {
  char dev[32] = "/dev/";
  memcpy(dev + 5, name, str_len(name) + 1);
  // Bounded wait: the drivers probe asynchronously to init.
  for (int i = 0; i < 600 && !exists(dev); i++) sys_nanosleep(0, 100000000);
  int fd = sys_open(dev, O_RDWR);
  if (fd < 0) { fail(dev, fd); return; }
  const char* transport = transport_of(name);
  ssize_t n = sys_pread(fd, region, DISK_REGION_BYTES, 0);
  if (n != DISK_REGION_BYTES) { fail("read the host's pattern", n); sys_close(fd); return; }
  if (!starts_with((const char*)region, DISK_HOST_MAGIC)) {
    fail("the disk does not start with " DISK_HOST_MAGIC, 0);
    sys_close(fd);
    return;
  }
  char letter = (char)region[DISK_HOST_HEADER_BYTES - 1];
  for (unsigned long i = DISK_HOST_HEADER_BYTES; i < DISK_REGION_BYTES; i++) {
    if (region[i] != host_byte(letter, i)) {
      begin(); put(name); put(": byte "); put_num((long)i); put(" differs"); end();
      fail("the host's pattern", 0);
      sys_close(fd);
      return;
    }
  }
  begin(); put(name); put(" over "); put(transport); put(": disk ");
  char l[2] = {letter, 0};
  put(l); put(" read, pattern ok"); end();

  memset(region, 0, DISK_GUEST_HEADER_BYTES);
  char header[DISK_GUEST_HEADER_BYTES] = "linux-wrote-";
  size_t h = str_len(header);
  header[h++] = letter;
  memcpy(header + h, "-over-", 6);
  h += 6;
  for (const char* t = transport; *t && h < sizeof(header) - 1; t++) header[h++] = *t;
  memcpy(region, header, h);
  for (unsigned long i = DISK_GUEST_HEADER_BYTES; i < DISK_REGION_BYTES; i++)
    region[i] = guest_byte(letter, DISK_REGION_BYTES + i);
  n = sys_pwrite(fd, region, DISK_REGION_BYTES, DISK_REGION_BYTES);
  if (n != DISK_REGION_BYTES) { fail("write the answer", n); sys_close(fd); return; }
  int r = sys_fsync(fd);
  if (r < 0) { fail("fsync", r); sys_close(fd); return; }
  sys_close(fd);
  begin(); put(name); put(": wrote the answer, fsync ok"); end();
}

static void report_cpus(void) {
  char buf[64];
  int fd = sys_open("/sys/devices/system/cpu/online", O_RDONLY);
  if (fd < 0) { fail("open /sys/devices/system/cpu/online", fd); return; }
  ssize_t n = sys_read(fd, buf, sizeof(buf) - 1);
  sys_close(fd);
  buf[n > 0 ? n : 0] = 0;
  for (char* p = buf; *p; p++)
    if (*p == '\n') *p = 0;
  begin(); put("cpus online "); put(buf); end();
}

// --- main ------------------------------------------------------------------
static void power_off(void) {
  sys_sync();
  int acpi = exists("/sys/firmware/acpi/tables/DSDT");
  say(acpi ? "powering off" : "no ACPI: restarting (vmm exits 0 on reset)");
  sys_reboot(acpi ? LINUX_REBOOT_CMD_POWER_OFF : LINUX_REBOOT_CMD_RESTART);
  fail("reboot returned", 0);
}

__attribute__((used)) void init_main(void) {
  say("started");
  // The kernel's own /dev/console stays open as fds 0-2 underneath.
  int r = sys_mount("devtmpfs", "/dev", "devtmpfs", 0, 0);
  if (r < 0) fail("mount devtmpfs on /dev", r);
  r = sys_mount("proc", "/proc", "proc", 0, 0);
  if (r < 0) fail("mount proc", r);
  r = sys_mount("sysfs", "/sys", "sysfs", 0, 0);
  if (r < 0) fail("mount sysfs", r);
  read_cmdline();
  char mode[32];
  cmdline_value("linux_test", mode, sizeof(mode));
  load_modules();

  if (starts_with(mode, "panic") && mode[5] == 0) {
    say(exists("/sys/bus/platform/drivers/pvpanic-mmio/QEMU0001:00")
            ? "pvpanic bound to QEMU0001:00"
            : "pvpanic not bound (no ACPI QEMU0001 device?)");
    say("panicking through /proc/sysrq-trigger");
    int fd = sys_open("/proc/sysrq-trigger", O_WRONLY);
    if (fd >= 0) sys_write(fd, "c", 1);
    fail("the kernel survived sysrq-c; leaving init instead", fd < 0 ? fd : 0);
    sys_exit(1);  // "Attempted to kill init!" is a panic too
  }

  check_disk("vda");
  check_disk("vdb");
  report_cpus();
  if (failures == 0) say("all checks passed");
  else { begin(); put_num(failures); put(" checks FAILED"); end(); }
  power_off();
  sys_exit(1);
}

// The kernel enters with the stack pointer 16-byte aligned on argc.
__asm__(
    ".text\n"
    ".globl _start\n"
    "_start:\n"
    "  xor %ebp, %ebp\n"
    "  and $-16, %rsp\n"
    "  call init_main\n"
    "  hlt\n");
