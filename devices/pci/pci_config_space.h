// A PCI function's type-0 configuration space: 4 KiB of registers with the
// rules drivers rely on. Each byte has a write mask (read-only fields stay
// read-only), status error bits are write-1-to-clear, BAR registers answer
// the all-ones sizing protocol, and capabilities are linked into the list at
// 0x34. A device owns one and returns it from PciDevice::config(); the bus
// and the config front-ends call Read/Write with guest values.
//
// Thread-safe: vCPU threads access it concurrently. Capability hooks and the
// INTx line are called with no lock of this object held.
#ifndef VMM_DEVICES_PCI_PCI_CONFIG_SPACE_H_
#define VMM_DEVICES_PCI_PCI_CONFIG_SPACE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "devices/irq_line.h"

namespace vmm {

// Type-0 header register offsets (PCI Local Bus 3.0, 6.1).
inline constexpr uint16_t kPciVendorId = 0x00;
inline constexpr uint16_t kPciDeviceId = 0x02;
inline constexpr uint16_t kPciCommand = 0x04;
inline constexpr uint16_t kPciStatus = 0x06;
inline constexpr uint16_t kPciRevisionId = 0x08;
inline constexpr uint16_t kPciClassCode = 0x09;  // 3 bytes: prog-if, subclass, base class
inline constexpr uint16_t kPciHeaderType = 0x0e;
inline constexpr uint16_t kPciBar0 = 0x10;       // six dword BAR registers
inline constexpr uint16_t kPciSubsystemVendorId = 0x2c;
inline constexpr uint16_t kPciSubsystemId = 0x2e;
inline constexpr uint16_t kPciExpansionRom = 0x30;
inline constexpr uint16_t kPciCapabilityPointer = 0x34;
inline constexpr uint16_t kPciInterruptLine = 0x3c;
inline constexpr uint16_t kPciInterruptPin = 0x3d;

inline constexpr uint16_t kPciCommandIo = 1 << 0;
inline constexpr uint16_t kPciCommandMemory = 1 << 1;
inline constexpr uint16_t kPciCommandBusMaster = 1 << 2;
inline constexpr uint16_t kPciCommandIntxDisable = 1 << 10;

inline constexpr uint16_t kPciStatusInterrupt = 1 << 3;
inline constexpr uint16_t kPciStatusCapList = 1 << 4;

inline constexpr uint8_t kPciCapIdVendor = 0x09;  // vendor-specific (virtio-pci)
inline constexpr uint8_t kPciCapIdMsix = 0x11;

inline constexpr uint8_t kPciInterruptPinNone = 0;
inline constexpr uint8_t kPciInterruptPinA = 1;

inline constexpr int kPciBarCount = 6;

// The read-only identity of a function.
struct PciFunctionId {
  uint16_t vendor_id = 0;
  uint16_t device_id = 0;
  uint8_t revision_id = 0;
  uint32_t class_code = 0;  // base class << 16 | subclass << 8 | prog-if
  uint16_t subsystem_vendor_id = 0;
  uint16_t subsystem_id = 0;
  uint8_t interrupt_pin = kPciInterruptPinNone;  // kPciInterruptPinA to use INTx
};

enum class PciBarType { kMemory32, kMemory64, kIo };

struct PciBarInfo {
  PciBarType type = PciBarType::kMemory32;
  uint64_t size = 0;  // a power of two
  bool prefetchable = false;
};

// Called after a guest write inside a capability (offset relative to the
// capability's first byte, which may point into the padding after it) or to
// patch what a guest read of it returns. Run on vCPU threads with no lock of
// the config space held.
struct PciCapabilityHooks {
  std::function<void(uint64_t cap_offset, absl::Span<const uint8_t> data)> after_write;
  std::function<void(uint64_t cap_offset, absl::Span<uint8_t> data)> on_read;
};

class PciConfigSpace {
 public:
  static constexpr uint64_t kSize = 4096;
  // The legacy 256-byte space that 0xCF8/0xCFC reaches; capabilities live in
  // [kCapabilitiesStart, kLegacySize).
  static constexpr uint64_t kLegacySize = 256;
  static constexpr uint16_t kCapabilitiesStart = 0x40;

  explicit PciConfigSpace(const PciFunctionId& id);

  PciConfigSpace(const PciConfigSpace&) = delete;
  PciConfigSpace& operator=(const PciConfigSpace&) = delete;

  // --- Device setup (before the function is on a bus) ---

  // Declares BAR `index`. kMemory64 also takes register index + 1. Sizes are
  // powers of two, at least 16 bytes for memory and 4..256 bytes for IO
  // (a 32-bit memory BAR at most 2 GiB).
  absl::Status AddBar(int index, PciBarType type, uint64_t size, bool prefetchable = false);

