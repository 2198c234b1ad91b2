// One virtio-vsock stream connection between a guest port and a host Unix
// socket: the connection state machine and credit-based flow control of
// virtio 1.x 5.10.6 (Firecracker's vsock/csm/connection.rs).
//
// States:
//   kLocalInit   host-initiated ("CONNECT <port>"): REQUEST pending/sent,
//                waiting for the guest's RESPONSE; then "OK <local_port>\n"
//                goes to the host socket.
//   kPeerInit    guest-initiated: the host socket is connected, RESPONSE
//                pending.
//   kEstablished data both ways.
//   kLocalClosed the host socket reached EOF: SHUTDOWN sent, waiting for the
//                guest's RST.
//   kKilled      an RST is pending (or was sent); then the muxer drops it.
//
// Flow control, both ways:
//   guest -> host: we grant `buffer_size` bytes (buf_alloc) and count in
//     fwd_cnt what reached the host socket. Bytes the socket does not take
//     at once wait in a buffer that can never exceed buf_alloc: a guest
//     that sends beyond its credit is reset.
//   host -> guest: the socket is read straight into an RX buffer only when
//     one is in hand, at most the guest's free credit
//     (buf_alloc - (tx_cnt - fwd_cnt) from its last header). Without credit
//     the socket is not polled for input (WantedEvents).
//
// Not thread-safe: the muxer calls it under the device lock.
#ifndef VMM_DEVICES_VIRTIO_VSOCK_VSOCK_CONNECTION_H_
#define VMM_DEVICES_VIRTIO_VSOCK_VSOCK_CONNECTION_H_

#include <sys/uio.h>

#include <cstdint>
#include <string>

#include "absl/types/span.h"
#include "base/guest_memory.h"
#include "base/unique_fd.h"
#include "devices/virtio/descriptor_chain.h"
#include "devices/virtio/vsock/vsock_packet.h"

namespace vmm {

class VsockConnection {
 public:
  enum class State { kLocalInit, kPeerInit, kEstablished, kLocalClosed, kKilled };

  // A host client asked for guest port `peer_port`; it is `local_port` on
  // our side. Sends REQUEST.
  static VsockConnection HostInitiated(UniqueFd fd, uint64_t guest_cid, uint32_t local_port,
                                       uint32_t peer_port, uint32_t buffer_size,
                                       VsockStats* stats);
  // The guest's REQUEST (header `request`) reached a host listener on `fd`.
  // Sends RESPONSE.
  static VsockConnection GuestInitiated(UniqueFd fd, const VsockHeader& request,
                                        uint32_t buffer_size, VsockStats* stats);

  VsockConnection(VsockConnection&&) = default;
  VsockConnection& operator=(VsockConnection&&) = default;

  State state() const { return state_; }
  int fd() const { return fd_.get(); }
  uint32_t local_port() const { return local_port_; }
  uint32_t peer_port() const { return peer_port_; }

  // A guest packet for this connection. The header was read once and checked
  // by the device (cids, type, len <= kVsockMaxPayload); `payload` holds the
  // len bytes of an RW packet in guest memory.
  void OnGuestPacket(const VsockHeader& header, absl::Span<const iovec> payload);
  // epoll events on the host socket.
  void OnHostEvent(uint32_t events);
  // Resets the connection: the host socket is shut, an RST goes to the guest.
  void Kill();

  // Whether FillRx has something to send now.
  bool HasRxWork() const;
  // Writes the next packet for the guest into `chain`'s writable part (at
  // least sizeof(VsockHeader) bytes); returns its length, or 0 when there was
  // nothing to send after all (the socket had no data).
  uint32_t FillRx(const DescriptorChain& chain, const GuestMemory& memory);

  // The epoll events the host socket should be watched for now (0: none).
  uint32_t WantedEvents() const;
  // Closing, and waiting on the guest: for its RST after our SHUTDOWN, or
  // for its buffered bytes to reach the host after its full SHUTDOWN. The
  // muxer resets a connection that waits too long.
  bool AwaitingPeer() const {
    return state_ == State::kLocalClosed ||
           (state_ != State::kKilled && peer_shut_send_ && peer_shut_rcv_);
  }
  // Killed and the RST delivered (or none owed): the muxer drops it.
  bool Finished() const { return state_ == State::kKilled && !(pending_ & kRst); }

  // Flow-control state, for tests.
  uint32_t peer_credit() const;
  uint32_t fwd_cnt() const { return fwd_cnt_; }
  size_t buffered_bytes() const { return buffer_.size(); }

 private:
  // Control packets owed to the guest, in sending priority.
  enum Pending : uint32_t {
    kRst = 1,
    kRequest = 2,
    kResponse = 4,
    kCreditRequest = 8,
    kCreditUpdate = 16,
  };

  VsockConnection(UniqueFd fd, State state, uint64_t guest_cid, uint32_t local_port,
                  uint32_t peer_port, uint32_t buffer_size, VsockStats* stats);

  void TakePeerCredit(const VsockHeader& header);
  void OnPeerShutdown(uint32_t flags);
  // Guest bytes towards the host socket: written now, or buffered.
  void SendToHost(absl::Span<const iovec> payload);
  // Bytes of ours (the "OK" line) at the head of the stream to the host.
  void SendLocalBytes(const std::string& bytes);
  // Writes the buffer out; Kill()s on a socket error.
  void Flush();
  // Counts `n` guest bytes that reached the host; asks for a CREDIT_UPDATE
  // when the guest's view of our free space fell below half.
  void Forwarded(uint32_t n);
  // After a flush: honour a guest SHUTDOWN once its data is out.
  void FinishPeerShutdown();
  bool CanReadHost() const;
  VsockHeader MakeHeader(uint16_t op, uint32_t len, uint32_t flags);

  UniqueFd fd_;
  State state_;
  uint64_t guest_cid_;
  uint32_t local_port_;
  uint32_t peer_port_;
  uint32_t pending_ = 0;
  VsockStats* stats_;

  // guest -> host
  uint32_t buffer_size_;       // our buf_alloc
  uint32_t rx_cnt_ = 0;        // guest payload bytes received
  uint32_t fwd_cnt_ = 0;       // of those, written to the host socket
  uint32_t last_sent_fwd_cnt_ = 0;  // fwd_cnt in our last header
  std::string buffer_;         // waiting for the host socket; <= buffer_size_ + our line
  uint32_t local_bytes_ = 0;   // leading bytes of buffer_ that are ours, not the guest's
  bool peer_shut_send_ = false;  // the guest will send no more
  bool peer_shut_rcv_ = false;   // the guest will receive no more
  bool host_write_shut_ = false;

  // host -> guest
  uint32_t peer_buf_alloc_ = 0;
  uint32_t peer_fwd_cnt_ = 0;
  uint32_t tx_cnt_ = 0;        // payload bytes sent to the guest
  bool host_readable_ = false; // epoll said the socket has input (or hung up)
};

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_VSOCK_VSOCK_CONNECTION_H_
