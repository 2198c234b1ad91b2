// virtio-vsock: identity, the socket file, connections in both directions,
// credit-based flow control, shutdown and reset. Malformed guest packets are
// in virtio_vsock_malformed_test.cc.
#include "devices/virtio/vsock/virtio_vsock.h"

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/devices/virtio/vsock/virtio_vsock_test_util.h"

namespace vmm::testing {
namespace {

using ::testing::HasSubstr;

constexpr uint32_t kBoth = VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND;

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// --- Identity and the socket file ---------------------------------------------

TEST_F(VirtioVsockTest, IsDeviceType19WithThreeQueuesAndTheGuestCidInConfig) {
  Start();
  EXPECT_EQ(dev_->device_type(), 19u);
  EXPECT_EQ(dev_->queue_max_sizes().size(), 3u);
  EXPECT_NE(dev_->device_features() & kVirtioFVersion1, 0u);
  EXPECT_EQ(dev_->device_features() & (1ull << VIRTIO_VSOCK_F_SEQPACKET), 0u);
  uint8_t config[12];
  dev_->ReadConfig(0, absl::MakeSpan(config));
  uint64_t cid;
  std::memcpy(&cid, config, 8);
  EXPECT_EQ(cid, kGuestCid);
  EXPECT_EQ(config[8], 0);  // past the config reads as zero
  dev_->WriteConfig(0, std::vector<uint8_t>(8, 0xff));
  dev_->ReadConfig(0, absl::MakeSpan(config, 8));
  std::memcpy(&cid, config, 8);
  EXPECT_EQ(cid, kGuestCid);  // read-only
}

TEST_F(VirtioVsockTest, ReservedOrTooLargeCidIsRefused) {
  for (uint64_t cid : {0ull, 1ull, 2ull, 1ull << 32}) {
    VsockMuxerOptions o = Options();
    o.guest_cid = cid;
    EXPECT_FALSE(VirtioVsock::Create(o, nullptr).ok()) << cid;
  }
}

TEST_F(VirtioVsockTest, SocketFileExistsWhileTheDeviceLivesAndIsRemovedAfter) {
  Start();
  EXPECT_TRUE(Exists(path_));
  dev_.reset();
  EXPECT_FALSE(Exists(path_));
}

TEST_F(VirtioVsockTest, SocketInUseByAnotherDeviceIsRefused) {
  Start();
  auto second = VirtioVsock::Create(Options(), nullptr);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("in use"));
  EXPECT_TRUE(Exists(path_));  // the first one's socket is untouched
  EXPECT_TRUE(ConnectTo(path_).valid());
}

TEST_F(VirtioVsockTest, StaleSocketFileIsReplaced) {
  { UniqueFd stale = ListenAt(path_); }  // closed: nobody accepts any more
  ASSERT_TRUE(Exists(path_));
  Start();
  EXPECT_TRUE(ConnectTo(path_).valid());
}

TEST_F(VirtioVsockTest, PathThatIsNotASocketIsRefusedAndKept) {
  int fd = ::open(path_.c_str(), O_CREAT | O_WRONLY, 0600);
  ::close(fd);
  auto dev = VirtioVsock::Create(Options(), nullptr);
  ASSERT_FALSE(dev.ok());
  EXPECT_THAT(std::string(dev.status().message()), HasSubstr("not a socket"));
  EXPECT_TRUE(Exists(path_));
}

TEST_F(VirtioVsockTest, HostEventsAreHandledOnTheEventLoop) {
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok()) << loop.status();
  Start(Options(), /*activate=*/true, loop->get());
  GiveRx(2);
  std::thread thread([&] { EXPECT_TRUE((*loop)->Run().ok()); });
  UniqueFd host = ConnectTo(path_);
  WriteAll(host.get(), "CONNECT 42\n");
  EXPECT_TRUE(context_.WaitForNotifyCount(VirtioVsock::kRxQueue, 1));
  (*loop)->Stop();
  thread.join();
  Packet req = TakeOne();
  EXPECT_EQ(req.header.op, VIRTIO_VSOCK_OP_REQUEST);
  EXPECT_EQ(req.header.dst_port, 42u);
  dev_.reset();  // leaves the loop before the loop goes
}

// --- Host-initiated connections -------------------------------------------------

