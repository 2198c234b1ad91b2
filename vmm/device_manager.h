// DeviceManager: the PCI bus and the virtio devices of a VM, and their wiring
// to KVM — each queue's notification through an ioeventfd into the event
// loop, each interrupt out through an irqfd (MSI-X vectors over GSI routes,
// virtio-mmio slots into IOAPIC pins). Devices and transports never see KVM;
// this is where their eventfds meet it (Cloud Hypervisor's device manager,
// Firecracker's register_mmio_virtio).
#ifndef VMM_VMM_DEVICE_MANAGER_H_
#define VMM_VMM_DEVICE_MANAGER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/cancellation.h"
#include "base/event_loop.h"
#include "base/guest_memory.h"
#include "base/state_file.h"
#include "devices/bus.h"
#include "devices/pci/pci_bus.h"
#include "devices/virtio/device_spec.h"
#include "devices/virtio/virtio_device.h"
#include "vmm/interrupts.h"
#include "vmm/kvm/vm_wiring.h"
#include "vmm/vmm.h"

namespace vmm {

class VirtioMmioTransport;
class VirtioPciTransport;
class VirtioTransportState;

struct DeviceManagerDeps {
  VmWiring* vm = nullptr;  // KvmVm, or a fake in tests
  GsiRouter* gsi_router = nullptr;
  Bus* pio_bus = nullptr;
  Bus* mmio_bus = nullptr;
  const GuestMemory* memory = nullptr;
  EventLoop* loop = nullptr;
  // One-line notices for the user (e.g. an image whose size is not a whole
  // number of sectors).
  std::function<void(absl::string_view)> notice;
  // Called on the loop thread when a device enters DEVICE_NEEDS_RESET (its
  // driver broke the protocol, or its back-end failed). May be empty.
  std::function<void(const DeviceInfo&)> on_needs_reset;
};

// Counters over all virtio transports.
struct VirtioCounters {
  // Queue notifications that reached a transport in user space instead of
  // an ioeventfd: zero on a healthy data path.
  uint64_t notify_exits = 0;
  uint64_t notifies_dropped = 0;
  uint64_t used_interrupts = 0;
  uint64_t needs_reset = 0;
};

class DeviceManager : public VirtioDeviceHost {
 public:
  // Creates the PCI bus (host bridge, 0xCF8 and ECAM front-ends) with its
  // 64-bit BAR window above `ram_end`.
  static absl::StatusOr<std::unique_ptr<DeviceManager>> Create(DeviceManagerDeps deps,
                                                               uint64_t ram_end);
  ~DeviceManager();

  // Creates the device each config describes (through its kind's spec,
  // devices/virtio/registry.h) and adds it. Order: devices with addr= first
  // (so that no device takes the slot another asked for), then registry
  // order (disks, network, console, rng, vsock), the given order within a
  // kind. A kind that allows one device given twice, or a PCI slot asked
  // for twice, is an InvalidArgument/AlreadyExists naming it. `cancel` (may
  // be null) is checked between devices and handed to their factories.
  absl::Status AddDevices(absl::Span<const DeviceConfig> configs,
                          const Cancellation* cancel = nullptr);

  // Puts `device` behind a new transport of the given kind: a PCI function
  // (MSI-X, notify ioeventfds in its BAR) in `pci_slot` or the lowest free
  // one, or the next free virtio-mmio slot (layout.h).
  // `kind` names the device in devices() (its spec's name; empty: from
  // its virtio device type).
  absl::Status AddVirtioDevice(std::shared_ptr<VirtioDevice> device, VirtioTransport transport,
                               std::optional<int> pci_slot = std::nullopt,
                               std::string kind = "");

  // VirtioDeviceHost: what device factories need from the VM: the event
  // loop their host-side I/O runs on (the same thread as ProcessQueue) and
  // the notice sink.
  EventLoop& loop() const override { return *deps_.loop; }
  void Notice(absl::string_view line) const override {
    if (deps_.notice) deps_.notice(line);
  }
  const Cancellation* cancellation() const override { return adding_cancel_; }

  // "virtio_mmio.device=4K@0xd0000000:16 ..." for every populated
  // virtio-mmio slot, the form Linux's virtio_mmio driver parses.
  std::string MmioCmdlineFragments() const;
  // Indices of the populated virtio-mmio slots (layout.h), for ACPI.
  std::vector<uint32_t> MmioSlotIndices() const;
  // Populated PCI slots, for the MP table / ACPI.
  std::vector<PciSlotInfo> PciSlots() const { return pci_->Slots(); }

