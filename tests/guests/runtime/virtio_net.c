#include "runtime/virtio_net.h"

#include "runtime/string.h"

// struct virtio_net_config (5.1.4)
#define CONFIG_MAC 0
#define CONFIG_STATUS 6
#define CONFIG_MAX_PAIRS 8

static bool post_rx(struct virtio_net* net, uint32_t i) {
  struct virtq_buf buf = {net->rx_buf[i], VIRTIO_NET_BUF_SIZE, true};
  return virtq_add(&net->rx, &buf, 1, (void*)(uintptr_t)(i + 1));
}

bool virtio_net_init(struct virtio_net* net, struct virtio_dev* dev, bool merged,
                     const char** why) {
  net->dev = dev;
  uint64_t wanted = VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS | VIRTIO_NET_F_CTRL_VQ |
                    VIRTIO_NET_F_CTRL_RX;
  if (merged) wanted |= VIRTIO_NET_F_MRG_RXBUF;
  if (!virtio_negotiate(dev, wanted, why)) return false;
  const uint64_t f = dev->negotiated;
  net->merged = (f & VIRTIO_NET_F_MRG_RXBUF) != 0;
  net->has_ctrl = (f & VIRTIO_NET_F_CTRL_VQ) && (f & VIRTIO_NET_F_CTRL_RX);
  if (!(f & VIRTIO_NET_F_MAC)) {
    *why = "the device gives no MAC address";
    virtio_set_failed(dev);
    return false;
  }
  for (uint32_t i = 0; i < 6; ++i) {
    net->mac[i] = (uint8_t)virtio_config_read(dev, CONFIG_MAC + i, 1);
  }
  net->status = (f & VIRTIO_NET_F_STATUS) ? (uint16_t)virtio_config_read(dev, CONFIG_STATUS, 2)
                                          : VIRTIO_NET_S_LINK_UP;
  net->max_pairs = (f & VIRTIO_NET_F_MQ) ? (uint16_t)virtio_config_read(dev, CONFIG_MAX_PAIRS, 2)
                                         : 1;
  // Without MQ the control queue is queue 2; with it, 2 * max_pairs.
  const uint16_t ctrl_index = (uint16_t)(2 * net->max_pairs);
  if (!virtq_init(&net->rx, dev, 0, 64, false, why) ||
      !virtq_init(&net->tx, dev, 1, 64, false, why) ||
      (net->has_ctrl && !virtq_init(&net->ctrl, dev, ctrl_index, 16, false, why))) {
    virtio_set_failed(dev);
    return false;
  }
  if (!virtio_driver_ok(dev, why)) return false;
  for (uint32_t i = 0; i < VIRTIO_NET_RX_BUFS; ++i) {
    if (!post_rx(net, i)) {
      *why = "cannot post receive buffers";
      return false;
    }
  }
  virtq_kick(&net->rx);
  net->rx_frames = 0;
  net->rx_multi_buffer_frames = 0;
  return true;
}

bool virtio_net_send(struct virtio_net* net, const void* frame, uint32_t len,
                     const char** why) {
  if (len > VIRTIO_NET_MAX_FRAME) {
    *why = "frame too long";
    return false;
  }
  memset(net->tx_buf, 0, VIRTIO_NET_HDR_SIZE);
  memcpy(net->tx_buf + VIRTIO_NET_HDR_SIZE, frame, len);
  struct virtq_buf buf = {net->tx_buf, VIRTIO_NET_HDR_SIZE + len, false};
  if (!virtq_add(&net->tx, &buf, 1, net->tx_buf)) {
    *why = "transmit queue full";
    return false;
  }
  virtq_kick(&net->tx);
  if (!virtq_wait(&net->tx, why)) return false;
  void* cookie;
  uint32_t used;
  const char* pop_why = 0;
  if (!virtq_pop_used(&net->tx, &cookie, &used, &pop_why) || cookie != net->tx_buf) {
    *why = pop_why != 0 ? pop_why : "transmit buffer not returned";
    return false;
  }
  return true;
}

// One used receive buffer: its index and length.
static bool next_rx(struct virtio_net* net, uint32_t* index, uint32_t* len, const char** why) {
  if (!virtq_wait(&net->rx, why)) return false;
  void* cookie;
  const char* pop_why = 0;
  if (!virtq_pop_used(&net->rx, &cookie, len, &pop_why)) {
    *why = pop_why != 0 ? pop_why : "no used receive buffer";
    return false;
  }
  uintptr_t i = (uintptr_t)cookie;
  if (i < 1 || i > VIRTIO_NET_RX_BUFS || *len > VIRTIO_NET_BUF_SIZE) {
    *why = "the device returned a bad receive buffer or length";
    return false;
  }
  *index = (uint32_t)(i - 1);
  return true;
}

bool virtio_net_recv(struct virtio_net* net, void* out, uint32_t cap, uint32_t* len,
                     const char** why) {
  uint32_t index, used;
  if (!next_rx(net, &index, &used, why)) return false;
  if (used < VIRTIO_NET_HDR_SIZE) {
    *why = "received buffer shorter than the header";
    return false;
  }
  uint16_t buffers = (uint16_t)(net->rx_buf[index][10] | (net->rx_buf[index][11] << 8));
  if (buffers != 1 && !(net->merged && buffers >= 1 && buffers <= VIRTIO_NET_RX_BUFS)) {
    *why = "bad num_buffers";
    return false;
  }
  uint32_t total = 0;
  uint32_t offset = VIRTIO_NET_HDR_SIZE;
  for (uint16_t b = 0; b < buffers; ++b) {
    if (b > 0 && !next_rx(net, &index, &used, why)) return false;
    uint32_t n = used - offset;
    uint32_t copy = total >= cap ? 0 : (n < cap - total ? n : cap - total);
    memcpy((uint8_t*)out + total, net->rx_buf[index] + offset, copy);
    total += n;
    offset = 0;
    if (!post_rx(net, index)) {
      *why = "cannot re-post a receive buffer";
      return false;
    }
  }
  virtq_kick(&net->rx);
  ++net->rx_frames;
  if (buffers > 1) ++net->rx_multi_buffer_frames;
  *len = total;
  return true;
}

bool virtio_net_ctrl_rx(struct virtio_net* net, uint8_t cmd, uint8_t on, const char** why) {
  if (!net->has_ctrl) {
    *why = "no control queue";
    return false;
  }
  net->ctrl_cmd[0] = VIRTIO_NET_CTRL_RX;
  net->ctrl_cmd[1] = cmd;
  net->ctrl_cmd[2] = on;
  net->ctrl_ack = 0xff;
  struct virtq_buf bufs[2] = {{net->ctrl_cmd, 3, false},
                              {(const void*)&net->ctrl_ack, 1, true}};
  if (!virtq_add(&net->ctrl, bufs, 2, net->ctrl_cmd)) {
    *why = "control queue full";
    return false;
  }
  virtq_kick(&net->ctrl);
  if (!virtq_wait(&net->ctrl, why)) return false;
  void* cookie;
  uint32_t used;
  const char* pop_why = 0;
  if (!virtq_pop_used(&net->ctrl, &cookie, &used, &pop_why) || used != 1) {
    *why = pop_why != 0 ? pop_why : "control command not answered";
    return false;
  }
  if (net->ctrl_ack != VIRTIO_NET_OK) {
    *why = "control command answered ERR";
    return false;
  }
  return true;
}
