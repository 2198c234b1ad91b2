// virtio-net: identity, features, configuration space, activation (offload
// mirroring), transmit and its malformed requests. The receive path is in
// virtio_net_rx_test.cc, the control queue in virtio_net_ctrl_test.cc.
#include "devices/virtio/net/virtio_net.h"

#include <linux/if_tun.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/devices/virtio/net/virtio_net_test_util.h"

namespace vmm::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using namespace virtio_net;  // NOLINT: the spec's names

uint64_t ConfigField(VirtioNet& dev, uint64_t offset, size_t size) {
  uint8_t bytes[8] = {};
  dev.ReadConfig(offset, absl::MakeSpan(bytes, size));
  uint64_t v = 0;
  for (size_t i = 0; i < size; ++i) v |= uint64_t{bytes[i]} << (8 * i);
  return v;
}

// --- Identity, features, configuration ----------------------------------------

TEST_F(VirtioNetTest, OnePairIsDeviceTypeOneWithReceiveTransmitAndControlQueues) {
  Make();
  EXPECT_EQ(dev_->device_type(), 1u);
  EXPECT_THAT(dev_->queue_max_sizes(), ElementsAre(256, 256, 64));
}

TEST_F(VirtioNetTest, TwoPairsHaveFourDataQueuesThenControl) {
  Make(2);
  EXPECT_THAT(dev_->queue_max_sizes(), ElementsAre(256, 256, 256, 256, 64));
  EXPECT_NE(dev_->device_features() & Bit(kFMq), 0u);
  EXPECT_EQ(ConfigField(*dev_, 8, 2), 2u);  // max_virtqueue_pairs
}

TEST_F(VirtioNetTest, OffersTheFeaturesLinuxUsesAndMqOnlyWithSeveralPairs) {
  Make();
  const uint64_t f = dev_->device_features();
  for (uint64_t bit :
       {kVirtioFVersion1, kVirtioFEventIdx, kVirtioFIndirectDesc, Bit(kFMac), Bit(kFStatus),
        Bit(kFMrgRxbuf), Bit(kFCsum), Bit(kFGuestCsum), Bit(kFHostTso4), Bit(kFHostTso6),
        Bit(kFGuestTso4), Bit(kFGuestTso6), Bit(kFHostUfo), Bit(kFGuestUfo), Bit(kFCtrlVq),
        Bit(kFCtrlRx)}) {
    EXPECT_NE(f & bit, 0u) << "missing feature bit " << __builtin_ctzll(bit);
  }
  EXPECT_EQ(f & Bit(kFMq), 0u);
  EXPECT_EQ(f & Bit(kFCtrlVlan), 0u);
}

TEST_F(VirtioNetTest, GuestOffloadsAreOfferedOnlyWhereTheBackendTakesThem) {
  Make(1, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN);  // no UFO
  uint64_t f = dev_->device_features();
  EXPECT_NE(f & Bit(kFGuestTso4), 0u);
  EXPECT_EQ(f & (Bit(kFGuestUfo) | Bit(kFHostUfo)), 0u);

  Make(1, 0);  // no offloads at all
  f = dev_->device_features();
  EXPECT_EQ(f & (Bit(kFGuestCsum) | Bit(kFGuestTso4) | Bit(kFGuestTso6) | Bit(kFGuestUfo)), 0u);
  // What the guest sends is the kernel's to finish: always offered.
  EXPECT_NE(f & Bit(kFCsum), 0u);
  EXPECT_NE(f & Bit(kFHostTso4), 0u);
}

TEST_F(VirtioNetTest, ConfigHasMacLinkUpAndPairCount) {
  Make();
  for (int i = 0; i < 6; ++i) EXPECT_EQ(ConfigField(*dev_, i, 1), kMac[i]) << i;
  EXPECT_EQ(ConfigField(*dev_, 6, 2), kStatusLinkUp);
  EXPECT_EQ(ConfigField(*dev_, 8, 2), 1u);
  uint8_t past[4] = {9, 9, 9, 9};
  dev_->ReadConfig(4096, absl::MakeSpan(past));
  EXPECT_THAT(past, ElementsAre(0, 0, 0, 0));
}

TEST_F(VirtioNetTest, ConfigWritesAreIgnored) {
  Make();
  const uint8_t junk[6] = {1, 2, 3, 4, 5, 6};
  dev_->WriteConfig(0, junk);
  EXPECT_EQ(ConfigField(*dev_, 0, 1), kMac[0]);
}

// --- Activation -----------------------------------------------------------------

