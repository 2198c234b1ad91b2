// The PC's i8042 keyboard controller, enough for Linux to probe it and to
// reset the machine through it: no keyboard or mouse is attached and no
// interrupts are raised. Commands complete at once, so the input buffer is
// never full.
//
// One device covers both ports: insert it once at kI8042DataPort (0x60) with
// size kSize (5). Offset 0 is the data port, offset 4 status/command; the
// ports in between read 0xff and ignore writes (0x61 is served by KVM's
// in-kernel PIT speaker port before it reaches the bus).
#ifndef VMM_DEVICES_LEGACY_I8042_H_
#define VMM_DEVICES_LEGACY_I8042_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "devices/bus.h"

namespace vmm {

class I8042 : public BusDevice {
 public:
  static constexpr uint64_t kDataOffset = 0;
  static constexpr uint64_t kCommandOffset = 4;
  static constexpr uint64_t kSize = 5;

  // `on_reset` runs when the guest pulses the CPU reset line (command 0xFE,
  // or the reset bit cleared through the output port). Called without the
  // device lock, on the vCPU thread.
  explicit I8042(std::function<void()> on_reset);

  // Byte-wide ports; wider accesses are split into bytes.
  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

  // Snapshots (issue 15): the controller's registers and output buffer.
  // The payload is untrusted: a short one is DataLoss.
  std::string SaveState() ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status RestoreState(absl::string_view payload) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  uint8_t ReadPort(uint64_t port) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Returns true if the write asks for a CPU reset.
  bool WriteData(uint8_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool WriteCommand(uint8_t command) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint8_t Status() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Respond(uint8_t value, bool from_aux = false) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::function<void()> on_reset_;

  absl::Mutex mu_;
  // Controller configuration ("command byte"): keyboard interrupt, system
  // flag and scancode translation on, as a BIOS leaves it.
  uint8_t command_byte_ ABSL_GUARDED_BY(mu_) = 0x45;
  // Output port: bit 0 is the reset line (active low), bit 1 the A20 gate.
  uint8_t output_port_ ABSL_GUARDED_BY(mu_) = 0x03;
  std::optional<uint8_t> output_ ABSL_GUARDED_BY(mu_);  // the output buffer
  bool output_from_aux_ ABSL_GUARDED_BY(mu_) = false;
  uint8_t last_output_ ABSL_GUARDED_BY(mu_) = 0;  // reread when the buffer is empty
  // A command waiting for its parameter byte on the data port, or 0.
  uint8_t pending_command_ ABSL_GUARDED_BY(mu_) = 0;
  bool last_write_was_command_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace vmm

#endif  // VMM_DEVICES_LEGACY_I8042_H_
