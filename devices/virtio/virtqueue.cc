// Split virtqueue, device side (virtio 1.x 2.7). Everything read from the
// rings is guest-controlled: read once, validated before use, and any
// violation is an error the device turns into DEVICE_NEEDS_RESET.
#include "devices/virtio/virtqueue.h"

#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "base/status_macros.h"

namespace vmm {
namespace {

// Ring offsets (2.7.6, 2.7.8).
constexpr uint64_t kRingIdxOffset = 2;
constexpr uint64_t kRingEntriesOffset = 4;

std::string Hex(uint64_t v) { return absl::StrFormat("%#x", v); }

// The ring's index, flags and event fields are shared with guest CPUs
// running concurrently. They are sequentially consistent atomics: loads are
// acquires (the guest's descriptors and ring entries written before its
// index store are visible after), stores are releases (our used element is
// visible before the used index), and a store followed by a load of another
// field is ordered — the store/load barrier notification suppression needs
// on both sides (Linux's virtio_mb). On x86 that costs one XCHG per store.
// Descriptors and ring entries themselves are plain copies ordered by these.
// (Not atomic_thread_fence: GCC cannot check fences under TSan.)
//
// Create() checked alignment (avail 2, used 4) and the mappings are page
// aligned, so the host pointer is 2-aligned.
absl::StatusOr<uint16_t*> RingField(const GuestMemory& memory, GuestAddress addr) {
  ASSIGN_OR_RETURN(absl::Span<uint8_t> s, memory.Slice(addr, sizeof(uint16_t)));
  return reinterpret_cast<uint16_t*>(s.data());
}

absl::StatusOr<uint16_t> LoadRingField(const GuestMemory& memory, GuestAddress addr) {
  ASSIGN_OR_RETURN(uint16_t * p, RingField(memory, addr));
  return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

absl::Status StoreRingField(const GuestMemory& memory, GuestAddress addr, uint16_t value) {
  ASSIGN_OR_RETURN(uint16_t * p, RingField(memory, addr));
  __atomic_store_n(p, value, __ATOMIC_SEQ_CST);
  return absl::OkStatus();
}

// Linux's vring_need_event: whether `event` lies in [old_idx, new_idx),
// modulo 2^16.
bool NeedEvent(uint16_t event, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

absl::Status CheckRing(const GuestMemory& memory, absl::string_view what, GuestAddress addr,
                       uint64_t alignment, uint64_t bytes) {
  if (addr.value() % alignment != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "virtqueue %s at %s is not %d-byte aligned", what, Hex(addr.value()), alignment));
  }
  if (!memory.Contains(addr, bytes)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "virtqueue %s [%s, +%s) is not inside guest RAM", what, Hex(addr.value()), Hex(bytes)));
  }
  return absl::OkStatus();
}

// Walks one descriptor chain, collecting its buffers. Every step is
// bounded: a table of n entries yields at most n descriptors, so a loop is
// reported once the count exceeds n, and an indirect table switches the
// walk once (nesting is refused).
class ChainWalker {
 public:
  ChainWalker(const GuestMemory& memory, const VirtqueueConfig& config)
      : memory_(memory), config_(config) {}

  absl::StatusOr<DescriptorChain> Walk(uint16_t head) {
    GuestAddress table = config_.desc;
    uint32_t table_entries = config_.size;
    bool indirect = false;
    uint32_t walked = 0;
    uint16_t index = head;
    while (true) {
      if (++walked > table_entries) {
        return Error(head, absl::StrFormat("%s chain is longer than its %d entries (a loop?)",
                                           indirect ? "indirect" : "descriptor", table_entries));
      }
      // Inside RAM: the table was checked (Create, CheckIndirect) and index
      // is below its entry count.
      ASSIGN_OR_RETURN(VirtqDesc desc, memory_.Read<VirtqDesc>(table + 16ull * index));
      if (desc.flags & kVirtqDescFIndirect) {
        if (indirect) return Error(head, "nested indirect descriptor table");
        RETURN_IF_ERROR(CheckIndirect(head, desc));
        table = GuestAddress(desc.addr);
        table_entries = desc.len / sizeof(VirtqDesc);
        indirect = true;
        walked = 0;
        index = 0;
        continue;
      }
      RETURN_IF_ERROR(AddBuffer(head, index, desc));
      if (!(desc.flags & kVirtqDescFNext)) break;
      if (desc.next >= table_entries) {
        return Error(head, absl::StrFormat("descriptor %d links to %d, outside its %d-entry table",
                                           index, desc.next, table_entries));
      }
      index = desc.next;
    }
    return DescriptorChain(head, std::move(readable_), std::move(writable_));
  }