TEST_F(VirtioNetTest, ActivationMirrorsTheNegotiatedGuestOffloadsToTheBackend) {
  Activate(kBasic | Bit(kFGuestCsum) | Bit(kFGuestTso4));
  EXPECT_EQ(backend_->offloads, unsigned{TUN_F_CSUM | TUN_F_TSO4});
  dev_->Reset();
  EXPECT_EQ(backend_->offloads, 0u);
}

TEST_F(VirtioNetTest, TsoWithoutGuestCsumMirrorsNothing) {
  Activate(kBasic | Bit(kFGuestTso4));
  EXPECT_EQ(backend_->offloads, 0u);
}

TEST_F(VirtioNetTest, ActivationWithoutVersion1Fails) {
  Make();
  VirtioActivation a;
  a.memory = &mem_;
  a.context = &ctx_;
  a.features = Bit(kFMac);
  EXPECT_FALSE(dev_->Activate(std::move(a)).ok());
}

TEST_F(VirtioNetTest, ActivationWatchesTheBackendAndResetStopsWatching) {
  Activate(kBasic);
  EXPECT_TRUE(dev_->rx_watching(0));
  dev_->Reset();
  EXPECT_FALSE(dev_->rx_watching(0));
}

// --- Transmit -------------------------------------------------------------------

TEST_F(VirtioNetTest, TransmitGathersTheChainHeaderIncludedIntoOneBackendFrame) {
  Activate(kBasic);
  std::vector<uint8_t> frame = Frame(100, 7, /*flags=*/1);
  std::vector<uint8_t> head(frame.begin(), frame.begin() + 30);
  std::vector<uint8_t> rest(frame.begin() + 30, frame.end());
  txq().AddChainBytes({head, rest}, {});
  dev_->ProcessQueue(1);
  ASSERT_EQ(backend_->sent(0).size(), 1u);
  EXPECT_EQ(backend_->sent(0)[0], frame);
  auto used = txq().PopAllUsed();
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(used[0].len, 0u);
  EXPECT_EQ(ctx_.notify_count(1), 1u);
  EXPECT_EQ(dev_->stats().tx_frames, 1u);
  EXPECT_EQ(dev_->stats().tx_bytes, frame.size());
  EXPECT_FALSE(ctx_.needs_reset());
}

TEST_F(VirtioNetTest, TransmitDrainsEveryChainAndTakesIndirectTables) {
  Activate(kBasic, 16, /*event_idx=*/true, /*indirect=*/true);
  for (uint8_t i = 0; i < 5; ++i) txq().AddChainBytes({Frame(60, i)}, {});
  std::vector<uint8_t> big = Frame(3000, 9);
  txq().AddIndirectChain({txq().PlaceBytes(big)}, {});
  dev_->ProcessQueue(1);
  ASSERT_EQ(backend_->sent(0).size(), 6u);
  EXPECT_EQ(backend_->sent(0)[2], Frame(60, 2));
  EXPECT_EQ(backend_->sent(0)[5], big);
  EXPECT_EQ(txq().PopAllUsed().size(), 6u);
}

TEST_F(VirtioNetTest, MaximumSizeFrameIsSent) {
  Activate(kBasic);
  txq().AddChainBytes({Frame(VirtioNet::kMaxFrame)}, {});
  dev_->ProcessQueue(1);
  EXPECT_EQ(backend_->sent(0).size(), 1u);
  EXPECT_EQ(dev_->stats().tx_malformed, 0u);
}

struct MalformedTx {
  const char* name;
  std::vector<uint32_t> readable;  // buffer lengths
  std::vector<uint32_t> writable;
};

class VirtioNetMalformedTxTest : public VirtioNetTest,
                                 public ::testing::WithParamInterface<MalformedTx> {};

TEST_P(VirtioNetMalformedTxTest, IsCountedReturnedUnusedAndNotSent) {
  Activate(kBasic);
  std::vector<std::vector<uint8_t>> readable;
  for (uint32_t len : GetParam().readable) readable.push_back(std::vector<uint8_t>(len, 0));
  txq().AddChainBytes(readable, GetParam().writable);
  txq().AddChainBytes({Frame(60)}, {});  // a good one after it still goes
  dev_->ProcessQueue(1);
  EXPECT_EQ(dev_->stats().tx_malformed, 1u);
  ASSERT_EQ(backend_->sent(0).size(), 1u);
  EXPECT_EQ(backend_->sent(0)[0], Frame(60));
  auto used = txq().PopAllUsed();
  ASSERT_EQ(used.size(), 2u);
  EXPECT_EQ(used[0].len, 0u);
  EXPECT_FALSE(ctx_.needs_reset());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, VirtioNetMalformedTxTest,
    ::testing::Values(
        MalformedTx{"ShorterThanTheHeader", {kHdr - 1}, {}},
        MalformedTx{"HeaderSplitButShort", {4, 4}, {}},
        MalformedTx{"WritableBufferInATransmitChain", {kHdr + 60}, {16}},
        MalformedTx{"OnlyWritableBuffers", {}, {kHdr + 60}},
        MalformedTx{"OversizeFrame", {kHdr + VirtioNet::kMaxFrame + 1}, {}},
        MalformedTx{"OversizeAcrossBuffers", {kHdr + 40000, 30000}, {}}),
    [](const ::testing::TestParamInfo<MalformedTx>& info) { return info.param.name; });

