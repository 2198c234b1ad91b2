// The Unix-socket backend of virtio-vsock, as Firecracker's (docs/vsock.md):
//   host -> guest: a host program connects to `socket_path` and writes
//     "CONNECT <port>\n"; the guest gets a REQUEST to <port> from a fresh
//     host port; when the guest accepts, the program reads
//     "OK <host_port>\n" and the socket carries the stream. If the guest
//     refuses, the socket is closed.
//   guest -> host: a guest connection to host port P is connected to the
//     Unix socket "<socket_path>_P"; no listener there means RST.
//
// Everything runs on one thread (the device's lock held): host sockets sit
// in the muxer's own epoll set, whose fd the device puts in the VMM's event
// loop; HandleHostEvents drains it without blocking. Nothing is unbounded:
// at most `max_connections` connections and as many CONNECT handshakes,
// RSTs for unknown connections in a queue of kMaxOrphanRsts, each
// connection's buffer within its credit, and a closing connection the guest
// does not finish is reset after shutdown_timeout_ms (a timerfd in the same
// epoll set).
#ifndef VMM_DEVICES_VIRTIO_VSOCK_VSOCK_MUXER_H_
#define VMM_DEVICES_VIRTIO_VSOCK_VSOCK_MUXER_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "devices/virtio/vsock/vsock_connection.h"
#include "devices/virtio/vsock/vsock_packet.h"

namespace vmm {

struct VsockMuxerOptions {
  uint64_t guest_cid = 3;
  std::string socket_path;
  uint32_t buffer_size = 256 * 1024;  // per connection, guest -> host (buf_alloc)
  size_t max_connections = 64;
  // A closing connection the guest does not finish (no RST after our
  // SHUTDOWN, or its bytes stuck in our buffer after its SHUTDOWN) is reset
  // after this long (Firecracker: 2 s).
  int64_t shutdown_timeout_ms = 2000;
};

class VsockMuxer {
 public:
  static constexpr size_t kMaxOrphanRsts = 256;
  static constexpr uint32_t kFirstLocalPort = 1u << 30;  // host ports we hand out
  static constexpr size_t kMaxConnectLine = 32;          // "CONNECT 4294967295\n"

  // Listens on options.socket_path. A stale socket file (nobody accepting)
  // is replaced; a live one, or a file that is not a socket, is an error.
  static absl::StatusOr<std::unique_ptr<VsockMuxer>> Create(VsockMuxerOptions options,
                                                            VsockStats* stats);
  // Closes every socket and removes the socket file.
  ~VsockMuxer();
  VsockMuxer(const VsockMuxer&) = delete;
  VsockMuxer& operator=(const VsockMuxer&) = delete;

  // Readable when a host socket has an event; then call HandleHostEvents.
  int epoll_fd() const { return epoll_.get(); }
  void HandleHostEvents();

  // A guest packet whose header the device checked (src_cid is the guest's,
  // dst_cid the host, type STREAM, len within bounds and the chain).
  void OnGuestPacket(const VsockHeader& header, absl::Span<const iovec> payload);
  // A guest packet the device refused: its connection, if any, is reset;
  // otherwise an RST goes back (never in answer to an RST).
  void Refuse(const VsockHeader& header);

  bool HasRxWork() const { return !orphan_rsts_.empty() || !rx_queue_.empty(); }
  // The next packet for the guest into `chain` (writable, >= 44 bytes);
  // returns its length, or 0 when nobody had anything to send.
  uint32_t FillRx(const DescriptorChain& chain, const GuestMemory& memory);

  // The driver reset the device: every connection is dropped (host sockets
  // closed); the listener stays.
  void DropConnections();

  size_t connection_count() const { return connections_.size(); }
  // nullptr when there is no such connection (for tests).
  const VsockConnection* connection(uint32_t local_port, uint32_t peer_port) const;

 private:
  struct Entry {
    std::unique_ptr<VsockConnection> conn;
    uint64_t token = 0;
    uint32_t registered = 0;  // epoll events it is watched for (0: not in the set)
    bool queued = false;      // in rx_queue_
    int64_t deadline_ns = 0;  // CLOCK_MONOTONIC; 0: none (see AwaitingPeer)
  };
  struct Handshake {
    UniqueFd fd;
    std::string line;
  };
  static uint64_t Key(uint32_t local_port, uint32_t peer_port) {
    return (uint64_t{local_port} << 32) | peer_port;
  }
  static constexpr uint64_t kListenerToken = 0;
  static constexpr uint64_t kTimerToken = ~uint64_t{0};

  VsockMuxer(VsockMuxerOptions options, VsockStats* stats, UniqueFd listener, UniqueFd epoll,
             UniqueFd timer)
      : options_(std::move(options)), stats_(stats), listener_(std::move(listener)),
        epoll_(std::move(epoll)), timer_(std::move(timer)) {}

  void Accept();
  void ReadHandshake(uint64_t token);
  void CloseHandshake(uint64_t token);
  void ConnectToHost(const VsockHeader& request);
  void AddConnection(VsockConnection conn);
  // After anything touched connection `key`: drop it when finished, match
  // its epoll registration to what it wants, queue it for RX.
  void Sync(uint64_t key);
  void SetInterest(int fd, uint64_t token, uint32_t* registered, uint32_t wanted);
  void QueueRst(const VsockHeader& header);
  // Resets the connections whose shutdown deadline passed; re-arms timer_.
  void ExpireDeadlines();
  void ArmTimer(int64_t deadline_ns);

  const VsockMuxerOptions options_;
  VsockStats* const stats_;
  UniqueFd listener_;
  UniqueFd epoll_;
  UniqueFd timer_;              // timerfd for the earliest shutdown deadline
  int64_t armed_ns_ = 0;        // what timer_ is set to; 0: disarmed
  uint64_t next_token_ = 1;
  uint32_t next_local_port_ = kFirstLocalPort;
  absl::flat_hash_map<uint64_t, Entry> connections_;     // by Key()
  absl::flat_hash_map<uint64_t, uint64_t> by_token_;     // token -> Key()
  absl::flat_hash_map<uint64_t, Handshake> handshakes_;  // by token
  std::deque<uint64_t> rx_queue_;         // connection keys with RX work, each once
  std::deque<VsockHeader> orphan_rsts_;   // RSTs for unknown connections
};

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_VSOCK_VSOCK_MUXER_H_
