// QEMU's isa-debug-exit: a test guest ends the VM by writing a value to one
// port. Like QEMU the device reports the raw value; the VMM turns it into
// the exit status (value << 1) | 1, so a guest can never fake a clean 0.
//
// Insert at kDebugExitPort (0x501) with size kSize, so byte, word and dword
// writes at the base all reach it.
#ifndef VMM_DEVICES_LEGACY_DEBUG_EXIT_H_
#define VMM_DEVICES_LEGACY_DEBUG_EXIT_H_

#include <cstdint>
#include <functional>

#include "absl/types/span.h"
#include "devices/bus.h"

namespace vmm {

class DebugExit : public BusDevice {
 public:
  static constexpr uint64_t kSize = 4;

  // `on_exit` gets the value written (zero-extended, little-endian). It runs
  // on the writing vCPU thread; the device holds no lock (it has no state).
  explicit DebugExit(std::function<void(uint32_t value)> on_exit);

  // Reads return 0, as QEMU's.
  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  // A 1-, 2- or 4-byte write at any offset inside the range calls on_exit
  // (QEMU ignores the offset too); other widths are ignored.
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

 private:
  const std::function<void(uint32_t)> on_exit_;
};

}  // namespace vmm

#endif  // VMM_DEVICES_LEGACY_DEBUG_EXIT_H_
