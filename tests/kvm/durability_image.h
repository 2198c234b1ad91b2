// The image blk.elf's durability=G mode leaves (tests/guests/blk_durability.h):
// generation g of disk 0's pattern (tests/guests/blk_pattern.h) in blocks
// [1 + 2(g-1), 1 + 2g), block 0 rewritten by every generation. Shared by
// the durability test (a VMM killed mid-run) and the snapshot test (a run
// carried across a snapshot into a restored VM).
#ifndef VMM_TESTS_KVM_DURABILITY_IMAGE_H_
#define VMM_TESTS_KVM_DURABILITY_IMAGE_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace vmm::testing {

inline constexpr uint32_t kDurabilityDataBlocks = 2;  // per generation, after block 0

// tests/guests/blk_pattern.h, disk 0.
inline std::vector<uint8_t> PatternSector(uint32_t generation, uint64_t sector) {
  std::vector<uint8_t> bytes(512);
  for (uint32_t i = 0; i < 128; ++i) {
    uint32_t x = static_cast<uint32_t>(sector * 128 + i);
    uint32_t w = x * 0x9E3779B1u + generation * 0xC2B2AE3Du;
    std::memcpy(&bytes[i * 4], &w, 4);
  }
  return bytes;
}

inline std::vector<uint8_t> ReadImage(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

inline std::vector<uint8_t> SectorOf(const std::vector<uint8_t>& image, uint64_t sector) {
  if ((sector + 1) * 512 > image.size()) return {};
  return std::vector<uint8_t>(image.begin() + sector * 512, image.begin() + (sector + 1) * 512);
}

// Every generation up to `last_flushed` intact; block 0 from a generation
// at least that recent; later generations' sectors hold their data or zeros.
// `block`: the guest's block size in sectors.
inline void ExpectDurabilityImage(const std::string& path, uint64_t image_bytes,
                                  uint32_t generations, uint32_t block, uint32_t last_flushed,
                                  const std::string& context) {
  std::vector<uint8_t> image = ReadImage(path);
  ASSERT_EQ(image.size(), image_bytes) << context;
  const std::vector<uint8_t> zeros(512, 0);
  for (uint32_t g = 1; g <= generations; ++g) {
    uint64_t first = (1 + (g - 1) * kDurabilityDataBlocks) * block;
    for (uint64_t s = first; s < first + kDurabilityDataBlocks * block; ++s) {
      std::vector<uint8_t> got = SectorOf(image, s);
      if (g <= last_flushed) {
        ASSERT_EQ(got, PatternSector(g, s))
            << context << ": generation " << g << " was reported flushed, sector " << s
            << " does not hold it";
      } else {
        ASSERT_TRUE(got == zeros || got == PatternSector(g, s))
            << context << ": sector " << s << " holds neither zeros nor generation " << g;
      }
    }
  }
  // Block 0 is rewritten by every generation: one not older than the last
  // reported, in every sector (each sector names its generation).
  uint32_t header_generation = 0;
  for (uint32_t g = std::max(last_flushed, 1u); g <= generations; ++g) {
    if (SectorOf(image, 0) == PatternSector(g, 0)) header_generation = g;
  }
  ASSERT_NE(header_generation, 0u) << context << ": block 0 does not hold generation "
                                   << last_flushed << " or a later one";
  for (uint64_t s = 1; s < block; ++s) {
    EXPECT_EQ(SectorOf(image, s), PatternSector(header_generation, s))
        << context << ": block 0 is torn at sector " << s;
  }
}

}  // namespace vmm::testing

#endif  // VMM_TESTS_KVM_DURABILITY_IMAGE_H_