TEST_F(VirtioVsockTest, HostConnectBecomesRequestAndOkFollowsTheGuestsResponse) {
  Start();
  UniqueFd host = ConnectTo(path_);
  WriteAll(host.get(), "CONNECT 1234\n");
  dev_->HandleHostEvents();
  GiveRx(2);
  Packet req = TakeOne();
  EXPECT_EQ(req.header.op, VIRTIO_VSOCK_OP_REQUEST);
  EXPECT_EQ(req.header.src_cid, kVsockHostCid);
  EXPECT_EQ(req.header.dst_cid, kGuestCid);
  EXPECT_EQ(req.header.dst_port, 1234u);
  EXPECT_GE(req.header.src_port, VsockMuxer::kFirstLocalPort);
  EXPECT_EQ(req.header.type, VIRTIO_VSOCK_TYPE_STREAM);
  EXPECT_GT(req.header.buf_alloc, 0u);
  EXPECT_EQ(ReadAvailable(host.get(), 50), "");  // no OK before the guest accepts
  EXPECT_GE(context_.notify_count(VirtioVsock::kRxQueue), 1u);

  SendTx(GuestHeader(VIRTIO_VSOCK_OP_RESPONSE, 1234, req.header.src_port));
  EXPECT_EQ(ReadAvailable(host.get()), "OK " + std::to_string(req.header.src_port) + "\n");
}

TEST_F(VirtioVsockTest, HostConnectionCarriesBytesBothWays) {
  Start();
  uint32_t local = 0;
  UniqueFd host = EstablishHostConnection(1234, &local);
  WriteAll(host.get(), "hello guest");
  dev_->HandleHostEvents();
  GiveRx(1);
  Packet rw = TakeOne();
  EXPECT_EQ(rw.header.op, VIRTIO_VSOCK_OP_RW);
  EXPECT_EQ(rw.header.src_port, local);
  EXPECT_EQ(rw.header.dst_port, 1234u);
  EXPECT_EQ(rw.payload, "hello guest");

  SendTx(GuestHeader(VIRTIO_VSOCK_OP_RW, 1234, local, 11), "hello host!");
  EXPECT_EQ(ReadAvailable(host.get()), "hello host!");
  EXPECT_EQ(dev_->connection(local, 1234)->fwd_cnt, 11u);
}

TEST_F(VirtioVsockTest, BytesAfterTheConnectLineReachTheGuestOnceAccepted) {
  Start();
  UniqueFd host = ConnectTo(path_);
  WriteAll(host.get(), "CONNECT 7\nearly bytes");
  dev_->HandleHostEvents();
  GiveRx(4);
  Packet req = TakeOne();  // the bytes wait until the connection is established
  ASSERT_EQ(req.header.op, VIRTIO_VSOCK_OP_REQUEST);
  SendTx(GuestHeader(VIRTIO_VSOCK_OP_RESPONSE, 7, req.header.src_port));
  dev_->HandleHostEvents();
  Packet rw = TakeOne();
  EXPECT_EQ(rw.payload, "early bytes");
}

TEST_F(VirtioVsockTest, GuestRefusingAHostConnectClosesTheHostSocket) {
  Start();
  UniqueFd host = ConnectTo(path_);
  WriteAll(host.get(), "CONNECT 99\n");
  dev_->HandleHostEvents();
  GiveRx(1);
  Packet req = TakeOne();
  SendTx(GuestHeader(VIRTIO_VSOCK_OP_RST, 99, req.header.src_port));
  EXPECT_TRUE(AtEof(host.get()));
  EXPECT_EQ(dev_->connection_count(), 0u);
}

TEST_F(VirtioVsockTest, HostConnectBeforeDriverOkIsDeliveredOnActivation) {
  Start(Options(), /*activate=*/false);
  UniqueFd host = ConnectTo(path_);
  WriteAll(host.get(), "CONNECT 5\n");
  dev_->HandleHostEvents();
  dev_->Reset();  // what a driver does first
  for (int i = 0; i < 2; ++i) rx_.AddChainBytes({}, {4096});
  Activate();
  EXPECT_EQ(TakeOne().header.op, VIRTIO_VSOCK_OP_REQUEST);
}

TEST_F(VirtioVsockTest, BadConnectLinesCloseTheHostSocket) {
  Start();
  for (const char* line : {"HELLO 1\n", "CONNECT x\n", "CONNECT 99999999999\n",
                           "CONNECT 1 2\n", "CONNECT 123456789012345678901234567890\n"}) {
    UniqueFd host = ConnectTo(path_);
    WriteAll(host.get(), line);
    dev_->HandleHostEvents();
    EXPECT_TRUE(AtEof(host.get())) << line;
  }
  EXPECT_EQ(dev_->stats().host_rejected, 5u);
  GiveRx(1);
  EXPECT_TRUE(TakeRx().empty());
}

