// vmm's side of a vhost-user session over one Channel: the handshake
// (SET_OWNER, features, protocol features) and the per-ring and memory
// requests a device's activation needs. With REPLY_ACK negotiated, every
// request that changes the back-end's state asks for an acknowledgement, so
// a refusal is an error at the request that caused it, not later.
#ifndef VMM_DEVICES_VHOST_USER_FRONTEND_H_
#define VMM_DEVICES_VHOST_USER_FRONTEND_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/guest_memory.h"
#include "devices/vhost_user/channel.h"
#include "devices/vhost_user/message.h"

namespace vmm::vhost_user {

// The protocol features vmm asks for (when the back-end has them).
inline constexpr uint64_t kWantedProtocolFeatures =
    (1ull << kProtocolMq) | (1ull << kProtocolReplyAck) | (1ull << kProtocolConfig);

// Guest RAM as SET_MEM_TABLE describes it: one region per mapping, its fd
// (the memfd) and where the region starts in it. FailedPrecondition when RAM
// is not shared memory (vmm backs it with a memfd whenever a vhost-user
// device exists), or has more regions than one message carries.
struct MemoryTable {
  std::vector<MemoryRegion> regions;
  std::vector<int> fds;  // owned by the GuestMemory
};
absl::StatusOr<MemoryTable> MemoryTableFor(const GuestMemory& memory);

class Frontend {
 public:
  explicit Frontend(Channel channel) : channel_(std::move(channel)) {}

  // SET_OWNER, GET_FEATURES and, if the back-end speaks them, the protocol
  // features (kWantedProtocolFeatures it also has). Once per connection.
  absl::Status Handshake();
  // The back-end's virtio features (GET_FEATURES, without the
  // protocol-features bit), known after Handshake.
  uint64_t backend_features() const { return backend_features_ & ~kFProtocolFeatures; }
  uint64_t protocol_features() const { return protocol_features_; }
  // The back-end speaks protocol features (VHOST_USER_F_PROTOCOL_FEATURES):
  // then its rings start disabled until SET_VRING_ENABLE.
  bool speaks_protocol_features() const { return (backend_features_ & kFProtocolFeatures) != 0; }
  bool HasProtocolFeature(int bit) const { return (protocol_features_ >> bit) & 1; }

  // How many queues the back-end has (GET_QUEUE_NUM; needs MQ).
  absl::StatusOr<uint64_t> GetQueueNum();
  // The negotiated virtio features (the protocol-features bit is added when
  // the back-end speaks them, as the spec asks).
  absl::Status SetFeatures(uint64_t features);
  // Guest RAM, one fd per region (mmap'able at the region's mmap_offset).
  absl::Status SetMemTable(absl::Span<const MemoryRegion> regions, absl::Span<const int> fds);
  absl::Status SetMemTable(const MemoryTable& table) {
    return SetMemTable(table.regions, table.fds);
  }
  absl::Status SetVringNum(uint32_t index, uint32_t size);
  absl::Status SetVringAddr(const VringAddr& addr);
  absl::Status SetVringBase(uint32_t index, uint32_t base);
  // fd < 0: no fd (the back-end polls).
  absl::Status SetVringKick(uint32_t index, int fd);
  absl::Status SetVringCall(uint32_t index, int fd);
  absl::Status SetVringEnable(uint32_t index, bool enable);
  // Stops the ring and returns where the back-end stopped (its next avail
  // index).
  absl::StatusOr<uint32_t> GetVringBase(uint32_t index);
  // `size` bytes of the device's config space from `offset` (needs CONFIG).
  absl::StatusOr<std::vector<uint8_t>> GetConfig(uint32_t offset, uint32_t size);

  const Channel& channel() const { return channel_; }
  Channel& channel() { return channel_; }

 private:
  // Sends a request that changes state; waits for its ack with REPLY_ACK.
  absl::Status Set(Request request, absl::Span<const uint8_t> payload,
                   absl::Span<const int> fds = {});
  template <typename T>
  absl::Status SetValue(Request request, const T& value, absl::Span<const int> fds = {}) {
    return Set(request,
               absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(&value), sizeof(value)), fds);
  }
  absl::StatusOr<uint64_t> GetU64(Request request);
  absl::Status SetVringFd(Request request, uint32_t index, int fd);

  Channel channel_;
  uint64_t backend_features_ = 0;
  uint64_t protocol_features_ = 0;
};

}  // namespace vmm::vhost_user

#endif  // VMM_DEVICES_VHOST_USER_FRONTEND_H_
