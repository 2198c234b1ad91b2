#include "devices/vhost_user/frontend.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace vmm::vhost_user {

absl::StatusOr<MemoryTable> MemoryTableFor(const GuestMemory& memory) {
  MemoryTable table;
  for (const GuestMemory::Region& r : memory.regions()) {
    if (r.fd < 0) {
      return absl::FailedPreconditionError(
          "vhost-user needs guest RAM in shared memory (a memfd); this RAM is private");
    }
    table.regions.push_back(MemoryRegion{r.start.value(), r.size,
                                         reinterpret_cast<uint64_t>(r.host), r.fd_offset});
    table.fds.push_back(r.fd);
  }
  if (table.regions.empty() || table.regions.size() > kMaxMemoryRegions) {
    return absl::FailedPreconditionError(absl::StrCat(
        "vhost-user: guest RAM has ", table.regions.size(), " regions (1 to ",
        kMaxMemoryRegions, " fit one SET_MEM_TABLE)"));
  }
  return table;
}

absl::Status Frontend::Set(Request request, absl::Span<const uint8_t> payload,
                           absl::Span<const int> fds) {
  const bool ack = HasProtocolFeature(kProtocolReplyAck);
  RETURN_IF_ERROR(channel_.Send(request, ack ? kFlagNeedReply : 0, payload, fds));
  if (!ack) return absl::OkStatus();
  ASSIGN_OR_RETURN(Reply reply, channel_.Receive(request, ReplyShape::kU64));
  if (reply.u64 != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the vhost-user back-end refused ", RequestName(request), " (status ", reply.u64, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Frontend::GetU64(Request request) {
  RETURN_IF_ERROR(channel_.Send(request, 0, {}));
  ASSIGN_OR_RETURN(Reply reply, channel_.Receive(request, ReplyShape::kU64));
  return reply.u64;
}

absl::Status Frontend::Handshake() {
  RETURN_IF_ERROR(channel_.Send(Request::kSetOwner, 0, {}));
  ASSIGN_OR_RETURN(backend_features_, GetU64(Request::kGetFeatures));
  if ((backend_features_ & kFProtocolFeatures) == 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(uint64_t offered, GetU64(Request::kGetProtocolFeatures));
  const uint64_t wanted = offered & kWantedProtocolFeatures;
  // Sent before REPLY_ACK is in force: no ack is asked for this one.
  RETURN_IF_ERROR(channel_.Send(
      Request::kSetProtocolFeatures, 0,
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(&wanted), sizeof(wanted))));
  protocol_features_ = wanted;
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Frontend::GetQueueNum() {
  if (!HasProtocolFeature(kProtocolMq)) {
    return absl::FailedPreconditionError("the vhost-user back-end does not offer MQ");
  }
  return GetU64(Request::kGetQueueNum);
}

absl::Status Frontend::SetFeatures(uint64_t features) {
  if (backend_features_ & kFProtocolFeatures) features |= kFProtocolFeatures;
  return SetValue(Request::kSetFeatures, features);
}

absl::Status Frontend::SetMemTable(absl::Span<const MemoryRegion> regions,
                                   absl::Span<const int> fds) {
  if (regions.empty() || regions.size() > kMaxMemoryRegions || fds.size() != regions.size()) {
    return absl::InvalidArgumentError(absl::StrCat("vhost-user SET_MEM_TABLE: ", regions.size(),
                                                   " regions with ", fds.size(), " fds"));
  }
  return Set(Request::kSetMemTable, MemTablePayload(regions), fds);
}

absl::Status Frontend::SetVringNum(uint32_t index, uint32_t size) {
  return SetValue(Request::kSetVringNum, VringState{index, size});
}

absl::Status Frontend::SetVringAddr(const VringAddr& addr) {
  return SetValue(Request::kSetVringAddr, addr);
}

absl::Status Frontend::SetVringBase(uint32_t index, uint32_t base) {
  return SetValue(Request::kSetVringBase, VringState{index, base});
}

absl::Status Frontend::SetVringFd(Request request, uint32_t index, int fd) {
  const uint64_t value = (index & kVringIndexMask) | (fd < 0 ? kVringNoFd : 0);
  if (fd < 0) return SetValue(request, value);
  const int fds[1] = {fd};
  return SetValue(request, value, fds);
}

absl::Status Frontend::SetVringKick(uint32_t index, int fd) {
  return SetVringFd(Request::kSetVringKick, index, fd);
}

absl::Status Frontend::SetVringCall(uint32_t index, int fd) {
  return SetVringFd(Request::kSetVringCall, index, fd);
}

absl::Status Frontend::SetVringEnable(uint32_t index, bool enable) {
  return SetValue(Request::kSetVringEnable, VringState{index, enable ? 1u : 0u});
}

absl::StatusOr<uint32_t> Frontend::GetVringBase(uint32_t index) {
  const VringState state{index, 0};
  RETURN_IF_ERROR(channel_.Send(
      Request::kGetVringBase, 0,
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(&state), sizeof(state))));
  ASSIGN_OR_RETURN(Reply reply, channel_.Receive(Request::kGetVringBase, ReplyShape::kVringState));
  if (reply.state.index != index) {
    return absl::InvalidArgumentError(absl::StrCat(
        "vhost-user back-end's reply to GET_VRING_BASE: ring ", reply.state.index, ", not ",
        index));
  }
  return reply.state.num;
}

absl::StatusOr<std::vector<uint8_t>> Frontend::GetConfig(uint32_t offset, uint32_t size) {
  if (!HasProtocolFeature(kProtocolConfig)) {
    return absl::FailedPreconditionError("the vhost-user back-end does not offer CONFIG");
  }
  if (size == 0 || size > kMaxConfigSize) {
    return absl::InvalidArgumentError(absl::StrCat("vhost-user GET_CONFIG of ", size, " bytes"));
  }
  std::vector<uint8_t> payload(sizeof(ConfigHeader) + size, 0);
  const ConfigHeader header{offset, size, 0};
  std::memcpy(payload.data(), &header, sizeof(header));
  RETURN_IF_ERROR(channel_.Send(Request::kGetConfig, 0, payload));
  ASSIGN_OR_RETURN(Reply reply, channel_.Receive(Request::kGetConfig, ReplyShape::kConfig, size));
  return std::move(reply.config);
}

}  // namespace vmm::vhost_user
