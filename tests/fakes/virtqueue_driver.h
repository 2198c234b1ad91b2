// A virtqueue *driver* for device tests and fuzzers: builds split rings in a
// GuestMemory the way Linux's virtio_ring.c does (descriptors from a LIFO
// free list, NEXT-linked, readable before writable, indirect tables on
// request, avail index published with release ordering), reads back the used
// ring, and lets hostile tests write raw descriptors and ring fields.
//
// Free of gtest: misuse (descriptors or data area exhausted, an unknown used
// id, a ring outside RAM) goes to Options::on_error. Unit tests use
// FakeVirtqueueDriver (fake_virtqueue_driver.h), which fails the test there;
// the fuzzers (tests/fuzz/device_driver.h) ignore it and set
// reuse_descriptors, a driver that hands out descriptors the device may
// still hold.
//
// Typical use:
//   GuestMemory mem = TestGuestMemory(4 << 20);
//   FakeVirtqueueDriver driver(mem, {.size = 16, .event_idx = true});
//   ASSIGN_OR... Virtqueue::Create(driver.config(), mem);
//   uint16_t head = driver.AddChainBytes({{1, 2, 3}}, {512});
//   ... device pops, writes, AddUsed ...
//   auto used = driver.PopUsed();  // {head, len, first len written bytes}
//
// Not thread-safe: one test thread drives it (the device may run elsewhere;
// ring fields are accessed atomically, ordered like a real driver).
#ifndef VMM_TESTS_FAKES_VIRTQUEUE_DRIVER_H_
#define VMM_TESTS_FAKES_VIRTQUEUE_DRIVER_H_

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "base/guest_address.h"
#include "base/guest_memory.h"
#include "devices/virtio/descriptor_chain.h"
#include "devices/virtio/virtqueue.h"

namespace vmm::testing {

struct VirtqueueDriverOptions {
  uint16_t size = 16;
  // Rings are laid out from here like Linux's vring_init: descriptor table,
  // avail ring right after it, used ring at the next 64-byte boundary.
  GuestAddress ring_base = GuestAddress(0x10000);
  // Explicit ring addresses override the layout (misalignment tests...).
  std::optional<GuestAddress> desc, avail, used;
  // Buffers and indirect tables the driver allocates come from this area
  // (a bump allocator that wraps to the start when full).
  GuestAddress data_base = GuestAddress(0x100000);
  uint64_t data_size = 0x100000;
  bool event_idx = false;  // VIRTIO_F_RING_EVENT_IDX negotiated
  bool indirect = false;   // VIRTIO_F_INDIRECT_DESC negotiated
  // Descriptors are taken in table order, wrapping, whether or not the
  // device still holds them (no free list; used entries are not checked).
  bool reuse_descriptors = false;
  // Told about misuse (see above); nothing happens when empty.
  std::function<void(const std::string&)> on_error;
};

class VirtqueueDriver {
 public:
  using Options = VirtqueueDriverOptions;
  static constexpr uint16_t kNoHead = 0xffff;

  // A used ring entry as the driver sees it.
  struct UsedEntry {
    uint16_t head = 0;
    uint32_t len = 0;
    // The first min(len, writable bytes) bytes of the chain's writable
    // buffers, concatenated in chain order.
    std::vector<uint8_t> written;
  };

  explicit VirtqueueDriver(const GuestMemory& memory, Options options = {})
      : memory_(&memory), options_(options), data_next_(options.data_base) {
    const uint16_t n = options_.size;
    desc_ = options_.desc.value_or(options_.ring_base);
    avail_ = options_.avail.value_or(desc_ + VirtqDescTableBytes(n));
    used_ = options_.used.value_or(
        GuestAddress((avail_.value() + VirtqAvailRingBytes(n) + 63) & ~uint64_t{63}));
    // Linux zeroes the rings it allocates; do the same where they are in RAM.
    Zero(desc_, VirtqDescTableBytes(n));
    Zero(avail_, VirtqAvailRingBytes(n));
    Zero(used_, VirtqUsedRingBytes(n));
    for (uint32_t i = n; i > 0; --i) free_.push_back(static_cast<uint16_t>(i - 1));
  }

  VirtqueueConfig config() const {
    return VirtqueueConfig{.size = options_.size, .desc = desc_, .avail = avail_, .used = used_,
                           .event_idx = options_.event_idx, .indirect = options_.indirect};
  }
  uint16_t size() const { return options_.size; }
  const Options& options() const { return options_; }
  GuestAddress desc_addr() const { return desc_; }
  GuestAddress avail_addr() const { return avail_; }
  GuestAddress used_addr() const { return used_; }
  // Descriptors not currently part of an outstanding chain.
  size_t free_descriptors() const { return free_.size(); }

