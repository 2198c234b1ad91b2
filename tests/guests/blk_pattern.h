// The data pattern blk.elf expects on disk images and writes itself.
//
// Sector s (512 bytes) of disk d holds 128 little-endian 32-bit words; word i
// (bytes 4i..4i+3) of generation g is
//
//   W(d, g, s, i) = ((s * 128 + i) * 0x9E3779B1
//                    + d * 0x85EBCA77 + g * 0xC2B2AE3D)  mod 2^32
//
// so byte o of the sector is (W(d, g, s, o / 4) >> (8 * (o % 4))) & 0xff.
// g = 0 is what the host writes into an image before the run; g = 1 is what
// the guest writes. d is the disk's index in the guest's discovery order:
// PCI functions in (bus, device, function) order first, then virtio-mmio
// devices by ascending window address (with mmio=probe or mmio=cmdline
// alike). Python:
//
//   def sector(d, s, g=0):
//       return b"".join(struct.pack("<I", ((s * 128 + i) * 0x9E3779B1
//           + d * 0x85EBCA77 + g * 0xC2B2AE3D) & 0xFFFFFFFF)
//           for i in range(128))
#ifndef VMM_TESTS_GUESTS_BLK_PATTERN_H_
#define VMM_TESTS_GUESTS_BLK_PATTERN_H_

#include <stdint.h>

#define BLK_PATTERN_WORDS_PER_SECTOR 128

static inline uint32_t blk_pattern_word(uint32_t disk, uint32_t generation,
                                        uint64_t sector, uint32_t word) {
  uint32_t x = (uint32_t)(sector * BLK_PATTERN_WORDS_PER_SECTOR + word);
  return x * 0x9E3779B1u + disk * 0x85EBCA77u + generation * 0xC2B2AE3Du;
}

#endif  // VMM_TESTS_GUESTS_BLK_PATTERN_H_