// --- Guest-initiated connections ------------------------------------------------

TEST_F(VirtioVsockTest, GuestConnectReachesTheListenerAtPathUnderscorePort) {
  Start();
  UniqueFd listener = ListenAt(path_ + "_5678");
  GiveRx(4);
  SendTx(GuestHeader(VIRTIO_VSOCK_OP_REQUEST, 40000, 5678));
  Packet resp = TakeOne();
  EXPECT_EQ(resp.header.op, VIRTIO_VSOCK_OP_RESPONSE);
  EXPECT_EQ(resp.header.src_port, 5678u);
  EXPECT_EQ(resp.header.dst_port, 40000u);
  UniqueFd host(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(host.valid());

  SendTx(GuestHeader(VIRTIO_VSOCK_OP_RW, 40000, 5678, 4), "ping");
  EXPECT_EQ(ReadAvailable(host.get()), "ping");
  WriteAll(host.get(), "pong");
  dev_->HandleHostEvents();
  Packet rw = TakeOne();
  EXPECT_EQ(rw.header.op, VIRTIO_VSOCK_OP_RW);
  EXPECT_EQ(rw.payload, "pong");
}

TEST_F(VirtioVsockTest, GuestConnectWithoutAListenerGetsRst) {
  Start();
  GiveRx(2);
  SendTx(GuestHeader(VIRTIO_VSOCK_OP_REQUEST, 40000, 4444));
  Packet rst = TakeOne();
  EXPECT_EQ(rst.header.op, VIRTIO_VSOCK_OP_RST);
  EXPECT_EQ(rst.header.src_port, 4444u);
  EXPECT_EQ(rst.header.dst_port, 40000u);
  EXPECT_EQ(rst.header.dst_cid, kGuestCid);
  EXPECT_EQ(dev_->stats().connections_refused, 1u);
}

TEST_F(VirtioVsockTest, ConnectionsAreBounded) {
  VsockMuxerOptions o = Options();
  o.max_connections = 2;
  Start(o);
  UniqueFd listener = ListenAt(path_ + "_80");
  GiveRx(8);
  for (uint32_t port = 1; port <= 3; ++port) SendTx(GuestHeader(VIRTIO_VSOCK_OP_REQUEST, port, 80));
  std::vector<Packet> p = TakeRx();
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[2].header.op, VIRTIO_VSOCK_OP_RST);
  EXPECT_EQ(dev_->connection_count(), 2u);
  EXPECT_EQ(dev_->stats().connections_refused, 1u);
  // A host client beyond the bound is closed too.
  UniqueFd host = ConnectTo(path_);
  WriteAll(host.get(), "CONNECT 9\n");
  dev_->HandleHostEvents();
  EXPECT_TRUE(AtEof(host.get()));
}

// --- Flow control ---------------------------------------------------------------

TEST_F(VirtioVsockTest, HostToGuestDataNeverExceedsTheGuestsCredit) {
  Start();
  uint32_t local = 0;
  UniqueFd host = EstablishHostConnection(1234, &local, /*guest_buf_alloc=*/8);
  WriteAll(host.get(), "0123456789abcdefghij");
  dev_->HandleHostEvents();
  GiveRx(8);
  std::vector<Packet> p = TakeRx();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].payload, "01234567");
  EXPECT_EQ(p[1].header.op, VIRTIO_VSOCK_OP_CREDIT_REQUEST);
  EXPECT_EQ(dev_->connection(local, 1234)->peer_credit, 0u);
  dev_->HandleHostEvents();  // the socket is not polled without credit
  EXPECT_TRUE(TakeRx().empty());

  // The guest read 8 bytes.
  SendTx(GuestHeader(VIRTIO_VSOCK_OP_CREDIT_UPDATE, 1234, local, 0, 0, 8, 8));
  EXPECT_EQ(TakeRx()[0].payload, "89abcdef");
  SendTx(GuestHeader(VIRTIO_VSOCK_OP_CREDIT_UPDATE, 1234, local, 0, 0, 8, 16));
  EXPECT_EQ(TakeRx()[0].payload, "ghij");
}