  // --- Guest memory ---------------------------------------------------------

  // `len` bytes from the data area, `align`-aligned.
  GuestAddress Alloc(uint64_t len, uint64_t align = 16) {
    uint64_t start = (data_next_.value() + align - 1) & ~(align - 1);
    const uint64_t end = options_.data_base.value() + options_.data_size;
    if (start + len > end) start = options_.data_base.value();
    if (start + len > end) {
      Fail(absl::StrCat("allocation of ", len, " bytes exceeds the data area"));
      return options_.data_base;
    }
    data_next_ = GuestAddress(start + len);
    return GuestAddress(start);
  }
  // A new buffer holding `bytes` (a device-readable buffer).
  VirtioBuffer PlaceBytes(absl::Span<const uint8_t> bytes) {
    VirtioBuffer b{Alloc(bytes.size()), static_cast<uint32_t>(bytes.size())};
    WriteGuest(b.addr, bytes);
    return b;
  }
  // A new buffer of `len` bytes filled with `fill` (a device-writable buffer).
  VirtioBuffer PlaceFilled(uint32_t len, uint8_t fill = 0) {
    VirtioBuffer b{Alloc(len), len};
    WriteGuest(b.addr, std::vector<uint8_t>(len, fill));
    return b;
  }
  void WriteGuest(GuestAddress addr, absl::Span<const uint8_t> bytes) const {
    Check(memory_->WriteBytes(addr, bytes));
  }
  std::vector<uint8_t> ReadGuest(GuestAddress addr, uint64_t len) const {
    std::vector<uint8_t> out(len);
    Check(memory_->ReadBytes(addr, absl::MakeSpan(out)));
    return out;
  }

  // --- Making buffers available ---------------------------------------------

  // Puts a chain of direct descriptors (readable ones first) in the table,
  // its head in the next avail slot, and publishes it unless publish=false.
  // Buffer addresses are used as given (they may be hostile). Returns the
  // head, or kNoHead (and reports it) when descriptors run out.
  uint16_t AddChain(absl::Span<const VirtioBuffer> readable,
                    absl::Span<const VirtioBuffer> writable, bool publish = true) {
    return AddChainOf(Parts(readable, writable), publish);
  }

  // One buffer of a chain, device-writable or not, in the order given.
  struct ChainPart {
    VirtioBuffer buffer;
    bool writable = false;
  };
  // `readable` then `writable`, as Linux orders a chain.
  static std::vector<ChainPart> Parts(absl::Span<const VirtioBuffer> readable,
                                      absl::Span<const VirtioBuffer> writable) {
    std::vector<ChainPart> parts;
    for (const VirtioBuffer& b : readable) parts.push_back({b, false});
    for (const VirtioBuffer& b : writable) parts.push_back({b, true});
    return parts;
  }
  uint16_t AddChainOf(absl::Span<const ChainPart> parts, bool publish = true) {
    const size_t count = parts.size();
    const size_t available = options_.reuse_descriptors ? options_.size : free_.size();
    if (count == 0 || count > available) {
      Fail(absl::StrCat("cannot add a chain of ", count, " descriptors (", available,
                        " available)"));
      return kNoHead;
    }
    std::vector<uint16_t> ids(count);
    for (uint16_t& id : ids) id = TakeDescriptor();
    std::vector<VirtioBuffer> writable;
    for (size_t i = 0; i < count; ++i) {
      const bool last = i + 1 == count;
      WriteDesc(ids[i], parts[i].buffer.addr.value(), parts[i].buffer.len,
                static_cast<uint16_t>((parts[i].writable ? kVirtqDescFWrite : 0) |
                                      (last ? 0 : kVirtqDescFNext)),
                last ? 0 : ids[i + 1]);
      if (parts[i].writable) writable.push_back(parts[i].buffer);
    }
    Track(ids, std::move(writable));
    PushAvail(ids[0], publish);
    return ids[0];
  }

  // Convenience: copies each of `readable` into a new buffer and allocates
  // writable buffers of `writable_lens` bytes (zero-filled).
  uint16_t AddChainBytes(const std::vector<std::vector<uint8_t>>& readable,
                         const std::vector<uint32_t>& writable_lens, bool publish = true) {
    std::vector<VirtioBuffer> r, w;
    for (const auto& bytes : readable) r.push_back(PlaceBytes(bytes));
    for (uint32_t len : writable_lens) w.push_back(PlaceFilled(len));
    return AddChain(r, w, publish);
  }

