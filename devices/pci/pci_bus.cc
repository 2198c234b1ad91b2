#include "devices/pci/pci_bus.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "devices/pci/pci_config_space.h"
#include "devices/pci/pci_host_bridge.h"

namespace vmm {
namespace {

// Memory BARs get at least a page so no two devices share one (ioeventfds
// and any later direct mapping work per page).
constexpr uint64_t kMinMemoryBarAlignment = 0x1000;
// Beyond the largest x86 physical address width: garbage, never mapped.
constexpr uint64_t kMaxPhysicalAddress = 1ull << 52;
constexpr uint64_t kIoSpaceEnd = 0x10000;

// Maps a BAR on a Bus: forwards accesses to the device with the BAR index.
class BarRegion : public BusDevice {
 public:
  BarRegion(std::shared_ptr<PciDevice> device, int bar) : device_(std::move(device)), bar_(bar) {}
  void Read(uint64_t offset, absl::Span<uint8_t> data) override {
    device_->BarRead(bar_, offset, data);
  }
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override {
    device_->BarWrite(bar_, offset, data);
  }

 private:
  const std::shared_ptr<PciDevice> device_;
  const int bar_;
};

// Whether `base` is a placement worth mapping: not unassigned (0), not the
// all-ones pattern of a guest sizing the BAR, inside the address space.
bool PlacementValid(const PciBarInfo& info, uint64_t base) {
  if (base == 0) return false;
  const uint64_t size = info.size;
  uint64_t end;
  if (__builtin_add_overflow(base, size, &end)) return false;
  switch (info.type) {
    case PciBarType::kIo:
      return end <= kIoSpaceEnd;
    case PciBarType::kMemory32:
      return base != (~(size - 1) & 0xffff'fff0u) && end <= (1ull << 32);
    case PciBarType::kMemory64: {
      if (end > kMaxPhysicalAddress) return false;
      // Either half still all-ones: the guest is sizing it.
      const bool low_sizing = size < (1ull << 32) &&
                              static_cast<uint32_t>(base) == (~(size - 1) & 0xffff'fff0u);
      return !low_sizing && (base >> 32) != 0xffff'ffffu;
    }
  }
  return false;
}

// Reserves `size` bytes aligned to `align` in `window`, of which `next`
// bytes are used; nullopt if it is full.
std::optional<uint64_t> Allocate(PciWindow window, uint64_t& next, uint64_t size, uint64_t align) {
  if (window.size == 0) return std::nullopt;
  uint64_t cur = window.start + next;
  uint64_t base;
  if (__builtin_add_overflow(cur, align - 1, &base)) return std::nullopt;
  base &= ~(align - 1);
  uint64_t end;
  if (__builtin_add_overflow(base, size, &end) || end > window.start + window.size) {
    return std::nullopt;
  }
  next = end - window.start;
  return base;
}

bool TouchesBarsOrCommand(uint64_t reg, size_t size) {
  const uint64_t end = reg + size;
  auto overlaps = [&](uint64_t lo, uint64_t hi) { return reg < hi && end > lo; };
  return overlaps(kPciCommand, kPciCommand + 2) ||
         overlaps(kPciBar0, kPciBar0 + 4 * kPciBarCount);
}

}  // namespace

PciBus::PciBus(PciBusConfig config) : config_(std::move(config)) {
  {
    absl::MutexLock lock(&write_mu_);
    mmio32_.window = config_.mmio32_window;
    mmio64_.window = config_.mmio64_window;
    io_.window = config_.io_window;
  }
  absl::MutexLock lock(&mu_);
  slots_[0].device = std::make_shared<PciHostBridge>();
}

absl::Status PciBus::PlaceBars(PciConfigSpace& config, Allocator& mmio32, Allocator& mmio64,
                               Allocator& io, uint16_t* command_bits) const {
  std::vector<std::pair<int, PciBarInfo>> bars;
  for (int i = 0; i < kPciBarCount; ++i) {
    if (std::optional<PciBarInfo> info = config.bar_info(i)) bars.emplace_back(i, *info);
  }
  // Largest first, as firmware does, so alignment wastes little.
  std::stable_sort(bars.begin(), bars.end(),
                   [](const auto& a, const auto& b) { return a.second.size > b.second.size; });
  for (const auto& [index, info] : bars) {
    Allocator* from;
    uint64_t align;
    if (info.type == PciBarType::kIo) {
      // Without a PIO bus there is nothing to map it on: leave it unassigned.
      if (config_.pio_bus == nullptr || io.window.size == 0) continue;
      from = &io;
      align = info.size;
    } else {
      from = (info.type == PciBarType::kMemory64 && mmio64.window.size != 0) ? &mmio64 : &mmio32;
      align = std::max(info.size, kMinMemoryBarAlignment);
    }
    std::optional<uint64_t> base = Allocate(from->window, from->next, info.size, align);
    if (!base) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "PCI BAR %d (0x%x bytes) does not fit in window 0x%x+0x%x", index, info.size,
          from->window.start, from->window.size));
    }
    config.SetBarAddress(index, *base);
    *command_bits |= info.type == PciBarType::kIo ? kPciCommandIo : kPciCommandMemory;
  }
  return absl::OkStatus();
}

