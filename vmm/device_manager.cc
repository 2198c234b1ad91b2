#include "vmm/device_manager.h"

#include <algorithm>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "arch/x86_64/layout.h"
#include "base/cancellation.h"
#include "base/status_macros.h"
#include "devices/pci/pci_config_io.h"
#include "devices/pci/pci_ecam.h"
#include "devices/virtio/registry.h"
#include "devices/virtio/virtio_mmio_transport.h"
#include "devices/virtio/virtio_pci_transport.h"

namespace vmm {
namespace {

namespace x86 = ::vmm::x86_64;

}  // namespace

absl::StatusOr<std::unique_ptr<DeviceManager>> DeviceManager::Create(DeviceManagerDeps deps,
                                                                     uint64_t ram_end) {
  std::unique_ptr<DeviceManager> manager(new DeviceManager(std::move(deps)));
  DeviceManager* self = manager.get();
  PciBusConfig pci;
  pci.mmio_bus = self->deps_.mmio_bus;
  pci.mmio32_window = {x86::kPciMmio32Start, x86::kPciMmio32Size};
  pci.mmio64_window = {x86::PciMmio64Start(ram_end), x86::kPciMmio64Size};
  pci.on_bar_move = [self](PciDevice& device, int bar, std::optional<uint64_t>,
                           std::optional<uint64_t> new_base) {
    self->OnBarMove(device, bar, new_base);
  };
  VmWiring* vm = self->deps_.vm;
  std::copy(std::begin(x86::kPciIntxGsis), std::end(x86::kPciIntxGsis), pci.intx_gsis.begin());
  pci.intx_line = [vm](uint32_t gsi) -> std::shared_ptr<IrqLine> {
    return std::make_shared<KvmIrqLine>(vm, gsi);
  };
  self->pci_ = std::make_shared<PciBus>(std::move(pci));
  if (self->deps_.on_needs_reset) {
    ASSIGN_OR_RETURN(EventFd event, EventFd::Create());
    self->needs_reset_event_.emplace(std::move(event));
    RETURN_IF_ERROR(self->deps_.loop->Add(
        self->needs_reset_event_->fd(), EPOLLIN, [self](uint32_t) { self->ReportNeedsReset(); },
        EventLoop::Kind::kControl));
  }
  RETURN_IF_ERROR(self->deps_.pio_bus->Insert(std::make_shared<PciConfigIo>(self->pci_),
                                              x86::kPciConfigAddressPort, PciConfigIo::kSize));
  RETURN_IF_ERROR(self->deps_.mmio_bus->Insert(std::make_shared<PciEcam>(self->pci_),
                                               x86::kEcamStart, x86::kEcamSize));
  return manager;
}

DeviceManager::~DeviceManager() {
  // The transports may outlive us (the buses hold them too): their hooks
  // must not call back into a destroyed manager.
  std::vector<std::shared_ptr<VirtioMmioTransport>> mmio;
  std::vector<std::shared_ptr<VirtioPciTransport>> pci;
  {
    absl::MutexLock lock(&mu_);
    for (MmioSlot& slot : mmio_slots_) mmio.push_back(slot.transport);
    for (PciFunction& function : pci_functions_) pci.push_back(function.transport);
  }
  for (auto& t : mmio) {
    t->SetActivationHook({});
    t->state().SetNeedsResetSignal(nullptr);
  }
  for (auto& t : pci) {
    t->SetActivationHook({});
    t->state().SetNeedsResetSignal(nullptr);
  }
  if (needs_reset_event_) (void)deps_.loop->Remove(needs_reset_event_->fd());
  // Unwire every ioeventfd before the eventfds (owned by the transports) go.
  absl::MutexLock lock(&mu_);
  for (MmioSlot& slot : mmio_slots_) {
    slot.wiring->active = false;
    Rewire(*slot.wiring);
    (void)deps_.vm->RemoveIrqfd(slot.transport->irq_eventfd().fd(), slot.gsi);
  }
  for (PciFunction& function : pci_functions_) {
    function.wiring->active = false;
    Rewire(*function.wiring);
  }
  for (MmioSlot& slot : mmio_slots_) {
    for (int fd : slot.wiring->watched) (void)deps_.loop->Remove(fd);
  }
  for (PciFunction& function : pci_functions_) {
    for (int fd : function.wiring->watched) (void)deps_.loop->Remove(fd);
  }
}

absl::Status DeviceManager::AddDevices(absl::Span<const DeviceConfig> configs,
                                       const Cancellation* cancel) {
  const absl::Span<const VirtioDeviceSpec* const> specs = VirtioDeviceSpecs();
  // A kind outside the registry (a library user's own spec) goes last.
  auto rank = [&specs](const DeviceConfig& config) {
    const auto it = absl::c_find(specs, &config->spec());
    return std::pair<bool, size_t>(!config->pci_slot.has_value(), it - specs.begin());
  };
  std::vector<const DeviceConfig*> order;
  for (const DeviceConfig& config : configs) order.push_back(&config);
  std::stable_sort(order.begin(), order.end(), [&rank](const DeviceConfig* a,
                                                       const DeviceConfig* b) {
    return rank(*a) < rank(*b);
  });
  absl::flat_hash_map<const VirtioDeviceSpec*, int> count;
  for (const DeviceConfig* config : order) {
    const VirtioDeviceSpec& spec = (*config)->spec();
    if (++count[&spec] > 1 && !spec.repeatable()) {
      return absl::InvalidArgumentError(
          absl::StrCat("more than one ", spec.name(), " device (a VM has at most one)"));
    }
  }
  adding_cancel_ = cancel;
  absl::Cleanup forget_cancel = [this] { adding_cancel_ = nullptr; };
  for (const DeviceConfig* config : order) {
    RETURN_IF_ERROR(CancellationStatus(cancel));
    const VirtioDeviceSpec& spec = (*config)->spec();
    ASSIGN_OR_RETURN(std::shared_ptr<VirtioDevice> device, spec.Create(**config, *this));
    if (device == nullptr) continue;  // "off"
    absl::Status added = AddVirtioDevice(std::move(device), (*config)->transport,
                                         (*config)->pci_slot, std::string(spec.name()));
    if (!added.ok()) {
      const std::string addr =
          (*config)->pci_slot ? absl::StrCat(" addr=", *(*config)->pci_slot) : "";
      return absl::Status(added.code(),
                          absl::StrCat(spec.name(), addr, ": ", added.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status DeviceManager::AddVirtioDevice(std::shared_ptr<VirtioDevice> device,
                                            VirtioTransport transport,
                                            std::optional<int> pci_slot, std::string kind) {
  if (kind.empty()) kind = absl::StrCat("virtio-device-", device->device_type());
  if (transport == VirtioTransport::kMmio) {
    if (pci_slot) return absl::InvalidArgumentError("addr= is for PCI devices");
    return AddMmio(std::move(device), std::move(kind));
  }
  return AddPci(std::move(device), pci_slot, std::move(kind));
}

absl::Status DeviceManager::WireTransport(VirtioTransportState& state, Wiring* wiring) {
  if (needs_reset_event_) state.SetNeedsResetSignal(&*needs_reset_event_);
  // Device work runs on the event loop only, whichever way a notify arrives.
  state.DeferNotifiesToEventFds();
  for (uint16_t q = 0; q < state.num_queues(); ++q) {
    int fd = state.queue_notify_eventfds()[q].fd();
    wiring->eventfds.push_back(fd);
    if (const EventFd* call = state.queue_call_eventfd(q); call != nullptr) {
      // The back-end takes the kicks; its signals come back through here
      // unless MSI-X lets them go straight to KVM.
      RETURN_IF_ERROR(deps_.loop->Add(call->fd(), EPOLLIN, [&state, q](uint32_t) {
        state.HandleQueueCallEvent(q);
      }));
      wiring->watched.push_back(call->fd());
      continue;
    }
    RETURN_IF_ERROR(deps_.loop->Add(fd, EPOLLIN, [&state, q](uint32_t) {
      state.HandleQueueNotifyEvent(q);
    }));
    wiring->watched.push_back(fd);
  }
  state.SetActivationHook([this, wiring](bool active) {
    absl::MutexLock lock(&mu_);
    wiring->active = active;
    Rewire(*wiring);
  });
  return absl::OkStatus();
}

void DeviceManager::Rewire(Wiring& wiring) {
  bool want = wiring.active && wiring.first_notify.has_value();
  if (want == wiring.wired) return;
  for (size_t q = 0; q < wiring.eventfds.size(); ++q) {
    uint64_t addr = *wiring.first_notify + (wiring.datamatch ? 0 : q * wiring.stride);
    std::optional<uint64_t> match =
        wiring.datamatch ? std::optional<uint64_t>(q) : std::nullopt;
    absl::Status s = want ? deps_.vm->AddIoeventfd(wiring.eventfds[q], wiring.space, addr,
                                                   wiring.width, match)
                          : deps_.vm->RemoveIoeventfd(wiring.eventfds[q], wiring.space, addr,
                                                      wiring.width, match);
    // Without its ioeventfd a notify still reaches the transport through the
    // bus (the slow path, counted there): degraded, never broken.
    if (!s.ok()) ++ioeventfd_failures_;
  }
  wiring.wired = want;
}

absl::Status DeviceManager::AddMmio(std::shared_ptr<VirtioDevice> device, std::string kind) {
  // Devices are added on one thread before the VM runs; mu_ is not held
  // while calling into the transport (its hook takes the transport's lock,
  // then mu_).
  uint32_t index;
  {
    absl::MutexLock lock(&mu_);
    index = static_cast<uint32_t>(mmio_slots_.size());
  }
  if (index >= x86::kVirtioMmioSlotCount) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "too many virtio-mmio devices: there are %d slots", x86::kVirtioMmioSlotCount));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<VirtioMmioTransport> transport,
                   VirtioMmioTransport::Create(std::move(device), *deps_.memory));
  uint64_t base = x86::kVirtioMmioStart + index * x86::kVirtioMmioSlotSize;
  uint32_t gsi = x86::kVirtioMmioFirstGsi + index;
  RETURN_IF_ERROR(deps_.mmio_bus->Insert(transport, base, x86::kVirtioMmioSlotSize));
  RETURN_IF_ERROR(deps_.vm->AddIrqfd(transport->irq_eventfd().fd(), gsi));

  auto wiring = std::make_unique<Wiring>();
  wiring->space = IoSpace::kMmio;
  wiring->width = VirtioMmioTransport::kQueueNotifyWidth;
  wiring->datamatch = true;
  wiring->first_notify = base + VirtioMmioTransport::kQueueNotifyOffset;
  RETURN_IF_ERROR(WireTransport(transport->state(), wiring.get()));
  absl::MutexLock lock(&mu_);
  mmio_slots_.push_back(
      MmioSlot{std::move(transport), base, gsi, std::move(wiring), std::move(kind)});
  return absl::OkStatus();
}

absl::Status DeviceManager::AddPci(std::shared_ptr<VirtioDevice> device,
                                   std::optional<int> wanted_slot, std::string kind) {
  // One MSI-X vector per queue plus the configuration vector.
  uint16_t vectors = static_cast<uint16_t>(device->queue_max_sizes().size() + 1);
  ASSIGN_OR_RETURN(std::unique_ptr<KvmMsiVectors> msi,
                   KvmMsiVectors::Create(deps_.vm, deps_.gsi_router, vectors));
  std::shared_ptr<KvmMsiVectors> sink(std::move(msi));
  ASSIGN_OR_RETURN(std::shared_ptr<VirtioPciTransport> transport,
                   VirtioPciTransport::Create(std::move(device), *deps_.memory, sink));

  auto wiring = std::make_unique<Wiring>();
  wiring->space = IoSpace::kMmio;
  wiring->width = VirtioPciTransport::kNotifyWidth;
  wiring->datamatch = false;
  wiring->stride = VirtioPciTransport::kNotifyOffMultiplier;
  RETURN_IF_ERROR(WireTransport(transport->state(), wiring.get()));
  {
    // Recorded before AddDevice: placing the BARs calls OnBarMove, which
    // looks the function up (and takes mu_, so it must not be held here).
    absl::MutexLock lock(&mu_);
    pci_functions_.push_back(PciFunction{transport, sink, std::move(wiring), std::move(kind)});
  }
  absl::StatusOr<int> slot = pci_->AddDevice(transport, wanted_slot);
  if (!slot.ok()) {
    absl::MutexLock lock(&mu_);
    for (int fd : pci_functions_.back().wiring->watched) (void)deps_.loop->Remove(fd);
    pci_functions_.pop_back();
    return slot.status();
  }
  absl::MutexLock lock(&mu_);
  for (PciFunction& function : pci_functions_) {
    if (function.transport == transport) function.slot = *slot;
  }
  return absl::OkStatus();
}

void DeviceManager::OnBarMove(PciDevice& device, int bar, std::optional<uint64_t> new_base) {
  absl::MutexLock lock(&mu_);
  for (PciFunction& function : pci_functions_) {
    if (function.transport.get() != &device || bar != function.transport->notify_bar()) continue;
    // Move every notify ioeventfd with the BAR: unwire at the old address,
    // wire at the new one (if the driver has the device running).
    Wiring& w = *function.wiring;
    bool active = w.active;
    w.active = false;
    Rewire(w);
    w.first_notify = new_base ? std::optional<uint64_t>(*new_base + function.transport->notify_offset(0))
                              : std::nullopt;
    w.active = active;
    Rewire(w);
  }
}

std::vector<uint32_t> DeviceManager::MmioSlotIndices() const {
  absl::MutexLock lock(&mu_);
  std::vector<uint32_t> indices;
  for (const MmioSlot& slot : mmio_slots_) {
    indices.push_back(static_cast<uint32_t>((slot.base - x86::kVirtioMmioStart) /
                                            x86::kVirtioMmioSlotSize));
  }
  return indices;
}

std::string DeviceManager::MmioCmdlineFragments() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  for (const MmioSlot& slot : mmio_slots_) {
    absl::StrAppendFormat(&out, "%svirtio_mmio.device=%dK@0x%x:%d", out.empty() ? "" : " ",
                          x86::kVirtioMmioSlotSize >> 10, slot.base, slot.gsi);
  }
  return out;
}

VirtioCounters DeviceManager::counters() const {
  // Copied out first: the transports' locks are taken after mu_ elsewhere
  // (activation hooks), never before.
  std::vector<std::shared_ptr<VirtioMmioTransport>> mmio;
  std::vector<std::shared_ptr<VirtioPciTransport>> pci;
  {
    absl::MutexLock lock(&mu_);
    for (const MmioSlot& slot : mmio_slots_) mmio.push_back(slot.transport);
    for (const PciFunction& function : pci_functions_) pci.push_back(function.transport);
  }
  VirtioCounters total;
  auto add = [&total](const VirtioTransportCounters& c) {
    total.notify_exits += c.notify_exits;
    total.notifies_dropped += c.notifies_dropped;
    total.used_interrupts += c.used_interrupts;
    total.needs_reset += c.needs_reset;
  };
  for (const auto& t : mmio) add(t->counters());
  for (const auto& t : pci) add(t->counters());
  return total;
}

namespace {

DeviceInfo DescribeDevice(std::string kind, std::string transport, std::string address,
                          VirtioTransportState& state) {
  DeviceInfo info;
  info.kind = std::move(kind);
  info.transport = std::move(transport);
  info.address = std::move(address);
  const uint8_t status = state.status();
  info.needs_reset = (status & kVirtioStatusNeedsReset) != 0;
  info.active = (status & kVirtioStatusDriverOk) != 0 && !info.needs_reset;
  info.needs_reset_reason = state.needs_reset_reason();
  const VirtioTransportCounters c = state.counters();
  info.counters = {
      {"notify_exits", c.notify_exits},
      {"notifies_dropped", c.notifies_dropped},
      {"used_interrupts", c.used_interrupts},
      {"config_interrupts", c.config_interrupts},
      {"needs_reset", c.needs_reset},
      {"features_ok_refused", c.features_ok_refused},
      {"queue_enable_refused", c.queue_enable_refused},
      {"bad_accesses", c.bad_accesses},
      {"activations", c.activations},
      {"resets", c.resets},
  };
  for (const DeviceCounter& counter : state.device().counters()) {
    info.counters.emplace_back(counter.name, counter.value);
  }
  return info;
}

}  // namespace

VirtioTransportState& DeviceManager::TransportEntry::state() const {
  return mmio ? mmio->state() : pci->state();
}

std::vector<DeviceManager::TransportEntry> DeviceManager::Transports() const {
  std::vector<TransportEntry> entries;
  absl::MutexLock lock(&mu_);
  for (const MmioSlot& slot : mmio_slots_) {
    entries.push_back({slot.kind, "mmio", absl::StrFormat("0x%x", slot.base), slot.transport,
                       nullptr});
  }
  for (const PciFunction& function : pci_functions_) {
    entries.push_back({function.kind, "pci",
                       absl::StrFormat("0000:00:%02x.0", function.slot < 0 ? 0 : function.slot),
                       nullptr, function.transport, function.slot});
  }
  return entries;
}

std::vector<DeviceInfo> DeviceManager::devices() const {
  // As in counters(): the transports are asked without mu_ held.
  std::vector<DeviceInfo> infos;
  for (TransportEntry& entry : Transports()) {
    infos.push_back(DescribeDevice(std::move(entry.kind), std::move(entry.transport),
                                   std::move(entry.address), entry.state()));
  }
  return infos;
}

void DeviceManager::ReportNeedsReset() {
  (void)needs_reset_event_->Read();
  const std::vector<DeviceInfo> infos = devices();
  needs_reset_reported_.resize(infos.size(), 0);
  for (size_t i = 0; i < infos.size(); ++i) {
    uint64_t count = 0;
    for (const auto& [name, value] : infos[i].counters) {
      if (name == "needs_reset") count = value;
    }
    if (count <= needs_reset_reported_[i]) continue;
    needs_reset_reported_[i] = count;
    deps_.on_needs_reset(infos[i]);
  }
}

}  // namespace vmm