  // One ring descriptor with VIRTQ_DESC_F_INDIRECT pointing at a table
  // (allocated in the data area) of NEXT-linked descriptors, readable first.
  uint16_t AddIndirectChain(absl::Span<const VirtioBuffer> readable,
                            absl::Span<const VirtioBuffer> writable, bool publish = true) {
    return AddIndirectChainOf(Parts(readable, writable), publish);
  }
  uint16_t AddIndirectChainOf(absl::Span<const ChainPart> parts, bool publish = true) {
    const size_t count = parts.size();
    if (count == 0 || (!options_.reuse_descriptors && free_.empty())) {
      Fail(absl::StrCat("cannot add an indirect chain of ", count));
      return kNoHead;
    }
    const GuestAddress table = Alloc(count * sizeof(VirtqDesc), 16);
    std::vector<VirtioBuffer> writable;
    for (size_t i = 0; i < count; ++i) {
      const bool last = i + 1 == count;
      WriteDescAt(table, static_cast<uint16_t>(i), parts[i].buffer.addr.value(),
                  parts[i].buffer.len,
                  static_cast<uint16_t>((parts[i].writable ? kVirtqDescFWrite : 0) |
                                        (last ? 0 : kVirtqDescFNext)),
                  last ? 0 : static_cast<uint16_t>(i + 1));
      if (parts[i].writable) writable.push_back(parts[i].buffer);
    }
    const uint16_t head = TakeDescriptor();
    WriteDesc(head, table.value(), static_cast<uint32_t>(count * sizeof(VirtqDesc)),
              kVirtqDescFIndirect, 0);
    Track({head}, std::move(writable));
    PushAvail(head, publish);
    return head;
  }

  // Puts `head` in the next avail ring slot; publishes unless publish=false.
  void PushAvail(uint16_t head, bool publish = true) {
    WriteAvailRing(shadow_avail_idx_, head);
    ++shadow_avail_idx_;
    if (publish) Publish();
  }
  // Makes every pushed head visible: avail idx = pushed count (release).
  void Publish() {
    last_published_old_ = published_avail_idx_;
    published_avail_idx_ = shadow_avail_idx_;
    Store16(avail_ + 2, published_avail_idx_);
  }
  // The avail idx the driver has published.
  uint16_t avail_idx() const { return published_avail_idx_; }

  // Whether Linux would kick after the last Publish(): vring_need_event on
  // avail_event with EVENT_IDX, else !VIRTQ_USED_F_NO_NOTIFY.
  bool KickNeeded() const {
    if (options_.event_idx) {
      const uint16_t event = avail_event();
      return static_cast<uint16_t>(published_avail_idx_ - event - 1) <
             static_cast<uint16_t>(published_avail_idx_ - last_published_old_);
    }
    return (used_flags() & kVirtqUsedFNoNotify) == 0;
  }

  // --- Used ring ------------------------------------------------------------

  uint16_t used_idx() const { return Load16(used_ + 2); }
  uint16_t used_flags() const { return Load16(used_); }
  uint16_t avail_event() const { return Load16(used_ + 4 + 8ull * options_.size); }
  VirtqUsedElem used_elem(uint16_t ring_index) const {
    auto e = memory_->Read<VirtqUsedElem>(used_ + 4 + 8ull * (ring_index % options_.size));
    Check(e.status());
    return e.ok() ? *e : VirtqUsedElem{};
  }
  // How many used entries the driver has not popped yet.
  uint16_t pending_used() const { return static_cast<uint16_t>(used_idx() - last_used_idx_); }

  // The next used entry not yet seen, if any; frees its descriptors.
  std::optional<UsedEntry> PopUsed() {
    if (used_idx() == last_used_idx_) return std::nullopt;
    const VirtqUsedElem e = used_elem(last_used_idx_);
    ++last_used_idx_;
    UsedEntry out{static_cast<uint16_t>(e.id), e.len, {}};
    auto it = e.id <= 0xffff ? in_flight_.find(static_cast<uint16_t>(e.id)) : in_flight_.end();
    if (it == in_flight_.end()) {
      if (!options_.reuse_descriptors) {
        Fail(absl::StrCat("used id ", e.id, " is not an outstanding head"));
      }
      return out;
    }
    uint64_t left = e.len;
    for (const VirtioBuffer& b : it->second.writable) {
      const uint64_t n = std::min<uint64_t>(left, b.len);
      if (n == 0) break;
      std::vector<uint8_t> part = ReadGuest(b.addr, n);
      out.written.insert(out.written.end(), part.begin(), part.end());
      left -= n;
    }
    for (auto id = it->second.descs.rbegin(); id != it->second.descs.rend(); ++id) {
      free_.push_back(*id);
    }
    in_flight_.erase(it);
    return out;
  }
  std::vector<UsedEntry> PopAllUsed() {
    std::vector<UsedEntry> out;
    while (auto e = PopUsed()) out.push_back(std::move(*e));
    return out;
  }