TEST_F(VirtioVsockTest, HostDataWaitsInTheSocketUntilTheGuestGivesRxBuffers) {
  Start();
  uint32_t local = 0;
  UniqueFd host = EstablishHostConnection(1234, &local);
  WriteAll(host.get(), "queued");
  dev_->HandleHostEvents();
  dev_->HandleHostEvents();
  EXPECT_TRUE(TakeRx().empty());
  GiveRx(1, 2);  // two bytes of payload per buffer
  EXPECT_EQ(TakeOne().payload, "qu");
  GiveRx(2, 2);
  std::vector<Packet> p = TakeRx();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].payload + p[1].payload, "eued");
}

// "Quiet": the muxer's epoll set has nothing to report, so the event loop
// does not spin on a socket we cannot serve.
bool Quiet(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

TEST_F(VirtioVsockTest, HostSocketIsNotPolledWhileTheGuestHasNoRxBuffers) {
  Start();
  uint32_t local = 0;
  UniqueFd host = EstablishHostConnection(1234, &local);  // uses the only RX buffer
  WriteAll(host.get(), "wait");
  ASSERT_FALSE(Quiet(dev_->host_event_fd()));
  dev_->HandleHostEvents();
  EXPECT_TRUE(Quiet(dev_->host_event_fd()));
  GiveRx(1);
  EXPECT_EQ(TakeOne().payload, "wait");
}

TEST_F(VirtioVsockTest, HostSocketIsNotPolledWithoutCreditEvenAfterItHangsUp) {
  Start();
  uint32_t local = 0;
  UniqueFd host = EstablishHostConnection(1234, &local, /*guest_buf_alloc=*/4);
  GiveRx(8);
  WriteAll(host.get(), "abcdefgh");
  host.Reset();
  dev_->HandleHostEvents();
  std::vector<Packet> p = TakeRx();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].payload, "abcd");
  EXPECT_EQ(p[1].header.op, VIRTIO_VSOCK_OP_CREDIT_REQUEST);
  EXPECT_TRUE(Quiet(dev_->host_event_fd()));  // the hang-up is not reported either
  SendTx(GuestHeader(VIRTIO_VSOCK_OP_CREDIT_UPDATE, 1234, local, 0, 0, 4, 4));
  dev_->HandleHostEvents();
  SendTx(GuestHeader(VIRTIO_VSOCK_OP_CREDIT_UPDATE, 1234, local, 0, 0, 4, 8));
  dev_->HandleHostEvents();
  p = TakeRx();
  ASSERT_GE(p.size(), 2u);
  EXPECT_EQ(p[0].payload, "efgh");
  EXPECT_EQ(p.back().header.op, VIRTIO_VSOCK_OP_SHUTDOWN);
}