  // Snapshots (issue 15; device_manager_snapshot.cc). SaveState adds one
  // section per virtio device, "virtio/<transport>/<address>": its kind,
  // its PCI config space, its transport's registers and — if the guest is
  // using it — its queues' positions and its own state. A device that
  // cannot be saved (vhost, vhost-user) is refused by name. Called with the
  // VM paused.
  absl::Status SaveState(StateFile* file) const;
  // Restores them into this VM's devices, which must be the snapshot's:
  // the same kinds at the same addresses (FailedPrecondition naming the
  // first difference). Before the vCPUs run.
  absl::Status RestoreState(const StateFile& file);

  VirtioCounters counters() const;
  // Every device with its transport's state and counters and its own,
  // virtio-mmio slots then PCI functions, each in the order added.
  std::vector<DeviceInfo> devices() const;

 private:
  // One virtio transport's notify eventfds and where KVM listens for them.
  struct Wiring {
    std::vector<int> eventfds;            // every queue's notify eventfd (KVM ioeventfds)
    std::vector<int> watched;             // fds in the event loop
    IoSpace space = IoSpace::kMmio;
    uint32_t width = 0;
    bool datamatch = false;               // datamatch = queue index
    std::optional<uint64_t> first_notify; // address of queue 0's notify
    uint64_t stride = 0;                  // between queues' notify addresses
    bool active = false;                  // the driver set DRIVER_OK
    bool wired = false;                   // ioeventfds registered with KVM
  };

  // A transport as devices() and the snapshots see it.
  struct TransportEntry {
    std::string kind, transport, address;
    std::shared_ptr<VirtioMmioTransport> mmio;
    std::shared_ptr<VirtioPciTransport> pci;
    int pci_slot = -1;
    VirtioTransportState& state() const;
  };
  // Every transport, virtio-mmio slots then PCI functions, each in the
  // order added (copied out under mu_: ask them without it).
  std::vector<TransportEntry> Transports() const ABSL_LOCKS_EXCLUDED(mu_);

  explicit DeviceManager(DeviceManagerDeps deps) : deps_(std::move(deps)) {}
  absl::Status AddMmio(std::shared_ptr<VirtioDevice> device, std::string kind);
  absl::Status AddPci(std::shared_ptr<VirtioDevice> device, std::optional<int> slot,
                      std::string kind);
  // Puts the transport's queue notify eventfds in the event loop (for a
  // queue in a back-end, its call eventfd instead: the back-end reads the
  // notify eventfd itself) and makes its activation hook wire them to KVM
  // (filling wiring->eventfds and wiring->watched).
  absl::Status WireTransport(VirtioTransportState& state, Wiring* wiring);
  // Registers (or removes) the ioeventfds so they match the wiring's state.
  void Rewire(Wiring& wiring) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnBarMove(PciDevice& device, int bar, std::optional<uint64_t> new_base);
  // needs_reset_event_ fired: reports each device whose needs-reset count
  // grew since the last report (the loop thread).
  void ReportNeedsReset();

  DeviceManagerDeps deps_;
  std::shared_ptr<PciBus> pci_;
  // AddDevices' `cancel`, during that call only (the factories' thread).
  const Cancellation* adding_cancel_ = nullptr;
  // Every transport writes it on entering DEVICE_NEEDS_RESET (with
  // deps_.on_needs_reset only); the loop watches it.
  std::optional<EventFd> needs_reset_event_;
  // Needs-reset counts already reported, in devices() order (loop thread).
  std::vector<uint64_t> needs_reset_reported_;

  mutable absl::Mutex mu_;
  struct MmioSlot {
    std::shared_ptr<VirtioMmioTransport> transport;
    uint64_t base;
    uint32_t gsi;
    std::unique_ptr<Wiring> wiring;
    std::string kind;
  };
  struct PciFunction {
    std::shared_ptr<VirtioPciTransport> transport;
    std::shared_ptr<KvmMsiVectors> vectors;
    std::unique_ptr<Wiring> wiring;
    std::string kind;
    int slot = -1;  // once placed on the bus
  };
  std::vector<MmioSlot> mmio_slots_ ABSL_GUARDED_BY(mu_);
  std::vector<PciFunction> pci_functions_ ABSL_GUARDED_BY(mu_);
  uint64_t ioeventfd_failures_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vmm

#endif  // VMM_VMM_DEVICE_MANAGER_H_
