// The vhost-user wire format (QEMU's docs/interop/vhost-user.rst): a 12-byte
// header (request, flags, payload size; native byte order) and a payload,
// file descriptors in SCM_RIGHTS ancillary data. Only what vmm's front-end
// sends and reads is here.
//
// Replies come from another program: ParseReply checks one before anything
// of it is used (the request it answers, the reply flag, the version, the
// payload's size for that request).
#ifndef VMM_DEVICES_VHOST_USER_MESSAGE_H_
#define VMM_DEVICES_VHOST_USER_MESSAGE_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace vmm::vhost_user {

// Front-end requests (the ids of the spec's "Front-end message types").
enum class Request : uint32_t {
  kGetFeatures = 1,
  kSetFeatures = 2,
  kSetOwner = 3,
  kResetOwner = 4,
  kSetMemTable = 5,
  kSetVringNum = 8,
  kSetVringAddr = 9,
  kSetVringBase = 10,
  kGetVringBase = 11,
  kSetVringKick = 12,
  kSetVringCall = 13,
  kSetVringErr = 14,
  kGetProtocolFeatures = 15,
  kSetProtocolFeatures = 16,
  kGetQueueNum = 17,
  kSetVringEnable = 18,
  kGetConfig = 24,
  kSetConfig = 25,
  kResetDevice = 34,
  kGetMaxMemSlots = 36,
};
const char* RequestName(Request request);

inline constexpr uint32_t kVersion = 0x1;          // flags bits 1:0
inline constexpr uint32_t kVersionMask = 0x3;
inline constexpr uint32_t kFlagReply = 1u << 2;
inline constexpr uint32_t kFlagNeedReply = 1u << 3;

// The virtio feature bit a back-end sets to say it speaks protocol features.
inline constexpr uint64_t kFProtocolFeatures = 1ull << 30;

// Protocol feature bits.
inline constexpr int kProtocolMq = 0;
inline constexpr int kProtocolReplyAck = 3;
inline constexpr int kProtocolConfig = 9;
inline constexpr int kProtocolResetDevice = 13;
inline constexpr int kProtocolConfigureMemSlots = 15;

// SET_VRING_KICK/CALL/ERR payload: the ring index in bits 7:0, bit 8 when no
// fd comes with it.
inline constexpr uint64_t kVringIndexMask = 0xff;
inline constexpr uint64_t kVringNoFd = 1ull << 8;

// The most regions SET_MEM_TABLE carries (and fds one message may hold).
inline constexpr size_t kMaxMemoryRegions = 8;
inline constexpr size_t kMaxFds = kMaxMemoryRegions;
// The largest device config space GET_CONFIG asks for.
inline constexpr uint32_t kMaxConfigSize = 256;

struct Header {
  uint32_t request = 0;
  uint32_t flags = 0;
  uint32_t size = 0;
};
static_assert(sizeof(Header) == 12);

struct VringState {
  uint32_t index = 0;
  uint32_t num = 0;
};
static_assert(sizeof(VringState) == 8);

struct VringAddr {
  uint32_t index = 0;
  uint32_t flags = 0;
  uint64_t desc_user_addr = 0;
  uint64_t used_user_addr = 0;
  uint64_t avail_user_addr = 0;
  uint64_t log_guest_addr = 0;
};
static_assert(sizeof(VringAddr) == 40);

struct MemoryRegion {
  uint64_t guest_phys_addr = 0;
  uint64_t memory_size = 0;
  uint64_t userspace_addr = 0;
  uint64_t mmap_offset = 0;
};
static_assert(sizeof(MemoryRegion) == 32);

struct ConfigHeader {
  uint32_t offset = 0;
  uint32_t size = 0;
  uint32_t flags = 0;
};
static_assert(sizeof(ConfigHeader) == 12);

// The largest payload vmm sends or accepts: a full memory table, or the
// largest config space with its header.
inline constexpr uint32_t kMaxPayload =
    std::max<uint32_t>(8 + sizeof(MemoryRegion) * kMaxMemoryRegions,
                       sizeof(ConfigHeader) + kMaxConfigSize);

// A message as bytes: header then payload.
std::vector<uint8_t> Encode(Request request, uint32_t flags, absl::Span<const uint8_t> payload);
template <typename T>
std::vector<uint8_t> EncodeValue(Request request, uint32_t flags, const T& value) {
  return Encode(request, flags,
                absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(&value), sizeof(value)));
}
// SET_MEM_TABLE's payload for `regions` (at most kMaxMemoryRegions).
std::vector<uint8_t> MemTablePayload(absl::Span<const MemoryRegion> regions);

// What a reply must look like, given the request it answers.
enum class ReplyShape {
  kU64,         // GET_FEATURES, GET_PROTOCOL_FEATURES, GET_QUEUE_NUM, a REPLY_ACK
  kVringState,  // GET_VRING_BASE
  kConfig,      // GET_CONFIG: a ConfigHeader and exactly `config_size` bytes
};
struct Reply {
  uint64_t u64 = 0;
  VringState state;
  std::vector<uint8_t> config;  // GET_CONFIG's bytes
};
// Checks `header` and `payload` (received for `request`) and decodes them.
// InvalidArgument, naming the request and what is wrong, otherwise.
absl::StatusOr<Reply> ParseReply(Request request, ReplyShape shape, const Header& header,
                                 absl::Span<const uint8_t> payload, uint32_t config_size = 0);

}  // namespace vmm::vhost_user

#endif  // VMM_DEVICES_VHOST_USER_MESSAGE_H_
