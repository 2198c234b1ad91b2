// A split virtqueue (virtio 1.x, 2.7): the device's side. The queue owns
// indices and the guest addresses the driver programmed, never memory: every
// access goes through the GuestMemory passed in, bounds-checked.
//
// Implementation: virtqueue.cc (virtio core helper).
#ifndef VMM_DEVICES_VIRTIO_VIRTQUEUE_H_
#define VMM_DEVICES_VIRTIO_VIRTQUEUE_H_

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "base/guest_address.h"
#include "base/guest_memory.h"
#include "devices/virtio/descriptor_chain.h"

namespace vmm {

// The split-ring layout in guest memory (virtio 1.x 2.7; little-endian, which
// is the host's order on x86-64). Shared with the test driver.
inline constexpr uint16_t kVirtqMaxSize = 32768;
inline constexpr uint16_t kVirtqDescFNext = 1;
inline constexpr uint16_t kVirtqDescFWrite = 2;
inline constexpr uint16_t kVirtqDescFIndirect = 4;
inline constexpr uint16_t kVirtqAvailFNoInterrupt = 1;
inline constexpr uint16_t kVirtqUsedFNoNotify = 1;
// Entries an indirect table may hold, whatever the queue size: Linux builds
// indirect tables longer than small queues, and QEMU caps them at 1024 too.
inline constexpr uint32_t kVirtqMaxIndirectDescriptors = 1024;

struct VirtqDesc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(VirtqDesc) == 16);

struct VirtqUsedElem {
  uint32_t id;   // head index of the chain
  uint32_t len;  // bytes written into its device-writable buffers
};
static_assert(sizeof(VirtqUsedElem) == 8);

// Bytes of each part, event-index fields included (2.7 "Virtqueue Part Size").
constexpr uint64_t VirtqDescTableBytes(uint16_t size) { return 16ull * size; }
constexpr uint64_t VirtqAvailRingBytes(uint16_t size) { return 6 + 2ull * size; }
constexpr uint64_t VirtqUsedRingBytes(uint16_t size) { return 6 + 8ull * size; }

// What the driver configured for one queue, as the transport collected it
// (queue_size, queue_desc, queue_driver, queue_device registers).
struct VirtqueueConfig {
  uint16_t size = 0;        // a power of two, 1..32768, <= the device's max
  GuestAddress desc;        // descriptor table, 16-byte aligned
  GuestAddress avail;       // driver area, 2-byte aligned
  GuestAddress used;        // device area, 4-byte aligned
  bool event_idx = false;   // VIRTIO_F_RING_EVENT_IDX negotiated
  bool indirect = false;    // VIRTIO_F_INDIRECT_DESC negotiated
};

// Where a queue's three parts are in this process (for a back-end outside
// the VMM: vhost and vhost-user take the rings by address). Fails if a part
// is not inside guest RAM.
struct VirtqueueHostAddresses {
  uint64_t desc = 0, avail = 0, used = 0;
};
absl::StatusOr<VirtqueueHostAddresses> VirtqueueHostAddressesOf(const VirtqueueConfig& config,
                                                                const GuestMemory& memory);

// Where a queue stands, for a snapshot (issue 15): the next avail ring
// slot the device will consume and the next used ring slot it will fill.
struct VirtqueuePosition {
  uint16_t next_avail = 0;
  uint16_t next_used = 0;
};

class Virtqueue {
 public:
  // Checks the configuration (size a power of two, alignment, every ring
  // inside guest RAM); InvalidArgument otherwise — the transport then refuses
  // to enable the queue / sets DEVICE_NEEDS_RESET.
  static absl::StatusOr<Virtqueue> Create(const VirtqueueConfig& config,
                                          const GuestMemory& memory);

  const VirtqueueConfig& config() const { return config_; }

  // The next available chain, walked and validated in full (see
  // DescriptorChain), or nullopt when the driver has made nothing new
  // available. An error means the driver broke the protocol (avail index
  // moved by more than the queue size, a descriptor outside RAM, a loop, ...):
  // the device must stop using the queue and ask for DEVICE_NEEDS_RESET.
  // A failed pop consumes nothing (the same error comes back), and the walk
  // is bounded: at most size + 1024 descriptors, no allocation beyond that.
  absl::StatusOr<std::optional<DescriptorChain>> PopChain(const GuestMemory& memory);

  // Whether the driver has made a chain available that PopChain has not
  // taken (one read of the avail index; for a device polling its ring). An
  // error when the index is unreadable.
  absl::StatusOr<bool> HasAvailable(const GuestMemory& memory) const;

  // Returns `chain` to the driver with `written` bytes written into its
  // device-writable buffers (the used ring entry), and publishes the new used
  // index.
  absl::Status AddUsed(DescriptorChain chain, uint32_t written, const GuestMemory& memory);

  // After one or more AddUsed: whether the driver wants an interrupt now
  // (VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX).
  absl::StatusOr<bool> ShouldNotify(const GuestMemory& memory);

  // Publishes avail_event (EVENT_IDX) / VIRTQ_USED_F_NO_NOTIFY so the driver
  // kicks (true) or need not kick (false) while the device is busy draining.
  absl::Status SetNotificationsEnabled(bool enabled, const GuestMemory& memory);

  // How a device drains a queue: the next chain, as PopChain; when there is
  // none, asks the driver to kick again and looks once more, so a chain
  // published in between is not left waiting for a kick that never comes.
  // nullopt means empty with notifications enabled; errors as PopChain's.
  absl::StatusOr<std::optional<DescriptorChain>> PopOrEnableNotification(
      const GuestMemory& memory);

  uint16_t next_avail() const { return next_avail_; }
  uint16_t next_used() const { return next_used_; }
  VirtqueuePosition position() const { return {next_avail_, next_used_}; }
  // A restored queue goes on from `position` (the guest's rings are in the
  // restored memory). The last notified used index is forgotten: the next
  // ShouldNotify interrupts, which a driver takes as at most a spurious one.
  void Restore(VirtqueuePosition position) {
    next_avail_ = position.next_avail;
    next_used_ = position.next_used;
    signalled_used_valid_ = false;
  }

 private:
  explicit Virtqueue(const VirtqueueConfig& config) : config_(config) {}

  VirtqueueConfig config_;
  uint16_t next_avail_ = 0;     // next avail ring slot to consume
  uint16_t next_used_ = 0;      // next used ring slot to fill
  uint16_t signalled_used_ = 0; // used index at the last notification (EVENT_IDX)
  bool signalled_used_valid_ = false;
};

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_VIRTQUEUE_H_
