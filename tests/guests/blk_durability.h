// blk.elf's durability=G mode: generations of writes, each made durable
// with a FLUSH and reported on the console, for a host that kills the VMM
// right after a report and checks that nothing reported was lost
// (tests/kvm/durability_test.cc).
#ifndef VMM_TESTS_GUESTS_BLK_DURABILITY_H_
#define VMM_TESTS_GUESTS_BLK_DURABILITY_H_

#include <stdbool.h>
#include <stdint.h>

#include "runtime/virtio.h"
#include "runtime/virtio_blk.h"

// In blocks of the device's blk_size (512 bytes, or 4096 on a direct=on
// image): prints "durability: block <bytes> bytes", then for
// g = 1..generations, as one batch of two requests, blocks
// [1 + 2(g-1), 1 + 2g) and block 0 get generation g of disk 0's pattern
// (blk_pattern.h, by sector number); then a FLUSH, and once it has completed
// with status OK:
//   durability: flushed <g>
// At the end: "durability: <G> generations flushed" and true. On failure,
// "durability: FAIL: <why>" and false. Needs FLUSH and a capacity of
// 1 + 2G blocks.
bool blk_durability_run(struct virtio_dev* dev,
                        const struct virtio_blk_options* options,
                        uint32_t generations);

#endif  // VMM_TESTS_GUESTS_BLK_DURABILITY_H_