  // Appends a capability and returns its offset (dword aligned, in
  // [0x40, 0x100)). `bytes` is the whole capability including its two header
  // bytes, which are overwritten with `id` and the next pointer. `write_mask`
  // is empty (all read-only) or as long as `bytes`; the header bytes are
  // always read-only. `hooks` let the owner react to guest accesses.
  absl::StatusOr<uint16_t> AddCapability(uint8_t id, absl::Span<const uint8_t> bytes,
                                         absl::Span<const uint8_t> write_mask = {},
                                         PciCapabilityHooks hooks = {});

  // --- Guest accesses (the bus, from vCPU threads) ---

  // 1, 2 or 4 bytes at a naturally aligned offset below kSize; anything else
  // reads all-ones and writes nothing.
  void Read(uint64_t offset, absl::Span<uint8_t> data) const;
  void Write(uint64_t offset, absl::Span<const uint8_t> data);

  // --- Device / bus side: no masks, no hooks ---

  // Bytes as stored (BARs without their sizing view, status without the
  // dynamic interrupt bit). Out-of-range parts read as zero / are dropped.
  void ReadRaw(uint64_t offset, absl::Span<uint8_t> data) const;
  void WriteRaw(uint64_t offset, absl::Span<const uint8_t> data);
  uint16_t ReadRaw16(uint64_t offset) const;
  uint32_t ReadRaw32(uint64_t offset) const;

  // The BAR declared at `index` (nullopt for an unused register or the upper
  // half of a 64-bit BAR).
  std::optional<PciBarInfo> bar_info(int index) const;
  // The base address the guest (or SetBarAddress) programmed, without the
  // type bits. 0 for an undeclared BAR.
  uint64_t BarAddress(int index) const;
  // Programs a BAR's base as firmware would (the bus's initial placement).
  void SetBarAddress(int index, uint64_t address);

  uint16_t command() const;
  // Sets bits in the command register (the bus enabling decoding).
  void SetCommandBits(uint16_t bits);
  bool MemoryDecodeEnabled() const { return (command() & kPciCommandMemory) != 0; }
  bool IoDecodeEnabled() const { return (command() & kPciCommandIo) != 0; }
  bool BusMasterEnabled() const { return (command() & kPciCommandBusMaster) != 0; }

  uint8_t interrupt_pin() const;
  void SetInterruptLine(uint8_t line);

  // --- Snapshots (issue 15) ---

  // The space as stored.
  std::string SaveState() const;
  // Restores the guest-writable bits of what SaveState wrote (BAR bases,
  // command, capability fields; read-only fields stay this function's own),
  // calling no capability hook: their owners restore their own state. The
  // INTx line follows the restored command register. DataLoss for another
  // size or another function's identity (vendor, device, class).
  absl::Status RestoreState(absl::string_view state);

  // --- INTx ---

  // The line INTA# drives (the bus connects it from its slot's GSI). Until
  // connected, SetIntxLevel only updates the status bit.
  void ConnectIntx(std::shared_ptr<IrqLine> line);
  // The device's interrupt condition. It shows in the status register's
  // interrupt bit; the line is asserted while the condition holds and the
  // command register's INTx Disable bit is clear. A device using MSI-X does
  // not call this while MSI-X is enabled.
  void SetIntxLevel(bool asserted);

 private:
  struct Capability {
    uint16_t offset;
    uint16_t length;  // bytes, padded to a dword
    PciCapabilityHooks hooks;
  };

  static bool ValidAccess(uint64_t offset, size_t size);
  const Capability* FindCapabilityLocked(uint64_t offset) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  uint64_t BarAddressLocked(int index) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  uint16_t Raw16Locked(uint64_t offset) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void UpdateIntxLine();

  mutable absl::Mutex mu_;
  std::array<uint8_t, kSize> bytes_ ABSL_GUARDED_BY(mu_){};
  std::array<uint8_t, kSize> write_mask_ ABSL_GUARDED_BY(mu_){};
  std::array<uint8_t, kSize> w1c_mask_ ABSL_GUARDED_BY(mu_){};
  std::array<std::optional<PciBarInfo>, kPciBarCount> bars_ ABSL_GUARDED_BY(mu_);
  std::array<bool, kPciBarCount> bar_upper_half_ ABSL_GUARDED_BY(mu_){};
  std::vector<Capability> capabilities_ ABSL_GUARDED_BY(mu_);
  uint16_t last_capability_ ABSL_GUARDED_BY(mu_) = 0;  // 0: list empty
  bool intx_condition_ ABSL_GUARDED_BY(mu_) = false;

  // Serialises computing and driving the INTx level so that concurrent
  // SetIntxLevel and command writes leave the line in the final state.
  absl::Mutex intx_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::shared_ptr<IrqLine> intx_line_ ABSL_GUARDED_BY(intx_mu_);
  bool intx_driven_ ABSL_GUARDED_BY(intx_mu_) = false;  // the level last sent
};

}  // namespace vmm

#endif  // VMM_DEVICES_PCI_PCI_CONFIG_SPACE_H_