  // --- Driver-side notification suppression ----------------------------------

  void SetAvailFlags(uint16_t flags) { Store16(avail_, flags); }
  // used_event (EVENT_IDX): interrupt me when the used idx passes this.
  void SetUsedEvent(uint16_t idx) { Store16(avail_ + 4 + 2ull * options_.size, idx); }

  // --- Raw access for malformed-ring tests -----------------------------------

  void WriteDesc(uint16_t index, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
    WriteDescAt(desc_, index, addr, len, flags, next);
  }
  void WriteDescAt(GuestAddress table, uint16_t index, uint64_t addr, uint32_t len,
                   uint16_t flags, uint16_t next) {
    Check(memory_->Write(table + 16ull * index, VirtqDesc{addr, len, flags, next}));
  }
  // avail->ring[ring_index % size] = head.
  void WriteAvailRing(uint16_t ring_index, uint16_t head) {
    Check(memory_->Write(avail_ + 4 + 2ull * (ring_index % options_.size), head));
  }
  // Publishes an arbitrary avail idx (jumps, rewinds); later Publish() calls
  // continue from it.
  void SetAvailIdx(uint16_t idx) {
    shadow_avail_idx_ = idx;
    Publish();
  }
  void SetUsedIdx(uint16_t idx) { Store16(used_ + 2, idx); }

 private:
  struct InFlight {
    std::vector<uint16_t> descs;
    std::vector<VirtioBuffer> writable;
  };

  void Fail(const std::string& what) const {
    if (options_.on_error) options_.on_error(absl::StrCat("virtqueue driver: ", what));
  }
  void Check(const absl::Status& status) const {
    if (!status.ok()) Fail(status.ToString());
  }
  uint16_t TakeDescriptor() {
    if (options_.reuse_descriptors) {
      const uint16_t id = static_cast<uint16_t>(next_reused_ % options_.size);
      next_reused_ = static_cast<uint16_t>(id + 1);
      return id;
    }
    const uint16_t id = free_.back();
    free_.pop_back();
    return id;
  }
  // Remembers an outstanding chain, to read back and free when it is used.
  void Track(std::vector<uint16_t> ids, std::vector<VirtioBuffer> writable) {
    if (options_.reuse_descriptors) return;
    const uint16_t head = ids[0];
    in_flight_[head] = InFlight{std::move(ids), std::move(writable)};
  }

  void Zero(GuestAddress addr, uint64_t len) {
    if (memory_->Contains(addr, len)) WriteGuest(addr, std::vector<uint8_t>(len, 0));
  }
  uint16_t* HostPtr16(GuestAddress addr) const {
    auto s = memory_->Slice(addr, 2);
    Check(s.status());
    return s.ok() ? reinterpret_cast<uint16_t*>(s->data()) : nullptr;
  }
  // Ring index/flags/event fields are seq_cst atomics, as in virtqueue.cc:
  // release/acquire for the ring contents plus the store->load ordering
  // Linux gets from virtio_mb() before checking suppression.
  uint16_t Load16(GuestAddress addr) const {
    uint16_t* p = HostPtr16(addr);
    return p ? __atomic_load_n(p, __ATOMIC_SEQ_CST) : 0;
  }
  void Store16(GuestAddress addr, uint16_t v) {
    if (uint16_t* p = HostPtr16(addr)) __atomic_store_n(p, v, __ATOMIC_SEQ_CST);
  }

  const GuestMemory* memory_;
  Options options_;
  GuestAddress desc_, avail_, used_;
  GuestAddress data_next_;
  std::vector<uint16_t> free_;  // LIFO, like Linux's free_head list
  std::map<uint16_t, InFlight> in_flight_;
  uint16_t shadow_avail_idx_ = 0;
  uint16_t published_avail_idx_ = 0;
  uint16_t last_published_old_ = 0;
  uint16_t last_used_idx_ = 0;
  uint16_t next_reused_ = 0;  // reuse_descriptors: the next descriptor handed out
};

}  // namespace vmm::testing

#endif  // VMM_TESTS_FAKES_VIRTQUEUE_DRIVER_H_
