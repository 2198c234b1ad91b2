#include "devices/vhost_user/message.h"

#include "absl/strings/str_cat.h"

namespace vmm::vhost_user {

const char* RequestName(Request request) {
  switch (request) {
    case Request::kGetFeatures: return "GET_FEATURES";
    case Request::kSetFeatures: return "SET_FEATURES";
    case Request::kSetOwner: return "SET_OWNER";
    case Request::kResetOwner: return "RESET_OWNER";
    case Request::kSetMemTable: return "SET_MEM_TABLE";
    case Request::kSetVringNum: return "SET_VRING_NUM";
    case Request::kSetVringAddr: return "SET_VRING_ADDR";
    case Request::kSetVringBase: return "SET_VRING_BASE";
    case Request::kGetVringBase: return "GET_VRING_BASE";
    case Request::kSetVringKick: return "SET_VRING_KICK";
    case Request::kSetVringCall: return "SET_VRING_CALL";
    case Request::kSetVringErr: return "SET_VRING_ERR";
    case Request::kGetProtocolFeatures: return "GET_PROTOCOL_FEATURES";
    case Request::kSetProtocolFeatures: return "SET_PROTOCOL_FEATURES";
    case Request::kGetQueueNum: return "GET_QUEUE_NUM";
    case Request::kSetVringEnable: return "SET_VRING_ENABLE";
    case Request::kGetConfig: return "GET_CONFIG";
    case Request::kSetConfig: return "SET_CONFIG";
    case Request::kResetDevice: return "RESET_DEVICE";
    case Request::kGetMaxMemSlots: return "GET_MAX_MEM_SLOTS";
  }
  return "an unknown request";
}

std::vector<uint8_t> Encode(Request request, uint32_t flags, absl::Span<const uint8_t> payload) {
  const Header header{static_cast<uint32_t>(request), kVersion | flags,
                      static_cast<uint32_t>(payload.size())};
  std::vector<uint8_t> out(sizeof(header) + payload.size());
  std::memcpy(out.data(), &header, sizeof(header));
  if (!payload.empty()) std::memcpy(out.data() + sizeof(header), payload.data(), payload.size());
  return out;
}

std::vector<uint8_t> MemTablePayload(absl::Span<const MemoryRegion> regions) {
  const uint32_t count = static_cast<uint32_t>(regions.size());
  std::vector<uint8_t> out(8 + sizeof(MemoryRegion) * regions.size());
  std::memcpy(out.data(), &count, sizeof(count));  // then 4 bytes of padding
  if (!regions.empty()) {
    std::memcpy(out.data() + 8, regions.data(), sizeof(MemoryRegion) * regions.size());
  }
  return out;
}

absl::StatusOr<Reply> ParseReply(Request request, ReplyShape shape, const Header& header,
                                 absl::Span<const uint8_t> payload, uint32_t config_size) {
  auto bad = [&](auto&&... what) {
    return absl::InvalidArgumentError(
        absl::StrCat("vhost-user back-end's reply to ", RequestName(request), ": ", what...));
  };
  if (header.request != static_cast<uint32_t>(request)) {
    return bad("it answers request ", header.request);
  }
  if ((header.flags & kVersionMask) != kVersion) {
    return bad("version ", header.flags & kVersionMask, ", not ", kVersion);
  }
  if ((header.flags & kFlagReply) == 0) return bad("the reply flag is not set");
  if (header.size != payload.size()) {
    return bad("its header says ", header.size, " payload bytes, ", payload.size(), " came");
  }
  Reply reply;
  switch (shape) {
    case ReplyShape::kU64:
      if (payload.size() != sizeof(uint64_t)) return bad(payload.size(), " bytes, not 8");
      std::memcpy(&reply.u64, payload.data(), sizeof(uint64_t));
      return reply;
    case ReplyShape::kVringState:
      if (payload.size() != sizeof(VringState)) return bad(payload.size(), " bytes, not 8");
      std::memcpy(&reply.state, payload.data(), sizeof(VringState));
      return reply;
    case ReplyShape::kConfig: {
      if (payload.empty()) return bad("the back-end could not read its config space");
      if (payload.size() != sizeof(ConfigHeader) + config_size) {
        return bad(payload.size(), " bytes, not ", sizeof(ConfigHeader) + config_size);
      }
      ConfigHeader config;
      std::memcpy(&config, payload.data(), sizeof(config));
      if (config.size != config_size) return bad("config size ", config.size, ", not ", config_size);
      reply.config.assign(payload.begin() + sizeof(ConfigHeader), payload.end());
      return reply;
    }
  }
  return bad("an unknown reply shape");
}

}  // namespace vmm::vhost_user
