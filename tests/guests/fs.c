// fs.elf: the guest side of virtio-fs (device type 26) as a FUSE client:
// finds the device (virtio-pci on bus 0 or a virtio-mmio slot), checks its
// tag, then on the first request queue sends FUSE_INIT, LOOKUP of `file`
// in the root, OPEN and READ, and prints what it read. The host's test
// compares that with the file it wrote in the directory virtiofsd serves.
//
// Command line:
//   pci=ecam|off  mmio=probe|off   where to look              [ecam, probe]
//   tag=NAME      the tag the device must have                 [hostshare]
//   file=NAME     the file to read in the shared directory     [hello.txt]
//   timeout_ms=N  bound of every wait                         [5000]
//   irq=on|off    interrupts (MSI-X / the mmio GSI) or polling [off]
// Output:
//   fs <where>: tag <tag>, FUSE <major>.<minor>, <file>: <n> bytes "<text>"
//   fs: ok | fs ...: FAIL: <why>
// Exit (debug-exit; the VMM's status is 2v+1): 0 ok, 100 a check failed,
// 102 no device, 103 bad command line.
#include "runtime/guest.h"
#include "runtime/cmdline.h"
#include "runtime/string.h"
#include "runtime/virtio_find.h"
#include "runtime/virtqueue.h"

#define VIRTIO_ID_FS 26
#define EXIT_NO_DEVICE 102

// FUSE wire format (linux/fuse.h, protocol 7.31), little-endian.
enum {
  FUSE_LOOKUP = 1,
  FUSE_OPEN = 14,
  FUSE_READ = 15,
  FUSE_INIT = 26,
  FUSE_ROOT_ID = 1,
};
struct fuse_in_header {
  uint32_t len, opcode;
  uint64_t unique, nodeid;
  uint32_t uid, gid, pid;
  uint16_t total_extlen, padding;
};
struct fuse_out_header {
  uint32_t len;
  int32_t error;
  uint64_t unique;
};
struct fuse_init_in {
  uint32_t major, minor, max_readahead, flags, flags2, unused[11];
};
struct fuse_entry_out {  // 128 bytes: nodeid first, the attr's size at 48
  uint64_t nodeid, generation, entry_valid, attr_valid;
  uint32_t entry_valid_nsec, attr_valid_nsec;
  uint64_t ino, size;
  uint8_t rest[128 - 56];
};
struct fuse_open_in {
  uint32_t flags, open_flags;
};
struct fuse_open_out {
  uint64_t fh;
  uint32_t open_flags, padding;
};
struct fuse_read_in {
  uint64_t fh, offset;
  uint32_t size, read_flags;
  uint64_t lock_owner;
  uint32_t flags, padding;
};
_Static_assert(sizeof(struct fuse_in_header) == 40, "fuse_in_header");
_Static_assert(sizeof(struct fuse_out_header) == 16, "fuse_out_header");
_Static_assert(sizeof(struct fuse_init_in) == 64, "fuse_init_in");
_Static_assert(sizeof(struct fuse_entry_out) == 128, "fuse_entry_out");
_Static_assert(sizeof(struct fuse_read_in) == 40, "fuse_read_in");

static size_t str_len(const char* s) {
  size_t n = 0;
  while (s[n] != 0) ++n;
  return n;
}

// The value of `key` on the command line (or `def`), at most cap - 1 bytes.
static void cmdline_str(const char* c, const char* key, const char* def, char* out, size_t cap) {
  size_t len = 0;
  const char* v = cmdline_find(c, key, &len);
  if (v == 0) {
    v = def;
    len = str_len(def);
  }
  if (len >= cap) len = cap - 1;
  memcpy(out, v, len);
  out[len] = 0;
}

static struct virtq hiprio, requests;
static struct fuse_in_header in_header __attribute__((aligned(64)));
static uint8_t in_arg[256] __attribute__((aligned(64)));
static struct fuse_out_header out_header __attribute__((aligned(64)));
static uint8_t out_body[4096] __attribute__((aligned(64)));
static uint64_t unique;

// One request: header and argument out, header and `reply` bytes back.
// Returns the reply's body length, or -1 (with *why) on failure.
static int64_t fuse_call(struct virtio_dev* dev, uint32_t opcode, uint64_t nodeid,
                         const void* arg, uint32_t arg_len, uint32_t reply,
                         const char** why) {
  memset(&in_header, 0, sizeof(in_header));
  in_header.len = (uint32_t)sizeof(in_header) + arg_len;
  in_header.opcode = opcode;
  in_header.unique = ++unique;
  in_header.nodeid = nodeid;
  memcpy(in_arg, arg, arg_len);
  memset(&out_header, 0, sizeof(out_header));
  struct virtq_buf bufs[4] = {
      {&in_header, sizeof(in_header), false},
      {in_arg, arg_len, false},
      {&out_header, sizeof(out_header), true},
      {out_body, reply, true},
  };
  if (!virtq_add(&requests, bufs, 4, &in_header)) {
    *why = "virtq_add refused a request";
    return -1;
  }
  virtq_kick(&requests);
  if (!virtq_wait(&requests, why)) return -1;
  void* cookie;
  uint32_t len;
  if (!virtq_pop_used(&requests, &cookie, &len, why)) return -1;
  if (cookie != &in_header || len < sizeof(out_header)) {
    *why = "bad used entry (cookie or length)";
    return -1;
  }
  if (out_header.unique != unique || out_header.error != 0) {
    *why = out_header.error != 0 ? "the FUSE server answered an error" : "wrong unique";
    console_printf("fs: opcode %u: error %d\n", opcode, out_header.error);
    return -1;
  }
  (void)dev;
  return (int64_t)out_header.len - (int64_t)sizeof(out_header);
}

