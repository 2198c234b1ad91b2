// The per-disk part of blk.elf: initialise one virtio-blk device, run the
// read / write / flush / reset / discard / write-zeroes checks, print the
// disk's result line.
#ifndef VMM_TESTS_GUESTS_BLK_DISK_TEST_H_
#define VMM_TESTS_GUESTS_BLK_DISK_TEST_H_

#include <stdbool.h>
#include <stdint.h>

#include "runtime/virtio.h"
#include "runtime/virtio_blk.h"

#define BLK_TEST_MAX_SECTORS 64

struct blk_test_options {
  struct virtio_blk_options blk;
  uint32_t read_sectors;   // R: sectors [0, R) are read and checked
  uint32_t write_sectors;  // W: sectors [R, R + W) are written
  bool verify;             // check [0, R) against generation 0
  bool reset;              // reset and re-initialise after the first read
};

// Tests `dev` as disk number `index` (the pattern's d). Prints
//   blk <transport> <location>: capacity <n> serial <s> ok
// or ... FAIL: <why>, and leaves the device reset. True on success.
bool blk_test_disk(struct virtio_dev* dev, uint32_t index,
                   const struct blk_test_options* options);

#endif  // VMM_TESTS_GUESTS_BLK_DISK_TEST_H_
