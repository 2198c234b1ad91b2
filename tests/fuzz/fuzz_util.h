// Helpers shared by the libFuzzer targets in tests/fuzz/: guest memory set-up, bounded
// guest-memory pokes driven by the input, and checks that host pointers handed out for
// guest buffers stay inside guest RAM (ASan cannot see overruns of mmap'd guest memory).
#ifndef VMM_TESTS_FUZZ_FUZZ_UTIL_H_
#define VMM_TESTS_FUZZ_FUZZ_UTIL_H_

#include <fuzzer/FuzzedDataProvider.h>
#include <sys/uio.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "absl/types/span.h"
#include "base/guest_memory.h"

namespace vmm::fuzz {

// Harness failures (not findings) abort loudly.
#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

inline GuestMemory MakeMemory(uint64_t size) {
  RamRange range{GuestAddress(0), size};
  auto mem = GuestMemory::Create(absl::Span<const RamRange>(&range, 1));
  FUZZ_CHECK(mem.ok());
  return std::move(mem).value();
}

// The 64 KiB of guest RAM the device targets share within a process, zeroed
// for every input so that a crash never depends on an earlier input.
inline const GuestMemory& ZeroedSmallMemory() {
  constexpr uint64_t kSize = 0x10000;
  static const GuestMemory mem = MakeMemory(kSize);
  static const std::vector<uint8_t> zeros(kSize, 0);
  FUZZ_CHECK(mem.WriteBytes(GuestAddress(0), zeros).ok());
  return mem;
}

// Writes up to 64 input bytes at an input-chosen offset inside [0, size).
inline void PokeMemory(FuzzedDataProvider& in, const GuestMemory& mem, uint64_t size) {
  const uint64_t offset = in.ConsumeIntegralInRange<uint64_t>(0, size - 1);
  std::vector<uint8_t> bytes = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(1, 64));
  if (bytes.empty() || offset + bytes.size() > size) return;
  FUZZ_CHECK(mem.WriteBytes(GuestAddress(offset), bytes).ok());
}

// Every iovec must lie inside one guest RAM region's host mapping.
inline void CheckIovecsInGuestRam(const GuestMemory& mem, absl::Span<const iovec> iov) {
  for (const iovec& v : iov) {
    const auto* p = static_cast<const uint8_t*>(v.iov_base);
    bool inside = false;
    for (const GuestMemory::Region& r : mem.regions()) {
      if (p >= r.host && v.iov_len <= r.size &&
          p - r.host <= static_cast<ptrdiff_t>(r.size - v.iov_len)) {
        inside = true;
      }
    }
    FUZZ_CHECK(inside);
  }
}

// An access width the devices see from the vCPU: 1, 2, 4 or 8 bytes.
inline size_t ConsumeWidth(FuzzedDataProvider& in) {
  static constexpr size_t kWidths[] = {1, 2, 4, 8};
  return kWidths[in.ConsumeIntegralInRange<size_t>(0, 3)];
}

// A driver's configuration-space read: an input-chosen width, then offset
// (at most `max_offset`). Returns the offset and the bytes the device gave.
struct ConfigRead {
  uint64_t offset;
  std::vector<uint8_t> bytes;
};
template <typename Device>
ConfigRead FuzzConfigRead(Device& device, FuzzedDataProvider& in, uint64_t max_offset) {
  std::vector<uint8_t> bytes(ConsumeWidth(in));
  const uint64_t offset = in.ConsumeIntegralInRange<uint64_t>(0, max_offset);
  device.ReadConfig(offset, absl::MakeSpan(bytes));
  return {offset, std::move(bytes)};
}

// A configuration-space write: an input-chosen offset, then width and bytes.
template <typename Device>
void FuzzConfigWrite(Device& device, FuzzedDataProvider& in, uint64_t max_offset) {
  const uint64_t offset = in.ConsumeIntegralInRange<uint64_t>(0, max_offset);
  std::vector<uint8_t> bytes = in.ConsumeBytes<uint8_t>(ConsumeWidth(in));
  device.WriteConfig(offset, bytes);
}

}  // namespace vmm::fuzz

#endif  // VMM_TESTS_FUZZ_FUZZ_UTIL_H_
