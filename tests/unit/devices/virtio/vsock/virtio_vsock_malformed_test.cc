// virtio-vsock against a hostile driver: every malformed packet or buffer
// is counted and answered with RST or returned unused; the device never
// stops serving the well-formed traffic around it.
#include <cstdint>
#include <string>

#include "devices/virtio/vsock/virtio_vsock.h"
#include "gtest/gtest.h"
#include "tests/unit/devices/virtio/vsock/virtio_vsock_test_util.h"

namespace vmm::testing {
namespace {

class VirtioVsockMalformedTest : public VirtioVsockTest {
 protected:
  // After a malformed packet the device still works: a host client reaches
  // guest port 1 and the guest gets its REQUEST.
  void ExpectServing() {
    UniqueFd host = ConnectTo(path_);
    WriteAll(host.get(), "CONNECT 1\n");
    dev_->HandleHostEvents();
    GiveRx(1);
    std::vector<Packet> p = TakeRx();
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0].header.op, VIRTIO_VSOCK_OP_REQUEST);
    EXPECT_FALSE(context_.needs_reset());
  }
  // Sends `h` (+ payload) and expects exactly one RST back, addressed to its
  // sender.
  void ExpectRst(const VsockHeader& h, const std::string& payload = "") {
    GiveRx(1);
    SendTx(h, payload);
    std::vector<Packet> p = TakeRx();
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0].header.op, VIRTIO_VSOCK_OP_RST);
    EXPECT_EQ(p[0].header.src_cid, kVsockHostCid);
    EXPECT_EQ(p[0].header.dst_cid, kGuestCid);
    EXPECT_EQ(p[0].header.src_port, h.dst_port);
    EXPECT_EQ(p[0].header.dst_port, h.src_port);
  }
};

TEST_F(VirtioVsockMalformedTest, ShortHeaderIsCountedAndReturnedUnused) {
  Start();
  GiveRx(1);
  std::vector<uint8_t> h = HeaderBytes(GuestHeader(VIRTIO_VSOCK_OP_REQUEST, 1, 2));
  h.resize(43);
  tx_.AddChainBytes({h}, {});
  dev_->ProcessQueue(VirtioVsock::kTxQueue);
  auto used = tx_.PopAllUsed();
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(used[0].len, 0u);
  EXPECT_EQ(dev_->stats().malformed, 1u);
  EXPECT_TRUE(TakeRx().empty());
  ExpectServing();
}

TEST_F(VirtioVsockMalformedTest, TxChainWithDeviceWritableBuffersIsCountedAndIgnored) {
  Start();
  UniqueFd listener = ListenAt(path_ + "_5");
  GiveRx(1);
  tx_.AddChainBytes({HeaderBytes(GuestHeader(VIRTIO_VSOCK_OP_REQUEST, 1, 5))}, {64});
  dev_->ProcessQueue(VirtioVsock::kTxQueue);
  ASSERT_EQ(tx_.PopAllUsed().size(), 1u);
  EXPECT_EQ(dev_->stats().malformed, 1u);
  EXPECT_EQ(dev_->connection_count(), 0u);  // nothing was connected
  EXPECT_TRUE(TakeRx().empty());
  ExpectServing();
}

TEST_F(VirtioVsockMalformedTest, RxBuffersThatAreReadableOrTooSmallAreReturnedEmpty) {
  Start();
  rx_.AddChainBytes({{1, 2, 3}}, {4096});  // a device-readable part
  rx_.AddChainBytes({}, {43});             // no room for a header
  dev_->ProcessQueue(VirtioVsock::kRxQueue);
  UniqueFd host = ConnectTo(path_);
  WriteAll(host.get(), "CONNECT 1\n");
  dev_->HandleHostEvents();
  auto used = rx_.PopAllUsed();
  ASSERT_EQ(used.size(), 2u);
  EXPECT_EQ(used[0].len, 0u);
  EXPECT_EQ(used[1].len, 0u);
  EXPECT_EQ(dev_->stats().malformed, 2u);
  GiveRx(1);
  EXPECT_EQ(TakeOne().header.op, VIRTIO_VSOCK_OP_REQUEST);
}

TEST_F(VirtioVsockMalformedTest, WrongSourceCidIsDroppedWithoutAnswer) {
  Start();
  VsockHeader h = GuestHeader(VIRTIO_VSOCK_OP_REQUEST, 1, 2);
  h.src_cid = 7;
  GiveRx(1);
  SendTx(h);
  EXPECT_TRUE(TakeRx().empty());
  EXPECT_EQ(dev_->stats().bad_address, 1u);
  ExpectServing();
}

TEST_F(VirtioVsockMalformedTest, WrongDestinationCidGetsRst) {
  Start();
  VsockHeader h = GuestHeader(VIRTIO_VSOCK_OP_REQUEST, 1, 2);
  h.dst_cid = 5;
  ExpectRst(h);
  EXPECT_EQ(dev_->stats().bad_address, 1u);
  ExpectServing();
}

