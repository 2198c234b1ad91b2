// l2tool: what the Linux suite's guests need and busybox lacks, as one
// static binary in the L2 initramfs (tests/linux/suite.py).
//
//   l2tool vsock-echo PORT           accept one AF_VSOCK connection on PORT,
//                                    echo what arrives until EOF
//   l2tool vsock-send CID PORT TEXT  connect to CID:PORT, send "TEXT\n",
//                                    print the line that comes back
//   l2tool punch FILE OFFSET LENGTH  fallocate(PUNCH_HOLE | KEEP_SIZE)
//   l2tool zero FILE OFFSET LENGTH   fallocate(ZERO_RANGE | KEEP_SIZE)
//   l2tool fiemap FILE               "extent PHYSICAL LENGTH" per extent
//   l2tool wait-power-key SECONDS    wait for a KEY_POWER press on any
//                                    /dev/input/event* (the ACPI power
//                                    button's input device), as acpid or
//                                    systemd-logind would
//
// On a block device, punch and zero become the block layer's
// write-zeroes (with and without unmapping); on a file system mounted with
// -o discard, a punched hole becomes a discard of the freed blocks.
// Exits 0 on success, 1 with a one-line error otherwise.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <linux/input.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int fail(const char* what) {
  fprintf(stderr, "l2tool: %s: %s\n", what, strerror(errno));
  return 1;
}

static unsigned long long number(const char* s) { return strtoull(s, NULL, 0); }

static int vsock_echo(unsigned port) {
  int s = socket(AF_VSOCK, SOCK_STREAM, 0);
  if (s < 0) return fail("socket(AF_VSOCK)");
  struct sockaddr_vm addr = {.svm_family = AF_VSOCK, .svm_port = port,
                             .svm_cid = VMADDR_CID_ANY};
  if (bind(s, (struct sockaddr*)&addr, sizeof(addr)) < 0) return fail("bind");
  if (listen(s, 1) < 0) return fail("listen");
  printf("listening on vsock port %u\n", port);
  fflush(stdout);
  int c = accept(s, NULL, NULL);
  if (c < 0) return fail("accept");
  char buf[4096];
  ssize_t n;
  while ((n = read(c, buf, sizeof(buf))) > 0) {
    if (write(c, buf, (size_t)n) != n) return fail("write");
  }
  if (n < 0) return fail("read");
  close(c);
  return 0;
}

static int vsock_send(unsigned cid, unsigned port, const char* text) {
  int s = socket(AF_VSOCK, SOCK_STREAM, 0);
  if (s < 0) return fail("socket(AF_VSOCK)");
  struct sockaddr_vm addr = {.svm_family = AF_VSOCK, .svm_port = port, .svm_cid = cid};
  if (connect(s, (struct sockaddr*)&addr, sizeof(addr)) < 0) return fail("connect");
  char line[4096];
  int len = snprintf(line, sizeof(line), "%s\n", text);
  if (write(s, line, (size_t)len) != len) return fail("write");
  size_t got = 0;
  while (got < sizeof(line) - 1) {
    ssize_t n = read(s, line + got, 1);
    if (n < 0) return fail("read");
    if (n == 0 || line[got] == '\n') break;
    got++;
  }
  line[got] = '\0';
  printf("%s\n", line);
  close(s);
  return 0;
}

static int allocate(const char* path, int mode, const char* offset, const char* length) {
  int fd = open(path, O_WRONLY);
  if (fd < 0) return fail(path);
  if (fallocate(fd, mode | FALLOC_FL_KEEP_SIZE, (off_t)number(offset), (off_t)number(length)) < 0)
    return fail("fallocate");
  if (fsync(fd) < 0) return fail("fsync");
  close(fd);
  return 0;
}

static int fiemap(const char* path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return fail(path);
  enum { kMax = 64 };
  struct {
    struct fiemap map;
    struct fiemap_extent extents[kMax];
  } req;
  memset(&req, 0, sizeof(req));
  req.map.fm_length = FIEMAP_MAX_OFFSET;
  req.map.fm_flags = FIEMAP_FLAG_SYNC;
  req.map.fm_extent_count = kMax;
  if (ioctl(fd, FS_IOC_FIEMAP, &req.map) < 0) return fail("FS_IOC_FIEMAP");
  for (unsigned i = 0; i < req.map.fm_mapped_extents; i++) {
    printf("extent %llu %llu\n", (unsigned long long)req.extents[i].fe_physical,
           (unsigned long long)req.extents[i].fe_length);
  }
  close(fd);
  return 0;
}

// Input devices appear as their drivers bind: rescanned every 100 ms.
static int wait_power_key(unsigned seconds) {
  struct pollfd fds[32];
  char opened[32] = {0};
  int n = 0;
  for (unsigned tick = 0; tick < seconds * 10; ++tick) {
    for (int i = 0; i < 32 && n < 32; ++i) {
      if (opened[i]) continue;
      char path[32];
      snprintf(path, sizeof(path), "/dev/input/event%d", i);
      int fd = open(path, O_RDONLY | O_NONBLOCK);
      if (fd < 0) continue;
      opened[i] = 1;
      fds[n].fd = fd;
      fds[n].events = POLLIN;
      ++n;
    }
    if (poll(fds, n, 100) <= 0) continue;
    for (int i = 0; i < n; ++i) {
      struct input_event ev;
      while (read(fds[i].fd, &ev, sizeof(ev)) == sizeof(ev)) {
        if (ev.type == EV_KEY && ev.code == KEY_POWER && ev.value == 1) {
          printf("power key\n");
          return 0;
        }
      }
    }
  }
  errno = ETIMEDOUT;
  return fail("no power key press");
}

int main(int argc, char** argv) {
  const char* cmd = argc > 1 ? argv[1] : "";
  if (!strcmp(cmd, "vsock-echo") && argc == 3) return vsock_echo((unsigned)number(argv[2]));
  if (!strcmp(cmd, "vsock-send") && argc == 5)
    return vsock_send((unsigned)number(argv[2]), (unsigned)number(argv[3]), argv[4]);
  if (!strcmp(cmd, "punch") && argc == 5)
    return allocate(argv[2], FALLOC_FL_PUNCH_HOLE, argv[3], argv[4]);
  if (!strcmp(cmd, "zero") && argc == 5)
    return allocate(argv[2], FALLOC_FL_ZERO_RANGE, argv[3], argv[4]);
  if (!strcmp(cmd, "fiemap") && argc == 3) return fiemap(argv[2]);
  if (!strcmp(cmd, "wait-power-key") && argc == 3) return wait_power_key((unsigned)number(argv[2]));
  fprintf(stderr,
          "usage: l2tool vsock-echo PORT | vsock-send CID PORT TEXT | punch FILE OFF LEN |"
          " zero FILE OFF LEN | fiemap FILE | wait-power-key SECONDS\n");
  return 2;
}
