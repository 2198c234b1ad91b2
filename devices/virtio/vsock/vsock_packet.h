// virtio-vsock packets (virtio 1.x, 5.10): the 44-byte header every packet
// starts with, the limits the device enforces on guest packets, and the
// counters shared by the device, its muxer and connections.
#ifndef VMM_DEVICES_VIRTIO_VSOCK_VSOCK_PACKET_H_
#define VMM_DEVICES_VIRTIO_VSOCK_VSOCK_PACKET_H_

#include <linux/virtio_vsock.h>

#include <cstdint>

namespace vmm {

// Little-endian on the wire, as on every host this VMM runs on.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__);
using VsockHeader = virtio_vsock_hdr;
static_assert(sizeof(VsockHeader) == 44);

inline constexpr uint64_t kVsockHostCid = 2;  // VMADDR_CID_HOST
// The largest payload a packet may carry either way (Linux's
// VIRTIO_VSOCK_MAX_PKT_BUF_SIZE); a guest packet claiming more is refused.
inline constexpr uint32_t kVsockMaxPayload = 64 * 1024;

struct VsockStats {
  uint64_t tx_packets = 0;         // guest packets handled
  uint64_t rx_packets = 0;         // packets given to the guest
  uint64_t malformed = 0;          // short header, wrong-direction descriptors, short RX buffers
  uint64_t bad_address = 0;        // wrong src_cid (dropped) or dst_cid (RST)
  uint64_t bad_packet = 0;         // unknown type or op, oversize or truncated payload (RST)
  uint64_t credit_violations = 0;  // the guest sent more than we granted (RST)
  uint64_t connections_refused = 0;  // no listener at PATH_<port>, or too many connections
  uint64_t host_rejected = 0;      // host clients dropped: bad CONNECT line, too many
  uint64_t rst_dropped = 0;        // RSTs for unknown connections beyond the queue bound
  uint64_t shutdown_timeouts = 0;  // closing connections the guest did not finish in time (RST)
};

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_VSOCK_VSOCK_PACKET_H_
