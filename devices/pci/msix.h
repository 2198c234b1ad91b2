// MSI-X for a PCI function (PCI Local Bus 3.0, 6.8.2): the capability in
// config space, the vector table and the pending bit array in BAR regions,
// per-vector masks, the function mask and pending delivery. Vectors reach
// the VMM through an MsiVectorSink, which routes each one with its own GSI
// and irqfd.
//
// The owning device creates one after declaring its BARs, forwards BAR
// accesses to BarRead/BarWrite, and calls Signal(vector) for each interrupt.
//
// Thread-safe. The sink is called with this object's lock held, so that
// Configure calls reach the VMM in the order the guest made the changes and
// a Trigger never overtakes the Configure that unmasked it; the sink must
// not call back into this Msix.
#ifndef VMM_DEVICES_PCI_MSIX_H_
#define VMM_DEVICES_PCI_MSIX_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "devices/interrupt.h"
#include "devices/pci/pci_config_space.h"

namespace vmm {

// Message control register bits (capability offset 2).
inline constexpr uint16_t kMsixControlEnable = 1 << 15;
inline constexpr uint16_t kMsixControlFunctionMask = 1 << 14;
inline constexpr uint16_t kMsixControlTableSizeMask = 0x7ff;  // N - 1
// Vector control (table entry offset 12) bit 0.
inline constexpr uint32_t kMsixVectorMasked = 1;
inline constexpr uint64_t kMsixEntrySize = 16;

// Where the table and PBA live. Offsets are from the BAR's base and 8-byte
// aligned; both regions must fit inside their (declared) BAR.
struct MsixLayout {
  uint16_t vector_count = 1;  // 1..2048
  int table_bar = 0;
  uint32_t table_offset = 0;
  int pba_bar = 0;
  uint32_t pba_offset = 0;
};

class Msix {
 public:
  static constexpr uint16_t kMaxVectors = 2048;
  static constexpr uint64_t TableSize(uint16_t vectors) { return vectors * kMsixEntrySize; }
  static constexpr uint64_t PbaSize(uint16_t vectors) { return (vectors + 63u) / 64u * 8u; }

  // Adds the MSI-X capability to `config` (which must outlive this object)
  // and starts with MSI-X disabled and every vector masked. `sink` may be
  // null: nothing is delivered (vectors stay pending).
  static absl::StatusOr<std::unique_ptr<Msix>> Create(PciConfigSpace& config,
                                                      const MsixLayout& layout,
                                                      std::shared_ptr<MsiVectorSink> sink);

  Msix(const Msix&) = delete;
  Msix& operator=(const Msix&) = delete;

  // --- Guest accesses, forwarded by the device's BarRead/BarWrite ---

  // Handles the access if it falls in the table or PBA of BAR `bar` and
  // returns true; returns false (touching nothing) otherwise. Dword and
  // naturally aligned qword accesses are honoured; other widths or
  // alignments inside the regions read all-ones and write nothing.
  bool BarRead(int bar, uint64_t offset, absl::Span<uint8_t> data);
  bool BarWrite(int bar, uint64_t offset, absl::Span<const uint8_t> data);
  // The same, with offsets relative to the table / PBA.
  void TableRead(uint64_t offset, absl::Span<uint8_t> data);
  void TableWrite(uint64_t offset, absl::Span<const uint8_t> data);
  void PbaRead(uint64_t offset, absl::Span<uint8_t> data);
  void PbaWrite(uint64_t offset, absl::Span<const uint8_t> data);  // ignored (read-only)

  // --- Device side ---

  // Raises `vector`: delivered now if MSI-X is enabled and the vector and
  // function are unmasked, otherwise (enabled but masked) its pending bit is
  // set and it is delivered when unmasked. Returns false if MSI-X is
  // disabled or the vector does not exist: the device uses INTx instead.
  bool Signal(uint16_t vector);

  // The sink's direct trigger fd for `vector` (MsiVectorSink::DirectTriggerFd),
  // or -1.
  int DirectTriggerFd(uint16_t vector) const;

  // Snapshots (issue 15): the vector table and pending bits. RestoreState
  // takes them back after the config space was restored (the capability's
  // enable and function-mask bits are read from it), telling the sink about
  // every vector and delivering what is pending and unmasked. DataLoss for
  // another vector count.
  std::string SaveState() const;
  absl::Status RestoreState(absl::string_view state);

  uint16_t vector_count() const { return layout_.vector_count; }
  const MsixLayout& layout() const { return layout_; }
  uint16_t capability_offset() const { return cap_offset_; }
  bool enabled() const;
  bool function_masked() const;
  bool vector_masked(uint16_t vector) const;  // the entry's own mask bit
  bool pending(uint16_t vector) const;
  MsiMessage message(uint16_t vector) const;

 private:
  struct Entry {
    uint32_t address_lo = 0;
    uint32_t address_hi = 0;
    uint32_t data = 0;
    uint32_t control = kMsixVectorMasked;
  };
  // What the sink was last told about a vector.
  struct Reported {
    MsiMessage message;
    bool masked = true;
  };

  Msix(PciConfigSpace& config, const MsixLayout& layout, std::shared_ptr<MsiVectorSink> sink);

  // The capability's message control was written.
  void OnControlWritten();
  bool EffectiveMaskedLocked(uint16_t vector) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Tells the sink about `vector` if its message or effective mask changed,
  // then delivers its pending interrupt if it is now unmasked.
  void SyncVectorLocked(uint16_t vector) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteTableDwordLocked(uint64_t offset, uint32_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint32_t ReadTableDwordLocked(uint64_t offset) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  PciConfigSpace& config_;
  const MsixLayout layout_;
  uint16_t cap_offset_ = 0;  // set once by Create
  const std::shared_ptr<MsiVectorSink> sink_;

  mutable absl::Mutex mu_;
  bool enabled_ ABSL_GUARDED_BY(mu_) = false;
  bool function_masked_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Entry> table_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> pba_ ABSL_GUARDED_BY(mu_);
  std::vector<Reported> reported_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vmm

#endif  // VMM_DEVICES_PCI_MSIX_H_
