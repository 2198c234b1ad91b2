#include "devices/pci/msix.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/state_file.h"
#include "base/status_macros.h"

namespace vmm {
namespace {

// Capability layout: id, next, message control (2), table offset/BIR (4),
// PBA offset/BIR (4).
constexpr uint64_t kCapControl = 2;
constexpr uint64_t kCapSize = 12;

uint64_t LoadLe(absl::Span<const uint8_t> data) {
  uint64_t v = 0;
  for (size_t i = 0; i < data.size(); ++i) v |= uint64_t{data[i]} << (8 * i);
  return v;
}

void StoreLe(uint64_t v, absl::Span<uint8_t> data) {
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(v >> (8 * i));
}

// The table and PBA take dword and naturally aligned qword accesses.
bool ValidAccess(uint64_t offset, size_t size, uint64_t region_size) {
  if (size != 4 && size != 8) return false;
  return offset % size == 0 && offset < region_size && size <= region_size - offset;
}

absl::Status CheckRegion(const PciConfigSpace& config, const char* what, int bar, uint64_t offset,
                         uint64_t size) {
  std::optional<PciBarInfo> info = config.bar_info(bar);
  if (!info || info->type == PciBarType::kIo) {
    return absl::InvalidArgumentError(
        absl::StrFormat("MSI-X %s: BAR %d is not a memory BAR", what, bar));
  }
  if (offset % 8 != 0 || offset > info->size || size > info->size - offset) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "MSI-X %s: 0x%x bytes at offset 0x%x do not fit 8-byte aligned in BAR %d (0x%x bytes)",
        what, size, offset, bar, info->size));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Msix>> Msix::Create(PciConfigSpace& config, const MsixLayout& layout,
                                                   std::shared_ptr<MsiVectorSink> sink) {
  const uint16_t n = layout.vector_count;
  if (n == 0 || n > kMaxVectors) {
    return absl::InvalidArgumentError(
        absl::StrFormat("MSI-X: %d vectors is outside 1..%d", n, kMaxVectors));
  }
  if (absl::Status s = CheckRegion(config, "table", layout.table_bar, layout.table_offset,
                                   TableSize(n));
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          CheckRegion(config, "PBA", layout.pba_bar, layout.pba_offset, PbaSize(n));
      !s.ok()) {
    return s;
  }
  if (layout.table_bar == layout.pba_bar &&
      layout.table_offset < uint64_t{layout.pba_offset} + PbaSize(n) &&
      layout.pba_offset < uint64_t{layout.table_offset} + TableSize(n)) {
    return absl::InvalidArgumentError("MSI-X: table and PBA overlap");
  }

  std::unique_ptr<Msix> msix(new Msix(config, layout, std::move(sink)));
  uint8_t cap[kCapSize] = {};
  StoreLe(n - 1u, absl::MakeSpan(cap + 2, 2));
  StoreLe(layout.table_offset | static_cast<uint32_t>(layout.table_bar), absl::MakeSpan(cap + 4, 4));
  StoreLe(layout.pba_offset | static_cast<uint32_t>(layout.pba_bar), absl::MakeSpan(cap + 8, 4));
  uint8_t mask[kCapSize] = {};
  mask[kCapControl + 1] = (kMsixControlEnable | kMsixControlFunctionMask) >> 8;

  Msix* self = msix.get();
  PciCapabilityHooks hooks;
  hooks.after_write = [self](uint64_t cap_offset, absl::Span<const uint8_t> data) {
    if (cap_offset < kCapControl + 2 && cap_offset + data.size() > kCapControl) {
      self->OnControlWritten();
    }
  };
  absl::StatusOr<uint16_t> offset = config.AddCapability(kPciCapIdMsix, cap, mask, std::move(hooks));
  if (!offset.ok()) return offset.status();
  msix->cap_offset_ = *offset;
  return msix;
}

Msix::Msix(PciConfigSpace& config, const MsixLayout& layout, std::shared_ptr<MsiVectorSink> sink)
    : config_(config), layout_(layout), sink_(std::move(sink)) {
  absl::MutexLock lock(&mu_);
  table_.resize(layout.vector_count);
  pba_.resize(PbaSize(layout.vector_count) / 8);
  reported_.resize(layout.vector_count);
}

void Msix::OnControlWritten() {
  absl::MutexLock lock(&mu_);
  const uint16_t control = config_.ReadRaw16(cap_offset_ + kCapControl);
  const bool enabled = (control & kMsixControlEnable) != 0;
  const bool function_masked = (control & kMsixControlFunctionMask) != 0;
  if (enabled == enabled_ && function_masked == function_masked_) return;
  enabled_ = enabled;
  function_masked_ = function_masked;
  for (uint16_t v = 0; v < layout_.vector_count; ++v) SyncVectorLocked(v);
}

std::string Msix::SaveState() const {
  absl::ReaderMutexLock lock(&mu_);
  StateWriter out;
  out.Put<uint16_t>(layout_.vector_count);
  for (const Entry& e : table_) {
    out.Put(e.address_lo);
    out.Put(e.address_hi);
    out.Put(e.data);
    out.Put(e.control);
  }
  for (uint64_t word : pba_) out.Put(word);
  return out.Take();
}

absl::Status Msix::RestoreState(absl::string_view state) {
  StateReader in("MSI-X", state);
  uint16_t count = 0;
  RETURN_IF_ERROR(in.Get("vector count", &count));
  if (count != layout_.vector_count) {
    return absl::DataLossError(absl::StrCat("MSI-X: ", count, " vectors saved, the device has ",
                                            layout_.vector_count));
  }
  std::vector<Entry> table(table_.size());
  for (Entry& e : table) {
    RETURN_IF_ERROR(in.Get("address", &e.address_lo));
    RETURN_IF_ERROR(in.Get("address", &e.address_hi));
    RETURN_IF_ERROR(in.Get("data", &e.data));
    RETURN_IF_ERROR(in.Get("control", &e.control));
  }
  std::vector<uint64_t> pba(pba_.size());
  for (uint64_t& word : pba) RETURN_IF_ERROR(in.Get("pending bits", &word));
  RETURN_IF_ERROR(in.Finish());
  absl::MutexLock lock(&mu_);
  table_ = std::move(table);
  pba_ = std::move(pba);
  const uint16_t control = config_.ReadRaw16(cap_offset_ + kCapControl);
  enabled_ = (control & kMsixControlEnable) != 0;
  function_masked_ = (control & kMsixControlFunctionMask) != 0;
  for (uint16_t v = 0; v < layout_.vector_count; ++v) SyncVectorLocked(v);
  return absl::OkStatus();
}

bool Msix::EffectiveMaskedLocked(uint16_t vector) const {
  return !enabled_ || function_masked_ || (table_[vector].control & kMsixVectorMasked) != 0;
}

void Msix::SyncVectorLocked(uint16_t vector) {
  const Entry& e = table_[vector];
  Reported now{{(uint64_t{e.address_hi} << 32) | e.address_lo, e.data},
               EffectiveMaskedLocked(vector)};
  Reported& last = reported_[vector];
  if (sink_ && (now.message != last.message || now.masked != last.masked)) {
    sink_->Configure(vector, now.message, now.masked);
    last = now;
  }
  uint64_t& word = pba_[vector / 64];
  const uint64_t bit = uint64_t{1} << (vector % 64);
  if (!now.masked && sink_ && (word & bit)) {
    word &= ~bit;
    sink_->Trigger(vector);
  }
}

uint32_t Msix::ReadTableDwordLocked(uint64_t offset) const {
  const Entry& e = table_[offset / kMsixEntrySize];
  switch (offset % kMsixEntrySize / 4) {
    case 0:
      return e.address_lo;
    case 1:
      return e.address_hi;
    case 2:
      return e.data;
    default:
      return e.control;
  }
}

void Msix::WriteTableDwordLocked(uint64_t offset, uint32_t value) {
  Entry& e = table_[offset / kMsixEntrySize];
  switch (offset % kMsixEntrySize / 4) {
    case 0:
      e.address_lo = value;
      break;
    case 1:
      e.address_hi = value;
      break;
    case 2:
      e.data = value;
      break;
    default:
      e.control = value & kMsixVectorMasked;  // bits 31:1 are reserved
      break;
  }
}

void Msix::TableRead(uint64_t offset, absl::Span<uint8_t> data) {
  if (!ValidAccess(offset, data.size(), TableSize(layout_.vector_count))) {
    std::fill(data.begin(), data.end(), 0xff);
    return;
  }
  absl::ReaderMutexLock lock(&mu_);
  for (size_t i = 0; i < data.size(); i += 4) {
    StoreLe(ReadTableDwordLocked(offset + i), data.subspan(i, 4));
  }
}

void Msix::TableWrite(uint64_t offset, absl::Span<const uint8_t> data) {
  if (!ValidAccess(offset, data.size(), TableSize(layout_.vector_count))) return;
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < data.size(); i += 4) {
    WriteTableDwordLocked(offset + i, static_cast<uint32_t>(LoadLe(data.subspan(i, 4))));
  }
  // A qword access stays inside one entry (entries are 16-byte aligned).
  SyncVectorLocked(static_cast<uint16_t>(offset / kMsixEntrySize));
}

