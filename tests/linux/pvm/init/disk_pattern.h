// The bytes the Linux boot suite puts on its disks. tests/linux/pvm/disk_pattern.py
// is the host's copy of these two formulas: keep them in step.
//
// [0, 64 KiB)        written by the host: "vmm-linux-disk-" + the disk's letter,
//                    then host_byte(letter, offset)
// [64 KiB, 128 KiB)  written by init: "linux-wrote-<letter>-over-<transport>"
//                    zero-padded to 32 bytes, then guest_byte(letter, offset)
#ifndef TESTS_LINUX_INIT_DISK_PATTERN_H_
#define TESTS_LINUX_INIT_DISK_PATTERN_H_

#define DISK_REGION_BYTES 65536
#define DISK_HOST_MAGIC "vmm-linux-disk-"
#define DISK_HOST_HEADER_BYTES 16
#define DISK_GUEST_HEADER_BYTES 32

static inline unsigned char host_byte(char letter, unsigned long offset) {
  return (unsigned char)(offset * 7 + (unsigned long)letter * 29 + (offset >> 8));
}

static inline unsigned char guest_byte(char letter, unsigned long offset) {
  return (unsigned char)(offset * 13 + (unsigned long)letter * 17 + 5);
}

#endif  // TESTS_LINUX_INIT_DISK_PATTERN_H_