 private:
  absl::Status Error(uint16_t head, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrFormat("virtqueue chain at head %d: %s", head, what));
  }

  absl::Status CheckIndirect(uint16_t head, const VirtqDesc& desc) const {
    if (!config_.indirect) {
      return Error(head, "indirect descriptor but VIRTIO_F_INDIRECT_DESC was not negotiated");
    }
    // The WRITE flag of the descriptor naming the table is ignored (2.7.5.3.2).
    if (desc.flags & kVirtqDescFNext) return Error(head, "indirect descriptor also has NEXT set");
    if (desc.len == 0 || desc.len % sizeof(VirtqDesc) != 0) {
      return Error(head, absl::StrFormat("indirect table length %d is not a non-zero multiple of 16",
                                         desc.len));
    }
    if (desc.len / sizeof(VirtqDesc) > kVirtqMaxIndirectDescriptors) {
      return Error(head, absl::StrFormat("indirect table of %d entries exceeds %d",
                                         desc.len / sizeof(VirtqDesc),
                                         kVirtqMaxIndirectDescriptors));
    }
    if (!memory_.Contains(GuestAddress(desc.addr), desc.len)) {
      return Error(head, absl::StrFormat("indirect table [%s, +%s) is not in guest RAM",
                                         Hex(desc.addr), Hex(desc.len)));
    }
    return absl::OkStatus();
  }

  absl::Status AddBuffer(uint16_t head, uint16_t index, const VirtqDesc& desc) {
    const bool write = desc.flags & kVirtqDescFWrite;
    if (!write && saw_writable_) {
      return Error(head, absl::StrFormat("descriptor %d is device-readable after a writable one",
                                         index));
    }
    saw_writable_ |= write;
    // A zero-length buffer carries nothing; it is dropped (not even its
    // address is checked), so devices never see empty buffers.
    if (desc.len == 0) return absl::OkStatus();
    // Contains() also refuses ranges that wrap the 64-bit address space.
    if (!memory_.Contains(GuestAddress(desc.addr), desc.len)) {
      return Error(head, absl::StrFormat("buffer [%s, +%s) of descriptor %d is not in guest RAM",
                                         Hex(desc.addr), Hex(desc.len), index));
    }
    (write ? writable_ : readable_).push_back(VirtioBuffer{GuestAddress(desc.addr), desc.len});
    return absl::OkStatus();
  }

  const GuestMemory& memory_;
  const VirtqueueConfig& config_;
  bool saw_writable_ = false;
  std::vector<VirtioBuffer> readable_;
  std::vector<VirtioBuffer> writable_;
};

}  // namespace

absl::StatusOr<Virtqueue> Virtqueue::Create(const VirtqueueConfig& config,
                                            const GuestMemory& memory) {
  const uint16_t n = config.size;
  if (n == 0 || n > kVirtqMaxSize || (n & (n - 1)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("virtqueue size %d is not a power of two in 1..%d", n, kVirtqMaxSize));
  }
  RETURN_IF_ERROR(CheckRing(memory, "descriptor table", config.desc, 16, VirtqDescTableBytes(n)));
  RETURN_IF_ERROR(CheckRing(memory, "available ring", config.avail, 2, VirtqAvailRingBytes(n)));
  RETURN_IF_ERROR(CheckRing(memory, "used ring", config.used, 4, VirtqUsedRingBytes(n)));
  return Virtqueue(config);
}

absl::StatusOr<std::optional<DescriptorChain>> Virtqueue::PopChain(const GuestMemory& memory) {
  const uint16_t n = config_.size;
  // One read of the guest's index; it orders the reads of the ring entry and
  // descriptors the guest wrote before publishing it.
  ASSIGN_OR_RETURN(uint16_t avail_idx, LoadRingField(memory, config_.avail + kRingIdxOffset));
  const uint16_t pending = static_cast<uint16_t>(avail_idx - next_avail_);
  if (pending == 0) return std::nullopt;
  if (pending > n) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "virtqueue avail index moved from %d to %d, more than the queue size %d", next_avail_,
        avail_idx, n));
  }
  const GuestAddress slot = config_.avail + kRingEntriesOffset + 2ull * (next_avail_ & (n - 1));
  ASSIGN_OR_RETURN(uint16_t head, memory.Read<uint16_t>(slot));
  if (head >= n) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "virtqueue avail ring entry %d names head %d, outside the queue size %d", next_avail_,
        head, n));
  }
  ASSIGN_OR_RETURN(DescriptorChain chain, ChainWalker(memory, config_).Walk(head));
  ++next_avail_;
  return std::optional<DescriptorChain>(std::move(chain));
}

