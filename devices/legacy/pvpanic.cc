#include "devices/legacy/pvpanic.h"

#include <algorithm>
#include <utility>

namespace vmm {

Pvpanic::Pvpanic(std::function<void()> on_panic, std::function<void()> on_crash_loaded)
    : on_panic_(std::move(on_panic)), on_crash_loaded_(std::move(on_crash_loaded)) {}

void Pvpanic::Read(uint64_t offset, absl::Span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  if (offset == 0 && !data.empty()) data[0] = kSupportedEvents;
}

void Pvpanic::Write(uint64_t offset, absl::Span<const uint8_t> data) {
  if (offset != 0 || data.empty()) return;
  const uint8_t events = data[0] & kSupportedEvents;
  if (events & kPanicked) {
    if (on_panic_) on_panic_();
  } else if (events & kCrashLoaded) {
    if (on_crash_loaded_) on_crash_loaded_();
  }
}

}  // namespace vmm
