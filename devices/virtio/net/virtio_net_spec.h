// virtio-net's wire format (virtio 1.x, 5.1): feature bits, the header in
// front of every frame, the configuration layout and control commands.
// <linux/virtio_net.h> cannot be included from C++ (a field named `class`).
#ifndef VMM_DEVICES_VIRTIO_NET_VIRTIO_NET_SPEC_H_
#define VMM_DEVICES_VIRTIO_NET_VIRTIO_NET_SPEC_H_

#include <cstdint>

namespace vmm::virtio_net {

// Feature bit numbers.
inline constexpr unsigned kFCsum = 0;
inline constexpr unsigned kFGuestCsum = 1;
inline constexpr unsigned kFMac = 5;
inline constexpr unsigned kFGuestTso4 = 7;
inline constexpr unsigned kFGuestTso6 = 8;
inline constexpr unsigned kFGuestEcn = 9;
inline constexpr unsigned kFGuestUfo = 10;
inline constexpr unsigned kFHostTso4 = 11;
inline constexpr unsigned kFHostTso6 = 12;
inline constexpr unsigned kFHostEcn = 13;
inline constexpr unsigned kFHostUfo = 14;
inline constexpr unsigned kFMrgRxbuf = 15;
inline constexpr unsigned kFStatus = 16;
inline constexpr unsigned kFCtrlVq = 17;
inline constexpr unsigned kFCtrlRx = 18;
inline constexpr unsigned kFCtrlVlan = 19;
inline constexpr unsigned kFMq = 22;

inline constexpr uint16_t kStatusLinkUp = 1;

// virtio_net_hdr_v1: in front of every frame, both directions.
struct Header {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
  uint16_t num_buffers;  // RX: chains the frame spans (1 without MRG_RXBUF)
};
static_assert(sizeof(Header) == 12);

// The device configuration space, as far as this device fills it.
struct Config {
  uint8_t mac[6];
  uint16_t status;
  uint16_t max_virtqueue_pairs;
  uint16_t mtu;
} __attribute__((packed));
static_assert(sizeof(Config) == 12);

// Control queue: class, command, data (driver-readable), ack (writable).
inline constexpr uint8_t kCtrlOk = 0;
inline constexpr uint8_t kCtrlErr = 1;
inline constexpr uint8_t kCtrlRx = 0;
inline constexpr uint8_t kCtrlRxPromisc = 0;
inline constexpr uint8_t kCtrlRxAllmulti = 1;
inline constexpr uint8_t kCtrlMac = 1;
inline constexpr uint8_t kCtrlMacTableSet = 0;
inline constexpr uint8_t kCtrlMacAddrSet = 1;
inline constexpr uint8_t kCtrlVlan = 2;
inline constexpr uint8_t kCtrlMq = 4;
inline constexpr uint8_t kCtrlMqVqPairsSet = 0;
inline constexpr uint16_t kCtrlMqVqPairsMin = 1;
inline constexpr uint16_t kCtrlMqVqPairsMax = 0x8000;

}  // namespace vmm::virtio_net

#endif  // VMM_DEVICES_VIRTIO_NET_VIRTIO_NET_SPEC_H_
