// A PciDevice for PCI tests: a config space the test shapes (BARs,
// capabilities) and BAR accesses that are recorded and answered with a
// pattern naming the BAR and offset.
#ifndef VMM_TESTS_UNIT_DEVICES_PCI_TEST_PCI_DEVICE_H_
#define VMM_TESTS_UNIT_DEVICES_PCI_TEST_PCI_DEVICE_H_

#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "devices/pci/pci_config_space.h"
#include "devices/pci/pci_device.h"

namespace vmm {

inline PciFunctionId TestFunctionId(uint8_t interrupt_pin = kPciInterruptPinA) {
  return PciFunctionId{.vendor_id = 0x1af4,
                       .device_id = 0x1042,
                       .revision_id = 1,
                       .class_code = 0x018000,
                       .subsystem_vendor_id = 0x1af4,
                       .subsystem_id = 0x0042,
                       .interrupt_pin = interrupt_pin};
}

class TestPciDevice : public PciDevice {
 public:
  struct Access {
    int bar;
    uint64_t offset;
    size_t size;
    bool write;
    uint64_t value;  // written value (little-endian), 0 for reads
    bool operator==(const Access&) const = default;
  };

  explicit TestPciDevice(const PciFunctionId& id = TestFunctionId()) : config_(id) {}

  PciConfigSpace& config() override { return config_; }

  // Reads answer byte i with (bar << 4 | offset + i) & 0xff.
  void BarRead(int bar, uint64_t offset, absl::Span<uint8_t> data) override {
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>((bar << 4) | (offset + i));
    absl::MutexLock lock(&mu_);
    accesses_.push_back({bar, offset, data.size(), false, 0});
  }
  void BarWrite(int bar, uint64_t offset, absl::Span<const uint8_t> data) override {
    uint64_t v = 0;
    for (size_t i = 0; i < data.size() && i < 8; ++i) v |= uint64_t{data[i]} << (8 * i);
    absl::MutexLock lock(&mu_);
    accesses_.push_back({bar, offset, data.size(), true, v});
  }

  std::vector<Access> accesses() const {
    absl::MutexLock lock(&mu_);
    return accesses_;
  }

 private:
  PciConfigSpace config_;
  mutable absl::Mutex mu_;
  std::vector<Access> accesses_ ABSL_GUARDED_BY(mu_);
};

// Little-endian helpers for driving config space and buses in tests.
inline uint64_t LoadLe(absl::Span<const uint8_t> data) {
  uint64_t v = 0;
  for (size_t i = 0; i < data.size(); ++i) v |= uint64_t{data[i]} << (8 * i);
  return v;
}

inline std::vector<uint8_t> LeBytes(uint64_t value, size_t size) {
  std::vector<uint8_t> out(size);
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<uint8_t>(value >> (8 * i));
  return out;
}

inline uint64_t ConfigRead(const PciConfigSpace& config, uint64_t offset, size_t size) {
  std::vector<uint8_t> buf(size);
  config.Read(offset, absl::MakeSpan(buf));
  return LoadLe(buf);
}

inline void ConfigWrite(PciConfigSpace& config, uint64_t offset, size_t size, uint64_t value) {
  config.Write(offset, LeBytes(value, size));
}

}  // namespace vmm

#endif  // VMM_TESTS_UNIT_DEVICES_PCI_TEST_PCI_DEVICE_H_
