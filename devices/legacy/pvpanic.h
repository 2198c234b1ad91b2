// QEMU's ISA pvpanic device (ACPI _HID QEMU0001, docs/specs/pvpanic.rst):
// one I/O port through which a guest reports a kernel panic. Reads return
// the events the device supports; a write reports events. Linux's pvpanic
// driver writes kPanicked from its panic notifier (and kCrashLoaded instead
// when a kdump kernel is loaded and will handle the crash).
//
// Insert at kPvpanicPort (0x505) with size kSize.
#ifndef VMM_DEVICES_LEGACY_PVPANIC_H_
#define VMM_DEVICES_LEGACY_PVPANIC_H_

#include <cstdint>
#include <functional>

#include "absl/types/span.h"
#include "devices/bus.h"

namespace vmm {

class Pvpanic : public BusDevice {
 public:
  static constexpr uint64_t kSize = 1;
  // Event bits, as QEMU's standard-headers/misc/pvpanic.h.
  static constexpr uint8_t kPanicked = 1 << 0;     // host should act (stop the VM)
  static constexpr uint8_t kCrashLoaded = 1 << 1;  // guest handles it (kdump); host just notes it
  // What reads return: the events this device understands. QEMU's newer
  // bit 2 (PVPANIC_SHUTDOWN) is not advertised, so Linux never sends it.
  static constexpr uint8_t kSupportedEvents = kPanicked | kCrashLoaded;

  // Either callback may be empty. They run on the writing vCPU thread; the
  // device has no state and holds no lock.
  explicit Pvpanic(std::function<void()> on_panic, std::function<void()> on_crash_loaded = {});

  // Offset 0 reads kSupportedEvents in its low byte (higher bytes of a wider
  // read are 0); other offsets read 0.
  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  // A write at offset 0 of any width reports the events in its low byte.
  // As QEMU: kPanicked wins over kCrashLoaded when both are set (one
  // callback per write), unknown bits are ignored.
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

 private:
  const std::function<void()> on_panic_;
  const std::function<void()> on_crash_loaded_;
};

}  // namespace vmm

#endif  // VMM_DEVICES_LEGACY_PVPANIC_H_
