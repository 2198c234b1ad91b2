// Guest memory for unit tests: real (MAP_NORESERVE) mappings, so tests
// exercise the same bounds checks as the VMM, made in one call.
#ifndef VMM_TESTS_FAKES_TEST_GUEST_MEMORY_H_
#define VMM_TESTS_FAKES_TEST_GUEST_MEMORY_H_

#include <cstdint>
#include <initializer_list>
#include <utility>

#include "base/guest_memory.h"
#include "gtest/gtest.h"

namespace vmm::testing {

// Guest RAM made of `ranges`; a creation failure fails the calling test.
inline GuestMemory TestGuestMemory(std::initializer_list<RamRange> ranges) {
  auto mem = GuestMemory::Create(absl::Span<const RamRange>(ranges.begin(), ranges.size()));
  EXPECT_TRUE(mem.ok()) << mem.status();
  return std::move(mem).value();
}

// `size` bytes of RAM from guest-physical 0.
inline GuestMemory TestGuestMemory(uint64_t size) {
  return TestGuestMemory({RamRange{GuestAddress(0), size}});
}

}  // namespace vmm::testing

#endif  // VMM_TESTS_FAKES_TEST_GUEST_MEMORY_H_
