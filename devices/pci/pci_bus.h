// PCI bus 0: a host bridge at 00:00.0 and up to 31 devices (function 0
// each). The bus places BARs as firmware would, enables decoding, maps each
// BAR on the MMIO (or PIO) bus, and follows the guest when it moves a BAR or
// toggles decoding: the bus range moves and the BAR-move hook tells the VMM
// so it moves the ioeventfds inside it. Config accesses arrive from the
// front-ends (PciConfigIo at 0xCF8, PciEcam over the ECAM window).
//
// Thread-safe. Config reads run concurrently; config writes are serialised
// (a write may remap BARs) and the BAR-move hook runs inside that
// serialisation, so hook calls arrive in the order the guest made the
// changes. The hook must not make PCI config accesses through this bus.
#ifndef VMM_DEVICES_PCI_PCI_BUS_H_
#define VMM_DEVICES_PCI_PCI_BUS_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "devices/bus.h"
#include "devices/irq_line.h"
#include "devices/pci/pci_config_space.h"
#include "devices/pci/pci_device.h"

namespace vmm {

// `old_base`/`new_base` are where BAR `bar` of `device` was / is now mapped
// (nullopt: not mapped). Also called when AddDevice first maps a BAR
// (old_base nullopt), so the VMM can register ioeventfds in one place.
using PciBarMoveHook = std::function<void(PciDevice& device, int bar,
                                          std::optional<uint64_t> old_base,
                                          std::optional<uint64_t> new_base)>;

struct PciWindow {
  uint64_t start = 0;
  uint64_t size = 0;
};

struct PciBusConfig {
  Bus* mmio_bus = nullptr;  // required; must outlive the PciBus
  // IO BARs are placed and mapped only with both a PIO bus and an IO window;
  // otherwise they stay unassigned (0) with IO decoding off.
  Bus* pio_bus = nullptr;
  PciWindow io_window;
  PciWindow mmio32_window;  // the platform's (x86: x86_64::kPciMmio32Start/Size)
  // {PciMmio64Start(ram_end), kPciMmio64Size}. Empty: 64-bit BARs are placed
  // in the 32-bit window.
  PciWindow mmio64_window;
  PciBarMoveHook on_bar_move;  // optional
  // The platform's INTx routing: the GSI a device's INTA# reaches is
  // intx_gsis[slot % 4] (x86: x86_64::kPciIntxGsis, PIIX's links A-D). It
  // becomes the Interrupt Line register, and PciSlotInfo::intx_gsi.
  std::array<uint32_t, 4> intx_gsis{};
  // Makes the IrqLine for an INTx GSI (one of intx_gsis); optional.
  std::function<std::shared_ptr<IrqLine>(uint32_t gsi)> intx_line;
};

// What firmware tables (MP table, ACPI _PRT) need about a populated slot.
struct PciSlotInfo {
  int slot = 0;
  uint8_t interrupt_pin = 0;  // kPciInterruptPinNone or kPciInterruptPinA
  uint32_t intx_gsi = 0;      // meaningful when interrupt_pin != 0
};

class PciBus {
 public:
  static constexpr int kSlotCount = 32;

  explicit PciBus(PciBusConfig config);

  PciBus(const PciBus&) = delete;
  PciBus& operator=(const PciBus&) = delete;

  // Puts `device` in `slot` (1..31), or the lowest free slot when none is
  // asked for, and returns it: assigns its BARs from the windows, enables
  // memory (and IO) decoding, sets the interrupt line, maps the BARs (calling
  // the hook). Fails, changing nothing on the bus, if the slot asked for is
  // out of range or taken, or the slots or a window are exhausted.
  absl::StatusOr<int> AddDevice(std::shared_ptr<PciDevice> device,
                                std::optional<int> slot = std::nullopt);

  // A config access to (bus, device, function) at register `reg` (0..4095),
  // with the width and alignment rules of PciConfigSpace. Absent functions
  // read all-ones and ignore writes.
  void ConfigRead(uint32_t bus, uint32_t device, uint32_t function, uint64_t reg,
                  absl::Span<uint8_t> data) const;
  void ConfigWrite(uint32_t bus, uint32_t device, uint32_t function, uint64_t reg,
                   absl::Span<const uint8_t> data);

  // Snapshots (issue 15): restores the config space of the device in `slot`
  // (PciConfigSpace::RestoreState) and maps its BARs where the saved space
  // has them, calling the BAR-move hook, as the guest's own writes would.
  absl::Status RestoreConfig(int slot, absl::string_view state);

  // The device in `slot` (slot 0 is the host bridge), or null.
  std::shared_ptr<PciDevice> device(int slot) const;
  // Populated slots other than the host bridge, in slot order.
  std::vector<PciSlotInfo> Slots() const;
  // Where BAR `bar` of the device in `slot` is mapped now (nullopt: not).
  std::optional<uint64_t> BarMapping(int slot, int bar) const;
  // Guest BAR placements refused because they overlapped another range.
  uint64_t refused_bar_placements() const;

 private:
  struct BarState {
    std::optional<uint64_t> wanted;  // the placement last asked for
    std::optional<uint64_t> mapped;  // where it is on the bus
  };
  struct Slot {
    std::shared_ptr<PciDevice> device;
    std::array<BarState, kPciBarCount> bars;
  };
  struct Allocator {
    PciWindow window;
    uint64_t next = 0;  // offset of the first free byte
  };
  struct Move {
    std::shared_ptr<PciDevice> device;
    int bar;
    std::optional<uint64_t> old_base;
    std::optional<uint64_t> new_base;
  };

  // Assigns BAR addresses in `config` (only the Allocator copies are
  // touched, so a failure leaves the bus unchanged).
  absl::Status PlaceBars(PciConfigSpace& config, Allocator& mmio32, Allocator& mmio64,
                         Allocator& io, uint16_t* command_bits) const;
  // Brings slot `slot`'s bus mappings in line with its config space, then
  // (if a range was freed) retries placements refused earlier, and calls the
  // hook for every BAR that moved.
  void SyncMappings(int slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Returns true if a range was removed from a bus.
  bool SyncSlot(int slot, std::vector<Move>& moves) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  void RetryRefused(std::vector<Move>& moves) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  Bus* BusFor(const PciBarInfo& info) const;
  std::shared_ptr<PciDevice> Lookup(uint32_t bus, uint32_t device, uint32_t function) const;

  const PciBusConfig config_;

  // Serialises config writes, AddDevice and the remapping and hook calls
  // they cause. Taken before mu_.
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  Allocator mmio32_ ABSL_GUARDED_BY(write_mu_);
  Allocator mmio64_ ABSL_GUARDED_BY(write_mu_);
  Allocator io_ ABSL_GUARDED_BY(write_mu_);

  mutable absl::Mutex mu_;
  std::array<Slot, kSlotCount> slots_ ABSL_GUARDED_BY(mu_);
  uint64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vmm

#endif  // VMM_DEVICES_PCI_PCI_BUS_H_