TEST_F(VirtioVsockTest, GuestCreditRequestIsAnsweredWithCreditUpdate) {
  Start();
  uint32_t local = 0;
  UniqueFd host = EstablishHostConnection(1234, &local);
  GiveRx(1);
  SendTx(GuestHeader(VIRTIO_VSOCK_OP_RW, 1234, local, 3), "abc");
  SendTx(GuestHeader(VIRTIO_VSOCK_OP_CREDIT_REQUEST, 1234, local));
  Packet p = TakeOne();
  EXPECT_EQ(p.header.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
  EXPECT_EQ(p.header.fwd_cnt, 3u);
  EXPECT_EQ(p.header.buf_alloc, Options().buffer_size);
}

// The host does not read: the socket fills, then our buffer up to the credit
// we granted, and a guest that sends beyond it is reset.
TEST_F(VirtioVsockTest, GuestSendingBeyondItsCreditIsResetAndBufferingIsBounded) {
  Start();
  uint32_t local = 0;
  UniqueFd host = EstablishHostConnection(1234, &local);
  GiveRx(4);
  const std::string chunk(kVsockMaxPayload, 'x');
  bool reset = false;
  for (int i = 0; i < 64 && !reset; ++i) {
    SendTx(GuestHeader(VIRTIO_VSOCK_OP_RW, 1234, local, chunk.size()), chunk);
    auto info = dev_->connection(local, 1234);
    if (info) {
      EXPECT_LE(info->buffered_bytes, Options().buffer_size);
    }
    for (const Packet& p : TakeRx()) reset |= p.header.op == VIRTIO_VSOCK_OP_RST;
  }
  EXPECT_TRUE(reset);
  EXPECT_EQ(dev_->stats().credit_violations, 1u);
  EXPECT_EQ(dev_->connection_count(), 0u);
}

TEST_F(VirtioVsockTest, BufferedGuestBytesReachTheHostAndCreditIsReturned) {
  Start();
  uint32_t local = 0;
  UniqueFd host = EstablishHostConnection(1234, &local);
  GiveRx(8);
  const uint32_t budget = Options().buffer_size;
  std::string sent;
  // Fill the socket and most of our buffer (never beyond the credit).
  for (int i = 0; i < 64; ++i) {
    auto info = dev_->connection(local, 1234);
    ASSERT_TRUE(info.has_value());
    if (info->buffered_bytes + 2 * kVsockMaxPayload > budget) break;
    std::string chunk(kVsockMaxPayload, static_cast<char>('a' + i % 26));
    SendTx(GuestHeader(VIRTIO_VSOCK_OP_RW, 1234, local, chunk.size()), chunk);
    sent += chunk;
  }
  ASSERT_GT(dev_->connection(local, 1234)->buffered_bytes, 0u);
  TakeRx();
  std::string got;
  for (int i = 0; i < 200 && got.size() < sent.size(); ++i) {
    got += ReadAvailable(host.get(), 100).value_or("");
    dev_->HandleHostEvents();  // EPOLLOUT: the buffer drains
  }
  EXPECT_EQ(got.size(), sent.size());
  EXPECT_TRUE(got == sent);
  EXPECT_EQ(dev_->connection(local, 1234)->buffered_bytes, 0u);
  // The guest heard of enough of it to have at least half its credit back.
  std::vector<Packet> p = TakeRx();
  ASSERT_FALSE(p.empty());
  EXPECT_EQ(p.back().header.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
  EXPECT_GE(p.back().header.fwd_cnt + budget / 2, static_cast<uint32_t>(sent.size()));
}

// --- Shutdown and reset -----------------------------------------------------------

TEST_F(VirtioVsockTest, HostCloseBecomesShutdownAndTheGuestsRstEndsTheConnection) {
  Start();
  uint32_t local = 0;
  UniqueFd host = EstablishHostConnection(1234, &local);
  WriteAll(host.get(), "bye");
  host.Reset();
  dev_->HandleHostEvents();
  GiveRx(4);
  dev_->HandleHostEvents();  // EOF after the bytes
  std::vector<Packet> p = TakeRx();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].payload, "bye");
  EXPECT_EQ(p[1].header.op, VIRTIO_VSOCK_OP_SHUTDOWN);
  EXPECT_EQ(p[1].header.flags, kBoth);
  EXPECT_EQ(dev_->connection_count(), 1u);
  SendTx(GuestHeader(VIRTIO_VSOCK_OP_RST, 1234, local));
  EXPECT_EQ(dev_->connection_count(), 0u);
  EXPECT_TRUE(TakeRx().empty());  // no RST in answer to an RST
}

TEST_F(VirtioVsockTest, GuestThatNeverAnswersOurShutdownIsResetAfterTheTimeout) {
  VsockMuxerOptions o = Options();
  o.shutdown_timeout_ms = 30;
  Start(o);
  uint32_t local = 0;
  UniqueFd host = EstablishHostConnection(1234, &local);
  host.Reset();
  GiveRx(4);
  dev_->HandleHostEvents();
  EXPECT_EQ(TakeOne().header.op, VIRTIO_VSOCK_OP_SHUTDOWN);
  dev_->HandleHostEvents();
  EXPECT_EQ(dev_->connection_count(), 1u);  // waiting for the guest's RST
  pollfd p{dev_->host_event_fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 2000), 1);  // the deadline fires
  dev_->HandleHostEvents();
  EXPECT_EQ(TakeOne().header.op, VIRTIO_VSOCK_OP_RST);
  EXPECT_EQ(dev_->connection_count(), 0u);
  EXPECT_EQ(dev_->stats().shutdown_timeouts, 1u);
  EXPECT_TRUE(Quiet(dev_->host_event_fd()));
}

