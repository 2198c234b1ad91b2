// virtio-net receive path: frames from the backend into guest buffers, with
// and without MRG_RXBUF, backpressure when the guest has no buffers, and the
// malformed receive chains.
#include <thread>
#include <vector>

#include "absl/time/clock.h"

#include "devices/virtio/net/virtio_net.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/devices/virtio/net/virtio_net_test_util.h"

namespace vmm::testing {
namespace {

using ::testing::ElementsAre;

// The frame as the guest must see it: num_buffers filled in.
std::vector<uint8_t> WithNumBuffers(std::vector<uint8_t> frame, uint16_t n) {
  std::memcpy(&frame[10], &n, 2);
  return frame;
}

TEST_F(VirtioNetTest, FrameFillsOneBufferWithNumBuffersOne) {
  Activate(kBasic);
  AddRxBuffers({1526, 1526});
  std::vector<uint8_t> frame = Frame(98, 3, /*flags=*/2);
  backend_->Inject(0, frame);
  dev_->OnBackendReadable(0);
  auto used = rxq().PopAllUsed();
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(used[0].len, frame.size());
  EXPECT_EQ(used[0].written, WithNumBuffers(frame, 1));
  EXPECT_EQ(ctx_.notify_count(0), 1u);
  EXPECT_EQ(dev_->stats().rx_frames, 1u);
  EXPECT_EQ(dev_->stats().rx_bytes, frame.size());
  EXPECT_TRUE(dev_->rx_watching(0));  // a buffer left: keep reading
  EXPECT_EQ(rxq().pending_used(), 0u);
}

TEST_F(VirtioNetTest, EveryWaitingFrameIsDeliveredInOrder) {
  Activate(kBasic);
  AddRxBuffers({1526, 1526, 1526, 1526});
  for (uint8_t i = 0; i < 3; ++i) backend_->Inject(0, Frame(60 + i, i));
  dev_->OnBackendReadable(0);
  auto used = rxq().PopAllUsed();
  ASSERT_EQ(used.size(), 3u);
  for (uint8_t i = 0; i < 3; ++i) EXPECT_EQ(used[i].written, WithNumBuffers(Frame(60 + i, i), 1));
  EXPECT_EQ(backend_->waiting(0), 0u);
}

TEST_F(VirtioNetTest, BufferSplitOverSeveralDescriptorsIsFilledInOrder) {
  Activate(kBasic);
  rxq().AddChainBytes({}, {kHdr, 50, 2000});
  std::vector<uint8_t> frame = Frame(500, 8);
  backend_->Inject(0, frame);
  dev_->OnBackendReadable(0);
  auto used = rxq().PopUsed();
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(used->len, frame.size());
  EXPECT_EQ(used->written, WithNumBuffers(frame, 1));
}

TEST_F(VirtioNetTest, MergedBuffersCarryALargeFrameAndNumBuffersSaysHowMany) {
  Activate(kMerge);
  AddRxBuffers({1526, 1526, 1526, 1526});
  std::vector<uint8_t> frame = Frame(4000, 5);  // 4012 bytes: three buffers
  backend_->Inject(0, frame);
  dev_->OnBackendReadable(0);
  auto used = rxq().PopAllUsed();
  ASSERT_EQ(used.size(), 3u);
  EXPECT_EQ(used[0].len, 1526u);
  EXPECT_EQ(used[1].len, 1526u);
  EXPECT_EQ(used[2].len, frame.size() - 2 * 1526);
  std::vector<uint8_t> joined;
  for (const auto& u : used) joined.insert(joined.end(), u.written.begin(), u.written.end());
  EXPECT_EQ(joined, WithNumBuffers(frame, 3));
  EXPECT_EQ(ctx_.notify_count(0), 1u);  // one interrupt for the frame
}

TEST_F(VirtioNetTest, MergedBuffersTakeA64KiBFrame) {
  Activate(kMerge, 64);
  std::vector<uint32_t> lens(40, 4096);
  AddRxBuffers(lens);
  std::vector<uint8_t> frame = Frame(VirtioNet::kMaxFrame, 6);
  backend_->Inject(0, frame);
  dev_->OnBackendReadable(0);
  auto used = rxq().PopAllUsed();
  ASSERT_EQ(used.size(), 17u);  // 65562 / 4096 rounded up
  EXPECT_EQ(NumBuffers(used[0].written), 17u);
  EXPECT_EQ(dev_->stats().rx_frames, 1u);
}

// --- Backpressure ---------------------------------------------------------------

TEST_F(VirtioNetTest, NoBuffersStopsReadingTheBackendUntilTheGuestKicks) {
  Activate(kBasic);
  backend_->Inject(0, Frame(60, 1));
  backend_->Inject(0, Frame(61, 2));
  dev_->OnBackendReadable(0);
  // Nothing taken from the backend, nothing dropped, no longer watching.
  EXPECT_EQ(backend_->waiting(0), 2u);
  EXPECT_FALSE(dev_->rx_watching(0));
  EXPECT_EQ(dev_->stats().rx_stalls, 1u);
  EXPECT_EQ(rxq().pending_used(), 0u);

  // The driver adds one buffer and kicks the receive queue.
  AddRxBuffers({1526});
  dev_->ProcessQueue(0);
  auto used = rxq().PopAllUsed();
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(used[0].written, WithNumBuffers(Frame(60, 1), 1));
  EXPECT_EQ(backend_->waiting(0), 1u);  // the second still waits in the backend
  EXPECT_FALSE(dev_->rx_watching(0));

  AddRxBuffers({1526});
  dev_->ProcessQueue(0);
  used = rxq().PopAllUsed();
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(used[0].written, WithNumBuffers(Frame(61, 2), 1));
  EXPECT_EQ(dev_->stats().rx_frames, 2u);
  EXPECT_EQ(dev_->stats().rx_too_big, 0u);
}

TEST_F(VirtioNetTest, NoBuffersWithEventIdxAsksTheDriverToKick) {
  Activate(kBasic, 16, /*event_idx=*/true);
  backend_->Inject(0, Frame(60));
  dev_->OnBackendReadable(0);
  EXPECT_FALSE(dev_->rx_watching(0));
  AddRxBuffers({1526});
  EXPECT_TRUE(rxq().KickNeeded());  // avail_event says: tell me about the next one
}

TEST_F(VirtioNetTest, MergedFrameShortOfBuffersWaitsWholeForMore) {
  Activate(kMerge);
  AddRxBuffers({1526});
  std::vector<uint8_t> frame = Frame(3000, 7);
  backend_->Inject(0, frame);
  dev_->OnBackendReadable(0);
  // Taken off the backend (one frame, held by the device) but not delivered
  // in part.
  EXPECT_EQ(backend_->waiting(0), 0u);
  EXPECT_EQ(rxq().pending_used(), 0u);
  EXPECT_FALSE(dev_->rx_watching(0));

  // A read while stalled takes nothing more from the backend.
  backend_->Inject(0, Frame(10, 1));
  dev_->OnBackendReadable(0);
  EXPECT_EQ(backend_->waiting(0), 1u);

  AddRxBuffers({1526, 1526});
  dev_->ProcessQueue(0);
  auto used = rxq().PopAllUsed();
  ASSERT_EQ(used.size(), 3u);  // the large frame in two, then the small one
  EXPECT_EQ(NumBuffers(used[0].written), 2u);
  std::vector<uint8_t> joined = used[0].written;
  joined.insert(joined.end(), used[1].written.begin(), used[1].written.end());
  EXPECT_EQ(joined, WithNumBuffers(frame, 2));
  EXPECT_EQ(used[2].written, WithNumBuffers(Frame(10, 1), 1));
}

TEST_F(VirtioNetTest, ReadsStopAfterTheBudgetAndTheLoopCallsAgain) {
  Activate(kMerge, 256);
  std::vector<uint32_t> lens(256, 128);
  AddRxBuffers(lens);
  for (int i = 0; i < VirtioNet::kBudget + 10; ++i) backend_->Inject(0, Frame(20));
  dev_->OnBackendReadable(0);
  EXPECT_EQ(dev_->stats().rx_frames, static_cast<uint64_t>(VirtioNet::kBudget));
  EXPECT_TRUE(dev_->rx_watching(0));
}

TEST_F(VirtioNetTest, OnARunningEventLoopTheDeviceDoesNotSpinWhileTheGuestHasNoBuffers) {
  Activate(kBasic);
  std::thread loop_thread([this] { (void)loop_->Run(); });
  for (uint8_t i = 0; i < 3; ++i) backend_->Inject(0, Frame(60, i));
  // The loop sees the backend readable, the device finds no buffers and
  // stops watching: no reads, no busy loop, frames left where they are.
  for (int i = 0; i < 200 && dev_->rx_watching(0); ++i) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_FALSE(dev_->rx_watching(0));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(backend_->reads(), 0);
  EXPECT_EQ(backend_->waiting(0), 3u);
  const uint64_t stalls = dev_->stats().rx_stalls;
  EXPECT_LE(stalls, 2u);  // once per readiness report, not a spin

  // Buffers and a kick (the VMM runs ProcessQueue on the loop thread; the
  // device mutex makes this call equivalent): every frame arrives, the rest
  // through the loop once the device watches the backend again.
  AddRxBuffers({1526, 1526, 1526, 1526});
  dev_->ProcessQueue(0);
  for (int i = 0; i < 400 && rxq().used_idx() < 3; ++i) absl::SleepFor(absl::Milliseconds(5));
  loop_->Stop();
  loop_thread.join();
  auto used = rxq().PopAllUsed();
  ASSERT_EQ(used.size(), 3u);
  for (uint8_t i = 0; i < 3; ++i) EXPECT_EQ(used[i].written, WithNumBuffers(Frame(60, i), 1));
  EXPECT_TRUE(dev_->rx_watching(0));  // a buffer is left
}

// --- Frames that cannot be delivered --------------------------------------------

TEST_F(VirtioNetTest, FrameLargerThanAnUnmergedBufferIsDroppedCountedAndTheBufferKept) {
  Activate(kBasic);
  AddRxBuffers({1526});
  backend_->Inject(0, Frame(3000));
  backend_->Inject(0, Frame(100, 4));
  dev_->OnBackendReadable(0);
  EXPECT_EQ(dev_->stats().rx_too_big, 1u);
  auto used = rxq().PopAllUsed();
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(used[0].written, WithNumBuffers(Frame(100, 4), 1));
}

TEST_F(VirtioNetTest, FrameLargerThanTheWholeRingIsDroppedNotWaitedFor) {
  Activate(kMerge, 4);
  AddRxBuffers({256, 256, 256, 256});
  backend_->Inject(0, Frame(5000));
  backend_->Inject(0, Frame(100, 2));
  dev_->OnBackendReadable(0);
  EXPECT_EQ(dev_->stats().rx_too_big, 1u);
  auto used = rxq().PopAllUsed();
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(used[0].len, kHdr + 100);
}

TEST_F(VirtioNetTest, OversizeAndRuntFramesFromTheBackendAreCounted) {
  Activate(kMerge, 64);
  std::vector<uint32_t> lens(40, 4096);
  AddRxBuffers(lens);
  backend_->Inject(0, Frame(VirtioNet::kMaxFrame + 1));
  backend_->Inject(0, std::vector<uint8_t>(kHdr - 1, 0));
  backend_->Inject(0, Frame(60, 3));
  dev_->OnBackendReadable(0);
  EXPECT_EQ(dev_->stats().rx_too_big, 1u);
  EXPECT_EQ(dev_->stats().rx_errors, 1u);
  auto used = rxq().PopAllUsed();
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(used[0].written, WithNumBuffers(Frame(60, 3), 1));
}

// --- Malformed receive chains ----------------------------------------------------

struct MalformedRx {
  const char* name;
  std::vector<uint32_t> readable;
  std::vector<uint32_t> writable;
  uint64_t features;
};

class VirtioNetMalformedRxTest : public VirtioNetTest,
                                 public ::testing::WithParamInterface<MalformedRx> {};

TEST_P(VirtioNetMalformedRxTest, IsCountedReturnedEmptyAndTheNextBufferUsed) {
  Activate(GetParam().features);
  std::vector<std::vector<uint8_t>> readable;
  for (uint32_t len : GetParam().readable) readable.push_back(std::vector<uint8_t>(len, 0));
  rxq().AddChainBytes(readable, GetParam().writable);
  AddRxBuffers({1526});
  backend_->Inject(0, Frame(60, 9));
  dev_->OnBackendReadable(0);
  EXPECT_EQ(dev_->stats().rx_malformed, 1u);
  auto used = rxq().PopAllUsed();
  ASSERT_EQ(used.size(), 2u);
  EXPECT_EQ(used[0].len, 0u);
  EXPECT_EQ(used[1].written, WithNumBuffers(Frame(60, 9), 1));
  EXPECT_FALSE(ctx_.needs_reset());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, VirtioNetMalformedRxTest,
    ::testing::Values(MalformedRx{"ReadableBufferInAReceiveChain", {16}, {1526}, kBasic},
                      MalformedRx{"OnlyReadableBuffers", {1526}, {}, kBasic},
                      MalformedRx{"ShorterThanTheHeader", {}, {kHdr - 1}, kBasic},
                      MalformedRx{"MergedBufferShorterThanTheHeader", {}, {4}, kMerge}),
    [](const ::testing::TestParamInfo<MalformedRx>& info) { return info.param.name; });

TEST_F(VirtioNetTest, ReceiveRingProtocolBreakSetsNeedsResetAndStopsReading) {
  Activate(kBasic);
  rxq().SetAvailIdx(1000);
  backend_->Inject(0, Frame(60));
  dev_->OnBackendReadable(0);
  EXPECT_TRUE(ctx_.needs_reset());
  EXPECT_FALSE(dev_->rx_watching(0));
  EXPECT_EQ(backend_->waiting(0), 1u);
}

TEST_F(VirtioNetTest, RepeatedHeadsCannotMakeTheDeviceHoldMoreThanTheRing) {
  Activate(kMerge, 4);
  // The same descriptor offered four times over (the avail ring says so); each
  // pop is a valid chain, but the device stops holding at the ring size.
  const uint16_t head = rxq().AddChainBytes({}, {64});
  for (int i = 0; i < 3; ++i) rxq().PushAvail(head);
  backend_->Inject(0, Frame(5000));
  dev_->OnBackendReadable(0);
  EXPECT_EQ(dev_->stats().rx_too_big, 1u);
}

TEST_F(VirtioNetTest, ResetDropsHeldBuffersAndAPendingFrame) {
  Activate(kMerge);
  AddRxBuffers({1526});
  backend_->Inject(0, Frame(3000));
  dev_->OnBackendReadable(0);  // holds one buffer and the frame
  dev_->Reset();
  Activate(kMerge);
  AddRxBuffers({1526});
  backend_->Inject(0, Frame(40, 2));
  dev_->OnBackendReadable(0);
  auto used = rxq().PopAllUsed();
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(used[0].written, WithNumBuffers(Frame(40, 2), 1));
}

}  // namespace
}  // namespace vmm::testing