TEST_F(VirtioNetTest, FrameTheBackendRefusesIsCountedAsDropped) {
  Activate(kBasic);
  backend_->refuse_writes = true;
  txq().AddChainBytes({Frame(60)}, {});
  dev_->ProcessQueue(1);
  EXPECT_EQ(dev_->stats().tx_dropped, 1u);
  EXPECT_EQ(txq().PopAllUsed().size(), 1u);
  EXPECT_FALSE(ctx_.needs_reset());
}

TEST_F(VirtioNetTest, TransmitRingProtocolBreakSetsNeedsReset) {
  Activate(kBasic);
  txq().SetAvailIdx(100);  // more than the queue size ahead
  dev_->ProcessQueue(1);
  EXPECT_TRUE(ctx_.needs_reset());
  EXPECT_FALSE(dev_->rx_watching(0));
  // Nothing more happens until reset.
  txq().AddChainBytes({Frame(60)}, {});
  dev_->ProcessQueue(1);
  EXPECT_THAT(backend_->sent(0), IsEmpty());
}

TEST_F(VirtioNetTest, KicksBeforeActivationAndOnUnknownQueuesAreIgnored) {
  Make();
  dev_->ProcessQueue(1);
  Activate(kBasic);
  dev_->ProcessQueue(77);
  dev_->OnBackendReadable(5);
  EXPECT_FALSE(ctx_.needs_reset());
}

// --- Snapshots (issue 15) ---

// The receive buffer the device held for a frame that had not come is given
// back and retaken by the restored device, which also takes the snapshot's
// MAC (the guest's driver has it) and receive mode.
TEST_F(VirtioNetTest, ARestoredNicRetakesItsReceiveBufferAndKeepsTheGuestsMac) {
  Activate(kBasic);
  ASSERT_EQ(Ctrl(0, 0, {0}), 0) << "CTRL_RX_PROMISC off";
  AddRxBuffers({1526});
  dev_->OnBackendReadable(0);  // nothing on the tap: the buffer is held
  ASSERT_EQ(rxq().pending_used(), 0u);
  absl::StatusOr<VirtioDeviceSnapshot> snapshot = dev_->Snapshot();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  ASSERT_EQ(snapshot->queues.size(), 3u);
  EXPECT_EQ(snapshot->queues[0].next_avail, 0) << "the held buffer is given back";

  auto backend = std::make_unique<FakeNetBackend>(1, FakeNetBackend::kAllOffloads);
  FakeNetBackend* host = backend.get();
  const std::array<uint8_t, 6> other_mac = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};
  VirtioNet restored(std::move(backend), other_mac, loop_.get());
  VirtioActivation a;
  a.memory = &mem_;
  a.features = kBasic & restored.device_features();
  a.context = &ctx_;
  for (size_t i = 0; i < drivers_.size(); ++i) {
    auto q = Virtqueue::Create(drivers_[i]->config(), mem_);
    ASSERT_TRUE(q.ok()) << q.status();
    q->Restore(snapshot->queues[i]);
    a.queues.push_back(std::move(*q));
    a.queue_enabled.push_back(true);
  }
  ASSERT_TRUE(restored.Activate(std::move(a)).ok());
  ASSERT_TRUE(restored.RestoreSnapshot(snapshot->state).ok());
  uint8_t mac[6];
  restored.ReadConfig(0, absl::MakeSpan(mac));
  EXPECT_TRUE(std::equal(mac, mac + 6, kMac.begin())) << "the guest's MAC changed under it";
  EXPECT_FALSE(restored.promiscuous());
  const std::vector<uint8_t> frame = Frame(98, 3);
  host->Inject(0, frame);
  restored.OnBackendReadable(0);
  auto used = rxq().PopUsed();
  ASSERT_TRUE(used.has_value()) << "the given-back buffer was not retaken";
  EXPECT_EQ(used->len, frame.size());
  EXPECT_FALSE(restored.RestoreSnapshot(snapshot->state.substr(1)).ok()) << "a damaged state";
}

}  // namespace
}  // namespace vmm::testing