TEST_F(VirtioVsockTest, GuestShutdownWithBytesTheHostNeverReadsIsResetAfterTheTimeout) {
  VsockMuxerOptions o = Options();
  o.shutdown_timeout_ms = 30;
  Start(o);
  uint32_t local = 0;
  UniqueFd host = EstablishHostConnection(1234, &local);
  GiveRx(4);
  const std::string chunk(kVsockMaxPayload, 'z');
  while (dev_->connection(local, 1234)->buffered_bytes == 0) {
    SendTx(GuestHeader(VIRTIO_VSOCK_OP_RW, 1234, local, chunk.size()), chunk);
  }
  TakeRx();
  SendTx(GuestHeader(VIRTIO_VSOCK_OP_SHUTDOWN, 1234, local, 0, kBoth));
  EXPECT_TRUE(TakeRx().empty());  // its bytes first
  pollfd p{dev_->host_event_fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 2000), 1);
  dev_->HandleHostEvents();
  EXPECT_EQ(TakeOne().header.op, VIRTIO_VSOCK_OP_RST);
  EXPECT_EQ(dev_->connection_count(), 0u);
  EXPECT_EQ(dev_->stats().shutdown_timeouts, 1u);
}

TEST_F(VirtioVsockTest, GuestFullShutdownIsAnsweredWithRstAndClosesTheHostSocket) {
  Start();
  uint32_t local = 0;
  UniqueFd host = EstablishHostConnection(1234, &local);
  GiveRx(2);
  SendTx(GuestHeader(VIRTIO_VSOCK_OP_SHUTDOWN, 1234, local, 0, kBoth));
  EXPECT_EQ(TakeOne().header.op, VIRTIO_VSOCK_OP_RST);
  EXPECT_TRUE(AtEof(host.get()));
  EXPECT_EQ(dev_->connection_count(), 0u);
}

TEST_F(VirtioVsockTest, GuestSendShutdownHalfClosesTheHostSocket) {
  Start();
  uint32_t local = 0;
  UniqueFd host = EstablishHostConnection(1234, &local);
  GiveRx(2);
  SendTx(GuestHeader(VIRTIO_VSOCK_OP_RW, 1234, local, 4), "last");
  SendTx(GuestHeader(VIRTIO_VSOCK_OP_SHUTDOWN, 1234, local, 0, VIRTIO_VSOCK_SHUTDOWN_SEND));
  EXPECT_EQ(ReadAvailable(host.get()), "last");
  EXPECT_TRUE(AtEof(host.get()));
  WriteAll(host.get(), "still");  // the other direction stays open
  dev_->HandleHostEvents();
  EXPECT_EQ(TakeOne().payload, "still");
  // Data after its own SHUTDOWN(SEND) is a protocol error.
  SendTx(GuestHeader(VIRTIO_VSOCK_OP_RW, 1234, local, 1), "!");
  EXPECT_EQ(TakeOne().header.op, VIRTIO_VSOCK_OP_RST);
}

TEST_F(VirtioVsockTest, DriverResetClosesEveryHostSocket) {
  Start();
  uint32_t local = 0;
  UniqueFd host = EstablishHostConnection(1234, &local);
  dev_->Reset();
  EXPECT_TRUE(AtEof(host.get()));
  EXPECT_EQ(dev_->connection_count(), 0u);
  EXPECT_TRUE(ConnectTo(path_).valid());  // still listening
}

// --- Snapshots (issue 15) --------------------------------------------------------

// Connections end with the snapshotted VM (their host sockets were its): a
// restored device tells the driver so with a transport reset on the event
// queue, as Firecracker does. Another guest CID is refused.
TEST_F(VirtioVsockTest, ARestoredDeviceSendsATransportResetAndKeepsItsCid) {
  Start();
  absl::StatusOr<VirtioDeviceSnapshot> snapshot = dev_->Snapshot();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  EXPECT_EQ(snapshot->queues.size(), 3u);
  dev_.reset();
  Start();
  event_.AddChainBytes({}, {8});
  ASSERT_TRUE(dev_->RestoreSnapshot(snapshot->state).ok());
  auto used = event_.PopUsed();
  ASSERT_TRUE(used.has_value()) << "no event for the driver";
  EXPECT_EQ(used->len, 4u);
  EXPECT_EQ(used->written, std::vector<uint8_t>({0, 0, 0, 0}))  // VIRTIO_VSOCK_EVENT_TRANSPORT_RESET
      << "le32 id 0";
  EXPECT_EQ(context_.notify_count(VirtioVsock::kEventQueue), 1u);

  EXPECT_FALSE(dev_->RestoreSnapshot(snapshot->state.substr(0, 3)).ok());
  dev_.reset();
  VsockMuxerOptions other = Options();
  other.guest_cid = kGuestCid + 1;
  Start(other);
  EXPECT_EQ(dev_->RestoreSnapshot(snapshot->state).code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace vmm::testing
