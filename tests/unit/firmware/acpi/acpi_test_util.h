// Readers for table bytes in the ACPI unit tests.
#ifndef VMM_TESTS_UNIT_FIRMWARE_ACPI_ACPI_TEST_UTIL_H_
#define VMM_TESTS_UNIT_FIRMWARE_ACPI_ACPI_TEST_UTIL_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace vmm::firmware::acpi::testing {

inline uint8_t Sum(const uint8_t* bytes, size_t size) {
  uint8_t sum = 0;
  for (size_t i = 0; i < size; ++i) sum = static_cast<uint8_t>(sum + bytes[i]);
  return sum;
}
inline uint8_t Sum(const std::vector<uint8_t>& bytes) { return Sum(bytes.data(), bytes.size()); }

template <typename T>
T At(const std::vector<uint8_t>& bytes, size_t offset) {
  T value{};
  EXPECT_LE(offset + sizeof(T), bytes.size());
  if (offset + sizeof(T) <= bytes.size()) std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

inline std::string Text(const std::vector<uint8_t>& bytes, size_t offset, size_t size) {
  return std::string(reinterpret_cast<const char*>(bytes.data() + offset), size);
}

// True if `needle` occurs in `haystack`.
inline bool Contains(const std::vector<uint8_t>& haystack, const std::vector<uint8_t>& needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) !=
         haystack.end();
}

// MADT entries after the 44-byte fixed part, as (type, bytes).
struct MadtEntry {
  uint8_t type;
  std::vector<uint8_t> bytes;
};
inline std::vector<MadtEntry> MadtEntries(const std::vector<uint8_t>& madt) {
  std::vector<MadtEntry> entries;
  size_t offset = 44;
  while (offset + 2 <= madt.size()) {
    const uint8_t length = madt[offset + 1];
    if (length < 2 || offset + length > madt.size()) {
      ADD_FAILURE() << "malformed MADT entry at offset " << offset;
      break;
    }
    entries.push_back({madt[offset], std::vector<uint8_t>(madt.begin() + offset,
                                                          madt.begin() + offset + length)});
    offset += length;
  }
  return entries;
}

}  // namespace vmm::firmware::acpi::testing

#endif  // VMM_TESTS_UNIT_FIRMWARE_ACPI_ACPI_TEST_UTIL_H_