absl::StatusOr<int> PciBus::AddDevice(std::shared_ptr<PciDevice> device,
                                      std::optional<int> wanted) {
  if (!device) return absl::InvalidArgumentError("PCI AddDevice: null device");
  absl::MutexLock write_lock(&write_mu_);
  int slot = -1;
  {
    absl::ReaderMutexLock lock(&mu_);
    if (wanted) {
      if (*wanted < 1 || *wanted >= kSlotCount) {
        return absl::InvalidArgumentError(
            absl::StrFormat("PCI slot %d does not exist (1 to %d)", *wanted, kSlotCount - 1));
      }
      if (slots_[*wanted].device) {
        return absl::AlreadyExistsError(
            absl::StrFormat("PCI slot %d is taken by another device", *wanted));
      }
      slot = *wanted;
    }
    for (int i = 1; i < kSlotCount && slot < 0; ++i) {
      if (!slots_[i].device) slot = i;
    }
  }
  if (slot < 0) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("PCI bus 0 is full (%d slots)", kSlotCount - 1));
  }
  PciConfigSpace& config = device->config();
  Allocator mmio32 = mmio32_, mmio64 = mmio64_, io = io_;
  uint16_t command_bits = 0;
  RETURN_IF_ERROR(Annotate(PlaceBars(config, mmio32, mmio64, io, &command_bits),
                           absl::StrFormat("PCI slot %d", slot)));
  mmio32_ = mmio32;
  mmio64_ = mmio64;
  io_ = io;
  config.SetCommandBits(command_bits);
  if (config.interrupt_pin() != kPciInterruptPinNone) {
    const uint32_t gsi = config_.intx_gsis[slot % 4];
    config.SetInterruptLine(static_cast<uint8_t>(gsi));
    if (config_.intx_line) config.ConnectIntx(config_.intx_line(gsi));
  }
  {
    absl::MutexLock lock(&mu_);
    slots_[slot] = Slot{std::move(device), {}};
  }
  SyncMappings(slot);
  return slot;
}

Bus* PciBus::BusFor(const PciBarInfo& info) const {
  return info.type == PciBarType::kIo ? config_.pio_bus : config_.mmio_bus;
}

bool PciBus::SyncSlot(int slot, std::vector<Move>& moves) {
  std::shared_ptr<PciDevice> device;
  std::array<BarState, kPciBarCount> bars;
  {
    absl::ReaderMutexLock lock(&mu_);
    device = slots_[slot].device;
    bars = slots_[slot].bars;
  }
  if (!device) return false;
  PciConfigSpace& config = device->config();
  const uint16_t command = config.command();
  bool removed = false;
  uint64_t refused = 0;
  for (int i = 0; i < kPciBarCount; ++i) {
    std::optional<PciBarInfo> info = config.bar_info(i);
    if (!info) continue;
    Bus* bus = BusFor(*info);
    const bool decode =
        (command & (info->type == PciBarType::kIo ? kPciCommandIo : kPciCommandMemory)) != 0;
    std::optional<uint64_t> want;
    if (bus != nullptr && decode) {
      const uint64_t base = config.BarAddress(i);
      if (PlacementValid(*info, base)) want = base;
    }
    BarState& state = bars[i];
    if (want == state.wanted) continue;
    state.wanted = want;
    const std::optional<uint64_t> old = state.mapped;
    if (state.mapped) {
      bus->Remove(*state.mapped).IgnoreError();  // we inserted it; it is there
      state.mapped.reset();
      removed = true;
    }
    if (want) {
      if (bus->Insert(std::make_shared<BarRegion>(device, i), *want, info->size).ok()) {
        state.mapped = want;
      } else {
        ++refused;  // overlaps another range: stays unmapped until moved again
      }
    }
    if (old != state.mapped) moves.push_back({device, i, old, state.mapped});
  }
  absl::MutexLock lock(&mu_);
  slots_[slot].bars = bars;
  refused_ += refused;
  return removed;
}

