// Fuzzes what vmm reads from a vhost-user back-end (another program): the bytes arrive on
// the socket, then the front-end's Channel reads replies to input-chosen requests until the
// bytes run out or the channel breaks. A reply that is accepted must have the shape its
// request promised; nothing the back-end writes may crash or hang the front-end.
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/socket.h>

#include <cstdint>
#include <vector>

#include "devices/vhost_user/channel.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vmm;
  using namespace vmm::vhost_user;
  FuzzedDataProvider in(data, size);
  int sv[2];
  FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  UniqueFd backend(sv[1]);
  Channel channel(UniqueFd(sv[0]), absl::Milliseconds(1));
  const std::vector<uint8_t> bytes = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 4096));
  if (!bytes.empty()) FUZZ_CHECK(::send(backend.get(), bytes.data(), bytes.size(), 0) > 0);
  if (in.ConsumeBool()) ::shutdown(backend.get(), SHUT_WR);
  constexpr Request kAsked[] = {Request::kGetFeatures, Request::kGetProtocolFeatures,
                                Request::kGetQueueNum, Request::kGetVringBase,
                                Request::kGetConfig, Request::kSetVringNum};
  for (int i = 0; i < 16 && !channel.broken(); ++i) {
    const Request request = in.PickValueInArray(kAsked);
    const ReplyShape shape = request == Request::kGetVringBase ? ReplyShape::kVringState
                             : request == Request::kGetConfig  ? ReplyShape::kConfig
                                                               : ReplyShape::kU64;
    const uint32_t config_size = in.ConsumeIntegralInRange<uint32_t>(1, kMaxConfigSize);
    absl::StatusOr<Reply> reply = channel.Receive(request, shape, config_size);
    if (reply.ok() && shape == ReplyShape::kConfig) FUZZ_CHECK(reply->config.size() == config_size);
    if (!reply.ok()) FUZZ_CHECK(channel.broken());
  }
  return 0;
}