void Msix::PbaRead(uint64_t offset, absl::Span<uint8_t> data) {
  if (!ValidAccess(offset, data.size(), PbaSize(layout_.vector_count))) {
    std::fill(data.begin(), data.end(), 0xff);
    return;
  }
  absl::ReaderMutexLock lock(&mu_);
  StoreLe(pba_[offset / 8] >> (8 * (offset % 8)), data);
}

void Msix::PbaWrite(uint64_t /*offset*/, absl::Span<const uint8_t> /*data*/) {}

bool Msix::BarRead(int bar, uint64_t offset, absl::Span<uint8_t> data) {
  if (bar == layout_.table_bar && offset >= layout_.table_offset &&
      offset - layout_.table_offset < TableSize(layout_.vector_count)) {
    TableRead(offset - layout_.table_offset, data);
    return true;
  }
  if (bar == layout_.pba_bar && offset >= layout_.pba_offset &&
      offset - layout_.pba_offset < PbaSize(layout_.vector_count)) {
    PbaRead(offset - layout_.pba_offset, data);
    return true;
  }
  return false;
}

bool Msix::BarWrite(int bar, uint64_t offset, absl::Span<const uint8_t> data) {
  if (bar == layout_.table_bar && offset >= layout_.table_offset &&
      offset - layout_.table_offset < TableSize(layout_.vector_count)) {
    TableWrite(offset - layout_.table_offset, data);
    return true;
  }
  if (bar == layout_.pba_bar && offset >= layout_.pba_offset &&
      offset - layout_.pba_offset < PbaSize(layout_.vector_count)) {
    PbaWrite(offset - layout_.pba_offset, data);
    return true;
  }
  return false;
}

