// virtio-pci, modern (non-transitional) only (virtio 1.2 section 4.1): a PCI
// function whose registers sit in one BAR, over the shared status/feature/
// queue machine (virtio_transport_state.h).
//
// Identity: vendor 0x1AF4, device 0x1040 + device type, revision 1, subsystem
// 0x1AF4 / the same device ID, class code per type (VirtioPciClassCode),
// interrupt pin INTA.
//
// BAR 0, 64-bit memory, not prefetchable (ISR reads have side effects),
// kBarSize bytes:
//   0x0000 common configuration (cfg_type 1)
//   0x1000 ISR status, 1 byte, read-to-clear (cfg_type 3)
//   0x2000 device-specific configuration (cfg_type 4)
//   0x3000 notifications (cfg_type 2): queue q at 0x3000 + 4 * q
//          (queue_notify_off = q, notify_off_multiplier = 4)
//   0x4000 MSI-X table (num_queues + 1 vectors)
//   0x6000 MSI-X PBA
// plus the PCI configuration access capability (cfg_type 5), a window onto
// the BAR through config space.
//
// Interrupts: with MSI-X enabled, queue q raises its queue_msix_vector and
// config changes raise config_msix_vector (VIRTIO_MSI_NO_VECTOR: none);
// otherwise INTx through the config space's line (ISR bits 0/1; reading the
// ISR clears it and deasserts the line).
//
// Wiring (the VMM): PciBus::AddDevice; MSI-X vectors through the
// MsiVectorSink given to Create; queue q's EventFd bound with KVM_IOEVENTFD
// at BAR(notify_bar()) + notify_offset(q), kNotifyWidth bytes, no datamatch,
// re-bound when the PCI bus reports that BAR moved; its event-loop callback
// calls HandleQueueNotifyEvent(q). A notify write that reaches BarWrite takes
// the slow path (same effect, counted in counters().notify_exits).
#ifndef VMM_DEVICES_VIRTIO_VIRTIO_PCI_TRANSPORT_H_
#define VMM_DEVICES_VIRTIO_VIRTIO_PCI_TRANSPORT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "base/eventfd.h"
#include "base/guest_memory.h"
#include "devices/interrupt.h"
#include "devices/pci/msix.h"
#include "devices/pci/pci_config_space.h"
#include "devices/pci/pci_device.h"
#include "devices/virtio/virtio_device.h"
#include "devices/virtio/virtio_transport_state.h"

namespace vmm {

inline constexpr uint16_t kVirtioPciVendorId = 0x1af4;
inline constexpr uint16_t kVirtioPciDeviceIdBase = 0x1040;

// virtio_pci_cap cfg_type values.
inline constexpr uint8_t kVirtioPciCapCommonCfg = 1;
inline constexpr uint8_t kVirtioPciCapNotifyCfg = 2;
inline constexpr uint8_t kVirtioPciCapIsrCfg = 3;
inline constexpr uint8_t kVirtioPciCapDeviceCfg = 4;
inline constexpr uint8_t kVirtioPciCapPciCfg = 5;

// The PCI class code (base << 16 | sub << 8 | prog-if) for a virtio device
// type: what Cloud Hypervisor and QEMU report (network, storage, ...);
// 0xff0000 for types without a natural class.
uint32_t VirtioPciClassCode(uint32_t device_type);

class VirtioPciTransport final : public PciDevice, private VirtioInterruptDelivery {
 public:
  static constexpr int kBar = 0;
  static constexpr uint64_t kBarSize = 0x8000;
  static constexpr uint64_t kCommonCfgOffset = 0x0000;
  static constexpr uint64_t kCommonCfgLength = 0x3c;  // virtio_pci_modern_common_cfg
  static constexpr uint64_t kIsrOffset = 0x1000;
  static constexpr uint64_t kIsrLength = 1;
  static constexpr uint64_t kDeviceCfgOffset = 0x2000;
  static constexpr uint64_t kDeviceCfgLength = 0x1000;
  static constexpr uint64_t kNotifyOffset = 0x3000;
  static constexpr uint32_t kNotifyOffMultiplier = 4;
  static constexpr uint32_t kNotifyWidth = 2;
  static constexpr uint32_t kMsixTableOffset = 0x4000;
  static constexpr uint32_t kMsixPbaOffset = 0x6000;

  // `memory` must outlive the transport. `msi_sink` receives the MSI-X
  // vectors (null: MSI-X vectors stay pending, INTx still works).
  static absl::StatusOr<std::shared_ptr<VirtioPciTransport>> Create(
      std::shared_ptr<VirtioDevice> device, const GuestMemory& memory,
      std::shared_ptr<MsiVectorSink> msi_sink);

  // PciDevice.
  PciConfigSpace& config() override { return config_; }
  void BarRead(int bar, uint64_t offset, absl::Span<uint8_t> data) override;
  void BarWrite(int bar, uint64_t offset, absl::Span<const uint8_t> data) override;

  // Where queue q's notification lands: BAR notify_bar() + notify_offset(q),
  // kNotifyWidth bytes, no datamatch.
  int notify_bar() const { return kBar; }
  uint64_t notify_offset(uint16_t queue) const {
    return kNotifyOffset + uint64_t{kNotifyOffMultiplier} * queue;
  }
  absl::Span<const EventFd> queue_notify_eventfds() const {
    return state_->queue_notify_eventfds();
  }
  uint16_t num_queues() const { return state_->num_queues(); }
  // The event-loop callback for queue q's notify EventFd.
  void HandleQueueNotifyEvent(uint16_t queue) { state_->HandleQueueNotifyEvent(queue); }
  // Called with true after DRIVER_OK activated the device, false after the
  // reset of an activated device.
  void SetActivationHook(VirtioTransportState::ActivationHook hook) {
    state_->SetActivationHook(std::move(hook));
  }
  VirtioTransportCounters counters() const { return state_->counters(); }
  VirtioTransportState& state() { return *state_; }
  Msix& msix() { return *msix_; }

  // Snapshots (issue 15): the MSI-X table and the virtio registers with the
  // device's state. The config space is the bus's to restore
  // (PciBus::RestoreConfig), before RestoreState.
  absl::StatusOr<std::string> SaveState();
  absl::Status RestoreState(absl::string_view state);
  // Config-space offset of each capability (for tests and diagnostics).
  uint16_t pci_cfg_cap_offset() const { return pci_cfg_cap_; }

 private:
  explicit VirtioPciTransport(const PciFunctionId& id) : config_(id) {}

  absl::Status AddCapabilities();
  void CommonRead(uint64_t offset, absl::Span<uint8_t> data);
  void CommonWrite(uint64_t offset, uint64_t value, size_t width);
  // The PCI configuration access capability's pci_cfg_data was accessed.
  void PciCfgRead(uint64_t cap_offset, absl::Span<uint8_t> data);
  void PciCfgWrite(uint64_t cap_offset, absl::Span<const uint8_t> data);

  // VirtioInterruptDelivery.
  bool MsixEnabled() override;
  void SendMsix(uint16_t vector) override;
  void InterruptStatusChanged(uint8_t status, bool raised) override;
  int DirectMsixFd(uint16_t vector) override { return msix_->DirectTriggerFd(vector); }

  PciConfigSpace config_;
  uint16_t pci_cfg_cap_ = 0;  // set once during Create
  std::unique_ptr<Msix> msix_;
  // Last: destroyed first, while the members it calls back into still live.
  std::unique_ptr<VirtioTransportState> state_;
};

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_VIRTIO_PCI_TRANSPORT_H_