static bool test_device(struct virtio_dev* dev, const char* want_tag, const char* file,
                        const char** why) {
  char tag[37];
  for (uint32_t i = 0; i < 36; ++i) tag[i] = (char)virtio_config_read(dev, i, 1);
  tag[36] = 0;
  if (str_len(tag) != str_len(want_tag) || memcmp(tag, want_tag, str_len(tag)) != 0) {
    console_printf("fs %s: tag \"%s\"\n", dev->location, tag);
    *why = "the tag is not the one asked for";
    return false;
  }
  if (virtio_config_read(dev, 36, 4) < 1) {
    *why = "num_request_queues is 0";
    return false;
  }
  if (!virtio_negotiate(dev, VIRTIO_F_VERSION_1, why)) return false;
  if (!virtq_init(&hiprio, dev, 0, 16, false, why) ||
      !virtq_init(&requests, dev, 1, 16, false, why)) {
    virtio_set_failed(dev);
    return false;
  }
  if (!virtio_driver_ok(dev, why)) return false;

  struct fuse_init_in init = {.major = 7, .minor = 31};
  if (fuse_call(dev, FUSE_INIT, 0, &init, sizeof(init), 64, why) < 8) {
    if (**why == 0) *why = "short FUSE_INIT reply";
    return false;
  }
  uint32_t major, minor;
  memcpy(&major, out_body, 4);
  memcpy(&minor, out_body + 4, 4);
  if (major != 7) {
    *why = "FUSE major version is not 7";
    return false;
  }
  const uint32_t name_len = (uint32_t)str_len(file) + 1;
  if (fuse_call(dev, FUSE_LOOKUP, FUSE_ROOT_ID, file, name_len, sizeof(struct fuse_entry_out),
                why) < (int64_t)sizeof(struct fuse_entry_out)) {
    if (**why == 0) *why = "short FUSE_LOOKUP reply";
    return false;
  }
  struct fuse_entry_out entry;
  memcpy(&entry, out_body, sizeof(entry));
  struct fuse_open_in open = {.flags = 0 /* O_RDONLY */};
  if (fuse_call(dev, FUSE_OPEN, entry.nodeid, &open, sizeof(open),
                sizeof(struct fuse_open_out), why) < (int64_t)sizeof(struct fuse_open_out)) {
    if (**why == 0) *why = "short FUSE_OPEN reply";
    return false;
  }
  struct fuse_open_out opened;
  memcpy(&opened, out_body, sizeof(opened));
  struct fuse_read_in read = {.fh = opened.fh, .offset = 0, .size = sizeof(out_body) - 1};
  const int64_t n = fuse_call(dev, FUSE_READ, entry.nodeid, &read, sizeof(read),
                              sizeof(out_body) - 1, why);
  if (n < 0) return false;
  if ((uint64_t)n != entry.size) {
    console_printf("fs: READ gave %d bytes, LOOKUP said %u\n", (int)n, (unsigned)entry.size);
    *why = "READ and LOOKUP disagree on the size";
    return false;
  }
  out_body[n] = 0;
  console_printf("fs %s: tag %s, FUSE %u.%u, %s: %d bytes \"%s\"\n", dev->location, tag, major,
                 minor, file, (int)n, (const char*)out_body);
  return true;
}

void guest_main(const struct hvm_start_info* info) {
  const char* c = pvh_cmdline(info);
  console_printf("fs: cmdline: %s\n", c);
  struct virtio_find_options o;
  const char* bad_key = "";
  if (!virtio_find_options_from_cmdline(c, &o, &bad_key)) cmdline_bad_value("fs", bad_key);
  char tag[40], file[64];
  cmdline_str(c, "tag", "hostshare", tag, sizeof(tag));
  cmdline_str(c, "file", "hello.txt", file, sizeof(file));

  struct virtio_dev* devs[VIRTIO_FIND_MAX];
  uint32_t failed = 0;
  const uint32_t n = virtio_find(VIRTIO_ID_FS, &o, devs, &failed);
  if (n == 0) {
    console_printf("fs: FAIL: no virtio-fs device\n");
    guest_debug_exit(EXIT_NO_DEVICE);
  }
  const char* why = "";
  if (failed != 0 || !test_device(devs[0], tag, file, &why)) {
    console_printf("fs %s: FAIL: %s\n", devs[0]->location, why);
    guest_debug_exit(GUEST_EXIT_FAILURE);
  }
  console_printf("fs: ok\n");
  guest_debug_exit(0);
}
