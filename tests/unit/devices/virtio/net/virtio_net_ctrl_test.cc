// virtio-net's control queue: RX mode, the MAC table, MQ pairs, and the
// malformed or unsupported commands (answered ERR, never a reset).
#include <vector>

#include "devices/virtio/net/virtio_net.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/devices/virtio/net/virtio_net_test_util.h"

namespace vmm::testing {
namespace {

using ::testing::ElementsAre;
using namespace virtio_net;  // NOLINT: the spec's names

TEST_F(VirtioNetTest, RxModeCommandsAreAcknowledgedAndRecorded) {
  Activate(kBasic);
  EXPECT_TRUE(dev_->promiscuous());  // the spec's default
  EXPECT_EQ(Ctrl(kCtrlRx, kCtrlRxPromisc, {0}), kCtrlOk);
  EXPECT_FALSE(dev_->promiscuous());
  EXPECT_EQ(Ctrl(kCtrlRx, kCtrlRxAllmulti, {0}), kCtrlOk);
  EXPECT_FALSE(dev_->all_multicast());
  EXPECT_EQ(Ctrl(kCtrlRx, kCtrlRxPromisc, {1}), kCtrlOk);
  EXPECT_TRUE(dev_->promiscuous());
  EXPECT_EQ(dev_->stats().ctrl_commands, 3u);
  EXPECT_EQ(dev_->stats().ctrl_errors, 0u);
  EXPECT_GE(ctx_.notify_count(ctrl_index()), 1u);
}

TEST_F(VirtioNetTest, MacTableAsLinuxSendsItIsAcknowledged) {
  Activate(kBasic);
  // 1 unicast entry, 2 multicast entries.
  std::vector<uint8_t> data = {1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 2, 0, 0, 0};
  data.resize(data.size() + 12, 0x33);
  EXPECT_EQ(Ctrl(kCtrlMac, kCtrlMacTableSet, data), kCtrlOk);
  EXPECT_EQ(Ctrl(kCtrlMac, kCtrlMacTableSet, {0, 0, 0, 0, 0, 0, 0, 0}), kCtrlOk);
}

struct BadCtrl {
  const char* name;
  uint8_t cls, cmd;
  std::vector<uint8_t> data;
};

class VirtioNetBadCtrlTest : public VirtioNetTest,
                             public ::testing::WithParamInterface<BadCtrl> {};

TEST_P(VirtioNetBadCtrlTest, IsAnsweredErr) {
  Activate(kBasic);
  EXPECT_EQ(Ctrl(GetParam().cls, GetParam().cmd, GetParam().data), kCtrlErr);
  EXPECT_EQ(dev_->stats().ctrl_errors, 1u);
  EXPECT_FALSE(ctx_.needs_reset());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, VirtioNetBadCtrlTest,
    ::testing::Values(
        BadCtrl{"RxModeWithoutData", kCtrlRx, kCtrlRxPromisc, {}},
        BadCtrl{"RxModeWithTwoBytes", kCtrlRx, kCtrlRxPromisc, {1, 1}},
        BadCtrl{"RxExtraCommandNotOffered", kCtrlRx, 5 /* NOBCAST */, {1}},
        BadCtrl{"MacTableShort", kCtrlMac, kCtrlMacTableSet, {1, 0, 0, 0, 1, 2}},
        BadCtrl{"MacTableCountOverflow", kCtrlMac, kCtrlMacTableSet,
                {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}},
        BadCtrl{"MacTableTrailingBytes", kCtrlMac, kCtrlMacTableSet, {0, 0, 0, 0, 0, 0, 0, 0, 9}},
        BadCtrl{"MacAddrSetNotOffered", kCtrlMac, kCtrlMacAddrSet, {1, 2, 3, 4, 5, 6}},
        BadCtrl{"VlanNotOffered", kCtrlVlan, 0, {1, 0}},
        BadCtrl{"MqWithoutMq", kCtrlMq, kCtrlMqVqPairsSet, {1, 0}},
        BadCtrl{"UnknownClass", 200, 0, {}}),
    [](const ::testing::TestParamInfo<BadCtrl>& info) { return info.param.name; });

TEST_F(VirtioNetTest, ControlChainWithoutRoomForTheAckIsReturnedUnanswered) {
  Activate(kBasic);
  ctrlq().AddChainBytes({{kCtrlRx, kCtrlRxPromisc, 0}}, {});
  dev_->ProcessQueue(ctrl_index());
  auto used = ctrlq().PopAllUsed();
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(used[0].len, 0u);
  EXPECT_EQ(dev_->stats().ctrl_errors, 1u);
  EXPECT_TRUE(dev_->promiscuous());
  EXPECT_FALSE(ctx_.needs_reset());
}

TEST_F(VirtioNetTest, ControlChainShorterThanClassAndCommandIsAnsweredErr) {
  Activate(kBasic);
  ctrlq().AddChainBytes({{kCtrlRx}}, {1});
  dev_->ProcessQueue(ctrl_index());
  auto used = ctrlq().PopUsed();
  ASSERT_TRUE(used.has_value());
  EXPECT_THAT(used->written, ElementsAre(kCtrlErr));
}

TEST_F(VirtioNetTest, MqPairsSetEnablesBackendQueuesAndWatchesThem) {
  Make(2);
  Activate(kBasic | Bit(kFMq));
  EXPECT_EQ(dev_->active_pairs(), 1);
  EXPECT_TRUE(backend_->queue_enabled(0));
  EXPECT_FALSE(backend_->queue_enabled(1));
  EXPECT_FALSE(dev_->rx_watching(1));

  EXPECT_EQ(Ctrl(kCtrlMq, kCtrlMqVqPairsSet, {2, 0}), kCtrlOk);
  EXPECT_EQ(dev_->active_pairs(), 2);
  EXPECT_TRUE(backend_->queue_enabled(1));
  EXPECT_TRUE(dev_->rx_watching(1));

  // Frames on the second pair reach its receive queue; its transmit queue
  // goes to backend queue 1.
  AddRxBuffers({2048}, 1);
  backend_->Inject(1, Frame(80, 4));
  dev_->OnBackendReadable(1);
  auto used = rxq(1).PopAllUsed();
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(used[0].len, kHdr + 80);
  txq(1).AddChainBytes({Frame(64, 5)}, {});
  dev_->ProcessQueue(3);
  ASSERT_EQ(backend_->sent(1).size(), 1u);

  EXPECT_EQ(Ctrl(kCtrlMq, kCtrlMqVqPairsSet, {1, 0}), kCtrlOk);
  EXPECT_FALSE(backend_->queue_enabled(1));
  EXPECT_FALSE(dev_->rx_watching(1));
}

TEST_F(VirtioNetTest, WithoutMqNegotiatedTheControlQueueIsQueueTwo) {
  Make(2);
  Activate(kBasic);  // MQ offered, not taken
  FakeVirtqueueDriver& ctrl = *drivers_[2];
  ctrl.AddChainBytes({{kCtrlRx, kCtrlRxPromisc, 0}}, {1});
  dev_->ProcessQueue(2);
  auto used = ctrl.PopUsed();
  ASSERT_TRUE(used.has_value());
  EXPECT_THAT(used->written, ElementsAre(kCtrlOk));
  EXPECT_FALSE(dev_->promiscuous());
  // Pair 1's queues do not exist for this driver.
  dev_->ProcessQueue(4);
  EXPECT_EQ(drivers_[4]->pending_used(), 0u);
  EXPECT_FALSE(ctx_.needs_reset());
}

TEST_F(VirtioNetTest, MqPairsOutsideOneToMaxAreRefused) {
  Make(2);
  Activate(kBasic | Bit(kFMq));
  EXPECT_EQ(Ctrl(kCtrlMq, kCtrlMqVqPairsSet, {0, 0}), kCtrlErr);
  EXPECT_EQ(Ctrl(kCtrlMq, kCtrlMqVqPairsSet, {3, 0}), kCtrlErr);
  EXPECT_EQ(Ctrl(kCtrlMq, kCtrlMqVqPairsSet, {2}), kCtrlErr);  // one byte of two
  EXPECT_EQ(Ctrl(kCtrlMq, 1 /* RSS_CONFIG */, {2, 0}), kCtrlErr);
  EXPECT_EQ(dev_->active_pairs(), 1);
}

}  // namespace
}  // namespace vmm::testing
