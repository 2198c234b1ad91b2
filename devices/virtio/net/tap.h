// A tap interface as a NetBackend: one /dev/net/tun file per queue pair,
// IFF_TAP | IFF_NO_PI | IFF_VNET_HDR (| IFF_MULTI_QUEUE when there is more
// than one), the 12-byte virtio_net_hdr_v1 (TUNSETVNETHDRSZ), non-blocking.
//
// Offloads the guest accepts are mirrored to the tap with TUNSETOFFLOAD; the
// ones the kernel takes are probed at open (UFO is refused by some kernels).
#ifndef VMM_DEVICES_VIRTIO_NET_TAP_H_
#define VMM_DEVICES_VIRTIO_NET_TAP_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "devices/virtio/net/net_backend.h"

namespace vmm {

class Tap : public NetBackend {
 public:
  // Attaches to tap `name` (created if it does not exist and the process has
  // CAP_NET_ADMIN; a created tap is down until someone configures it) with
  // `queues` queues. `created` (if given) says whether it was created.
  // Errors name the tap and say what to check.
  static absl::StatusOr<std::unique_ptr<Tap>> Open(const std::string& name, int queues,
                                                   bool* created = nullptr);
  // Adopts a duplicate of `fd`, an open tap queue (one queue); the caller
  // keeps its own fd. The file is made non-blocking (that flag is shared with
  // the caller's fd).
  static absl::StatusOr<std::unique_ptr<Tap>> Adopt(int fd);

  const std::string& name() const { return name_; }

  int queue_count() const override { return static_cast<int>(fds_.size()); }
  int rx_fd(int q) const override { return fds_[q].get(); }
  absl::StatusOr<size_t> ReadFrame(int q, absl::Span<uint8_t> buf) override;
  absl::Status WriteFrame(int q, absl::Span<const iovec> iov) override;
  unsigned supported_offloads() const override { return supported_offloads_; }
  absl::Status SetOffloads(unsigned tun_flags) override;
  absl::Status SetQueueEnabled(int q, bool enabled) override;

 private:
  Tap(std::string name, std::vector<UniqueFd> fds);
  // Sets the header size and probes TUNSETOFFLOAD.
  absl::Status Configure();

  const std::string name_;
  std::vector<UniqueFd> fds_;
  unsigned supported_offloads_ = 0;
};

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_NET_TAP_H_