TEST_F(VirtioVsockMalformedTest, UnknownOpsGetRst) {
  Start();
  for (uint16_t op : {uint16_t{0}, uint16_t{8}, uint16_t{0xffff}}) {
    VsockHeader h = GuestHeader(VIRTIO_VSOCK_OP_REQUEST, 1, 2);
    h.op = op;
    ExpectRst(h);
  }
  EXPECT_EQ(dev_->stats().bad_packet, 3u);
  ExpectServing();
}

TEST_F(VirtioVsockMalformedTest, UnknownSocketTypeGetsRst) {
  Start();
  UniqueFd listener = ListenAt(path_ + "_2");
  VsockHeader h = GuestHeader(VIRTIO_VSOCK_OP_REQUEST, 1, 2);
  h.type = VIRTIO_VSOCK_TYPE_SEQPACKET;  // not offered
  ExpectRst(h);
  EXPECT_EQ(dev_->connection_count(), 0u);
}

TEST_F(VirtioVsockMalformedTest, OversizePacketGetsRst) {
  Start();
  uint32_t local = 0;
  UniqueFd host = EstablishHostConnection(1234, &local);
  const std::string big(kVsockMaxPayload + 1, 'x');
  ExpectRst(GuestHeader(VIRTIO_VSOCK_OP_RW, 1234, local, big.size()), big);
  EXPECT_EQ(dev_->stats().bad_packet, 1u);
  EXPECT_TRUE(AtEof(host.get()));  // its connection is reset
}

TEST_F(VirtioVsockMalformedTest, LenBeyondTheChainGetsRst) {
  Start();
  uint32_t local = 0;
  UniqueFd host = EstablishHostConnection(1234, &local);
  ExpectRst(GuestHeader(VIRTIO_VSOCK_OP_RW, 1234, local, 100), "only ten b");
  EXPECT_EQ(dev_->stats().bad_packet, 1u);
  EXPECT_TRUE(AtEof(host.get()));  // nothing of it reached the host
}

TEST_F(VirtioVsockMalformedTest, PacketsForUnknownConnectionsGetRstButRstDoesNot) {
  Start();
  ExpectRst(GuestHeader(VIRTIO_VSOCK_OP_RW, 1, 2, 3), "abc");
  ExpectRst(GuestHeader(VIRTIO_VSOCK_OP_RESPONSE, 1, 2));
  ExpectRst(GuestHeader(VIRTIO_VSOCK_OP_SHUTDOWN, 1, 2, 0, 3));
  GiveRx(1);
  SendTx(GuestHeader(VIRTIO_VSOCK_OP_RST, 1, 2));
  EXPECT_TRUE(TakeRx().empty());
  ExpectServing();
}

TEST_F(VirtioVsockMalformedTest, ProtocolErrorsOnALiveConnectionResetIt) {
  Start();
  for (uint16_t op : {VIRTIO_VSOCK_OP_REQUEST, VIRTIO_VSOCK_OP_RESPONSE}) {
    uint32_t local = 0;
    UniqueFd host = EstablishHostConnection(1234, &local);
    ExpectRst(GuestHeader(op, 1234, local));
    EXPECT_TRUE(AtEof(host.get())) << op;
    EXPECT_EQ(dev_->connection_count(), 0u);
  }
}

TEST_F(VirtioVsockMalformedTest, DataBeforeTheResponseResetsAHostConnection) {
  Start();
  UniqueFd host = ConnectTo(path_);
  WriteAll(host.get(), "CONNECT 8\n");
  dev_->HandleHostEvents();
  GiveRx(1);
  Packet req = TakeOne();
  ExpectRst(GuestHeader(VIRTIO_VSOCK_OP_RW, 8, req.header.src_port, 2), "hi");
  EXPECT_TRUE(AtEof(host.get()));
}

TEST_F(VirtioVsockMalformedTest, RstsForUnknownConnectionsAreBoundedWithoutRxBuffers) {
  Start();
  const size_t total = VsockMuxer::kMaxOrphanRsts + 40;
  for (size_t i = 0; i < total; ++i) {
    SendTx(GuestHeader(VIRTIO_VSOCK_OP_RW, static_cast<uint32_t>(i), 2));
  }
  EXPECT_EQ(dev_->stats().rst_dropped, 40u);
  size_t rsts = 0;
  for (int round = 0; round < 9; ++round) {
    GiveRx(32);
    rsts += TakeRx().size();
  }
  EXPECT_EQ(rsts, VsockMuxer::kMaxOrphanRsts);
}

TEST_F(VirtioVsockMalformedTest, GarbageRingMakesTheDeviceAskForResetNotCrash) {
  Start();
  tx_.WriteDesc(0, 0xffff'ffff'0000ull, 64, 0, 0);  // outside guest RAM
  tx_.PushAvail(0);
  dev_->ProcessQueue(VirtioVsock::kTxQueue);
  EXPECT_TRUE(context_.needs_reset());
  dev_->ProcessQueue(VirtioVsock::kTxQueue);  // stays quiet until reset
  dev_->HandleHostEvents();
  dev_->Reset();
}

}  // namespace
}  // namespace vmm::testing