absl::StatusOr<bool> Virtqueue::HasAvailable(const GuestMemory& memory) const {
  ASSIGN_OR_RETURN(uint16_t avail_idx, LoadRingField(memory, config_.avail + kRingIdxOffset));
  return avail_idx != next_avail_;
}

absl::Status Virtqueue::AddUsed(DescriptorChain chain, uint32_t written,
                                const GuestMemory& memory) {
  const uint16_t n = config_.size;
  // Both are VMM bugs, not guest input: the chain came from another queue,
  // or the device claims more bytes than the driver gave it.
  if (chain.head() >= n) {
    return absl::InvalidArgumentError(
        absl::StrFormat("used head %d is outside the queue size %d", chain.head(), n));
  }
  if (written > chain.writable_bytes()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "used length %d exceeds the chain's %d writable bytes", written, chain.writable_bytes()));
  }
  const GuestAddress elem = config_.used + kRingEntriesOffset + 8ull * (next_used_ & (n - 1));
  RETURN_IF_ERROR(memory.Write(elem, VirtqUsedElem{chain.head(), written}));
  ++next_used_;
  // The element is visible before the index that publishes it.
  return StoreRingField(memory, config_.used + kRingIdxOffset, next_used_);
}

absl::StatusOr<bool> Virtqueue::ShouldNotify(const GuestMemory& memory) {
  // Our used idx store (AddUsed) is ordered before these loads, so the
  // driver cannot miss an entry while we miss its request for an interrupt.
  if (!config_.event_idx) {
    ASSIGN_OR_RETURN(uint16_t flags, LoadRingField(memory, config_.avail));
    return (flags & kVirtqAvailFNoInterrupt) == 0;
  }
  const uint16_t old_idx = signalled_used_;
  const bool valid = signalled_used_valid_;
  signalled_used_ = next_used_;
  signalled_used_valid_ = true;
  if (!valid) return true;
  ASSIGN_OR_RETURN(uint16_t used_event,
                   LoadRingField(memory, config_.avail + kRingEntriesOffset + 2ull * config_.size));
  return NeedEvent(used_event, next_used_, old_idx);
}

absl::Status Virtqueue::SetNotificationsEnabled(bool enabled, const GuestMemory& memory) {
  if (config_.event_idx) {
    // With EVENT_IDX the driver ignores used flags. Disabling leaves
    // avail_event where it was (at most one more kick); enabling asks for a
    // kick when the driver publishes slot next_avail_.
    if (!enabled) return absl::OkStatus();
    return StoreRingField(memory, config_.used + kRingEntriesOffset + 8ull * config_.size,
                          next_avail_);
  }
  // The caller re-checks the avail ring after enabling; the seq_cst store
  // keeps that read after this write.
  return StoreRingField(memory, config_.used, enabled ? 0 : kVirtqUsedFNoNotify);
}

absl::StatusOr<std::optional<DescriptorChain>> Virtqueue::PopOrEnableNotification(
    const GuestMemory& memory) {
  absl::StatusOr<std::optional<DescriptorChain>> popped = PopChain(memory);
  if (!popped.ok() || popped->has_value()) return popped;
  if (absl::Status s = SetNotificationsEnabled(true, memory); !s.ok()) return s;
  return PopChain(memory);
}

absl::StatusOr<VirtqueueHostAddresses> VirtqueueHostAddressesOf(const VirtqueueConfig& config,
                                                                const GuestMemory& memory) {
  auto host = [&](GuestAddress at, uint64_t size) -> absl::StatusOr<uint64_t> {
    ASSIGN_OR_RETURN(absl::Span<uint8_t> slice, memory.Slice(at, size));
    return reinterpret_cast<uint64_t>(slice.data());
  };
  VirtqueueHostAddresses a;
  ASSIGN_OR_RETURN(a.desc, host(config.desc, VirtqDescTableBytes(config.size)));
  ASSIGN_OR_RETURN(a.avail, host(config.avail, VirtqAvailRingBytes(config.size)));
  ASSIGN_OR_RETURN(a.used, host(config.used, VirtqUsedRingBytes(config.size)));
  return a;
}

}  // namespace vmm
