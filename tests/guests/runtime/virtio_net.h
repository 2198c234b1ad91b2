// A small virtio-net client (virtio 1.x, 5.1): receiveq 0, transmitq 1 and
// the control queue when offered; frames with the 12-byte virtio_net_hdr_v1,
// merged receive buffers when negotiated. Polled.
#ifndef VMM_TESTS_GUESTS_RUNTIME_VIRTIO_NET_H_
#define VMM_TESTS_GUESTS_RUNTIME_VIRTIO_NET_H_

#include <stdbool.h>
#include <stdint.h>

#include "runtime/virtio.h"
#include "runtime/virtqueue.h"

#define VIRTIO_ID_NET 1

#define VIRTIO_NET_F_MAC (1ull << 5)
#define VIRTIO_NET_F_MRG_RXBUF (1ull << 15)
#define VIRTIO_NET_F_STATUS (1ull << 16)
#define VIRTIO_NET_F_CTRL_VQ (1ull << 17)
#define VIRTIO_NET_F_CTRL_RX (1ull << 18)
#define VIRTIO_NET_F_MQ (1ull << 22)

#define VIRTIO_NET_S_LINK_UP 1
#define VIRTIO_NET_HDR_SIZE 12
#define VIRTIO_NET_CTRL_RX 0
#define VIRTIO_NET_CTRL_RX_PROMISC 0
#define VIRTIO_NET_OK 0

#define VIRTIO_NET_RX_BUFS 8
#define VIRTIO_NET_BUF_SIZE 1536  // header + a 1514-byte Ethernet frame, rounded
#define VIRTIO_NET_MAX_FRAME 1514

struct virtio_net {
  struct virtq rx;
  struct virtq tx;
  struct virtq ctrl;
  struct virtio_dev* dev;
  bool merged;    // MRG_RXBUF negotiated
  bool has_ctrl;  // CTRL_VQ and CTRL_RX negotiated
  uint8_t mac[6];
  uint16_t status;
  uint16_t max_pairs;
  uint32_t rx_frames;
  uint32_t rx_multi_buffer_frames;  // frames that came in more than one buffer
  // Device-visible memory.
  uint8_t rx_buf[VIRTIO_NET_RX_BUFS][VIRTIO_NET_BUF_SIZE] __attribute__((aligned(64)));
  uint8_t tx_buf[VIRTIO_NET_BUF_SIZE] __attribute__((aligned(64)));
  uint8_t ctrl_cmd[3];
  volatile uint8_t ctrl_ack;
};

// Negotiates (MAC, STATUS, MRG_RXBUF if `merged`, CTRL_VQ + CTRL_RX if
// offered), reads the configuration, sets up the queues, DRIVER_OK, then
// fills the receive queue.
bool virtio_net_init(struct virtio_net* net, struct virtio_dev* dev, bool merged,
                     const char** why);

// Sends one Ethernet frame (no header: a zero one is put in front) and waits
// until the device has used it.
bool virtio_net_send(struct virtio_net* net, const void* frame, uint32_t len,
                     const char** why);

// Waits for the next frame (bounded by dev->timeout_ms); copies it without
// its header to `out` (at most `cap` bytes), sets *len to its full length,
// and gives the buffers back to the device.
bool virtio_net_recv(struct virtio_net* net, void* out, uint32_t cap, uint32_t* len,
                     const char** why);

// VIRTIO_NET_CTRL_RX command `cmd` with `on`; false unless acknowledged OK.
bool virtio_net_ctrl_rx(struct virtio_net* net, uint8_t cmd, uint8_t on, const char** why);

#endif  // VMM_TESTS_GUESTS_RUNTIME_VIRTIO_NET_H_
