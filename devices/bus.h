// PIO and MMIO buses: address ranges mapped to devices that see
// offset-relative reads and writes.
#ifndef VMM_DEVICES_BUS_H_
#define VMM_DEVICES_BUS_H_

#include <cstdint>
#include <map>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"

namespace vmm {

// A device on a bus. `offset` is relative to the base the device was inserted
// at; `data.size()` is the access width (1, 2, 4 or 8). Called from vCPU
// threads concurrently: a device does its own locking. All values are
// guest-controlled.
class BusDevice {
 public:
  virtual ~BusDevice() = default;
  virtual void Read(uint64_t offset, absl::Span<uint8_t> data) = 0;
  virtual void Write(uint64_t offset, absl::Span<const uint8_t> data) = 0;
};

class Bus {
 public:
  // Maps [base, base + size) to `device`. Fails if the range is empty, wraps,
  // or overlaps a range already mapped.
  absl::Status Insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t size);
  // Unmaps the range starting exactly at `base`.
  absl::Status Remove(uint64_t base);

  // Dispatch an access. Returns false if no device covers the whole access
  // (reads then return all-ones, as on real buses).
  bool Read(uint64_t addr, absl::Span<uint8_t> data) const;
  bool Write(uint64_t addr, absl::Span<const uint8_t> data) const;

 private:
  struct Range {
    uint64_t size;
    std::shared_ptr<BusDevice> device;
  };
  // Finds the device covering [addr, addr + len) and the offset of addr in it.
  std::shared_ptr<BusDevice> Find(uint64_t addr, uint64_t len, uint64_t* offset) const;

  mutable absl::Mutex mu_;
  std::map<uint64_t, Range> ranges_ ABSL_GUARDED_BY(mu_);  // keyed by base
};

}  // namespace vmm

#endif  // VMM_DEVICES_BUS_H_