bool Msix::Signal(uint16_t vector) {
  absl::MutexLock lock(&mu_);
  if (vector >= layout_.vector_count || !enabled_) return false;
  if (EffectiveMaskedLocked(vector) || !sink_) {
    pba_[vector / 64] |= uint64_t{1} << (vector % 64);
  } else {
    sink_->Trigger(vector);
  }
  return true;
}

int Msix::DirectTriggerFd(uint16_t vector) const {
  if (vector >= layout_.vector_count || !sink_) return -1;
  return sink_->DirectTriggerFd(vector);
}

bool Msix::enabled() const {
  absl::ReaderMutexLock lock(&mu_);
  return enabled_;
}

bool Msix::function_masked() const {
  absl::ReaderMutexLock lock(&mu_);
  return function_masked_;
}

bool Msix::vector_masked(uint16_t vector) const {
  absl::ReaderMutexLock lock(&mu_);
  return vector >= layout_.vector_count || (table_[vector].control & kMsixVectorMasked) != 0;
}

bool Msix::pending(uint16_t vector) const {
  absl::ReaderMutexLock lock(&mu_);
  return vector < layout_.vector_count && (pba_[vector / 64] >> (vector % 64)) & 1;
}

MsiMessage Msix::message(uint16_t vector) const {
  absl::ReaderMutexLock lock(&mu_);
  if (vector >= layout_.vector_count) return {};
  const Entry& e = table_[vector];
  return {(uint64_t{e.address_hi} << 32) | e.address_lo, e.data};
}

}  // namespace vmm