void PciBus::RetryRefused(std::vector<Move>& moves) {
  for (int slot = 0; slot < kSlotCount; ++slot) {
    std::shared_ptr<PciDevice> device;
    std::array<BarState, kPciBarCount> bars;
    {
      absl::ReaderMutexLock lock(&mu_);
      device = slots_[slot].device;
      bars = slots_[slot].bars;
    }
    if (!device) continue;
    bool changed = false;
    for (int i = 0; i < kPciBarCount; ++i) {
      BarState& state = bars[i];
      if (!state.wanted || state.mapped) continue;
      std::optional<PciBarInfo> info = device->config().bar_info(i);
      if (!info) continue;
      if (BusFor(*info)->Insert(std::make_shared<BarRegion>(device, i), *state.wanted, info->size)
              .ok()) {
        state.mapped = state.wanted;
        moves.push_back({device, i, std::nullopt, state.mapped});
        changed = true;
      }
    }
    if (changed) {
      absl::MutexLock lock(&mu_);
      slots_[slot].bars = bars;
    }
  }
}

void PciBus::SyncMappings(int slot) {
  std::vector<Move> moves;
  if (SyncSlot(slot, moves)) RetryRefused(moves);
  if (!config_.on_bar_move) return;
  for (const Move& m : moves) config_.on_bar_move(*m.device, m.bar, m.old_base, m.new_base);
}

std::shared_ptr<PciDevice> PciBus::Lookup(uint32_t bus, uint32_t device, uint32_t function) const {
  if (bus != 0 || device >= kSlotCount || function != 0) return nullptr;
  absl::ReaderMutexLock lock(&mu_);
  return slots_[device].device;
}

void PciBus::ConfigRead(uint32_t bus, uint32_t device, uint32_t function, uint64_t reg,
                        absl::Span<uint8_t> data) const {
  std::shared_ptr<PciDevice> dev = Lookup(bus, device, function);
  if (!dev) {
    std::fill(data.begin(), data.end(), 0xff);
    return;
  }
  dev->config().Read(reg, data);
}

void PciBus::ConfigWrite(uint32_t bus, uint32_t device, uint32_t function, uint64_t reg,
                         absl::Span<const uint8_t> data) {
  absl::MutexLock write_lock(&write_mu_);
  std::shared_ptr<PciDevice> dev = Lookup(bus, device, function);
  if (!dev) return;
  dev->config().Write(reg, data);
  if (TouchesBarsOrCommand(reg, data.size())) SyncMappings(static_cast<int>(device));
}

absl::Status PciBus::RestoreConfig(int slot, absl::string_view state) {
  absl::MutexLock write_lock(&write_mu_);
  std::shared_ptr<PciDevice> d = device(slot);
  if (slot == 0 || d == nullptr) {
    return absl::NotFoundError(absl::StrCat("no PCI device in slot ", slot));
  }
  RETURN_IF_ERROR(d->config().RestoreState(state));
  SyncMappings(slot);
  return absl::OkStatus();
}

std::shared_ptr<PciDevice> PciBus::device(int slot) const {
  if (slot < 0 || slot >= kSlotCount) return nullptr;
  absl::ReaderMutexLock lock(&mu_);
  return slots_[slot].device;
}

std::vector<PciSlotInfo> PciBus::Slots() const {
  std::vector<PciSlotInfo> out;
  for (int slot = 1; slot < kSlotCount; ++slot) {
    std::shared_ptr<PciDevice> dev = device(slot);
    if (!dev) continue;
    out.push_back({slot, dev->config().interrupt_pin(), config_.intx_gsis[slot % 4]});
  }
  return out;
}

std::optional<uint64_t> PciBus::BarMapping(int slot, int bar) const {
  if (slot < 0 || slot >= kSlotCount || bar < 0 || bar >= kPciBarCount) return std::nullopt;
  absl::ReaderMutexLock lock(&mu_);
  return slots_[slot].bars[bar].mapped;
}

uint64_t PciBus::refused_bar_placements() const {
  absl::ReaderMutexLock lock(&mu_);
  return refused_;
}

}  // namespace vmm
