#include "devices/virtio/virtio_transport_state.h"

#include <atomic>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_virtio_device.h"
#include "tests/fakes/fake_virtqueue_driver.h"
#include "tests/fakes/test_guest_memory.h"

namespace vmm {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;
using testing::FakeVirtioDevice;
using testing::FakeVirtioDeviceOptions;
using testing::FakeVirtqueueDriver;
using R = VirtioRegister;

constexpr uint8_t kAck = kVirtioStatusAcknowledge;
constexpr uint8_t kDriver = kVirtioStatusDriver;
constexpr uint8_t kFeaturesOk = kVirtioStatusFeaturesOk;
constexpr uint8_t kDriverOk = kVirtioStatusDriverOk;
constexpr uint8_t kNeedsReset = kVirtioStatusNeedsReset;
constexpr uint64_t kFeatures = kVirtioFVersion1 | kVirtioFEventIdx | kVirtioFIndirectDesc;

class RecordingDelivery : public VirtioInterruptDelivery {
 public:
  bool MsixEnabled() override { return msix_.load(); }
  void SendMsix(uint16_t vector) override {
    absl::MutexLock lock(&mu_);
    vectors_.push_back(vector);
  }
  void InterruptStatusChanged(uint8_t status, bool raised) override {
    absl::MutexLock lock(&mu_);
    isr_changes_.emplace_back(status, raised);
  }
  void set_msix(bool on) { msix_ = on; }
  std::vector<uint16_t> vectors() const {
    absl::MutexLock lock(&mu_);
    return vectors_;
  }
  std::vector<std::pair<uint8_t, bool>> isr_changes() const {
    absl::MutexLock lock(&mu_);
    return isr_changes_;
  }

 private:
  std::atomic<bool> msix_{false};
  mutable absl::Mutex mu_;
  std::vector<uint16_t> vectors_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<uint8_t, bool>> isr_changes_ ABSL_GUARDED_BY(mu_);
};

class VirtioTransportStateTest : public ::testing::Test {
 protected:
  VirtioTransportStateTest() { Make(); }

  void Make(FakeVirtioDeviceOptions options = {}, uint16_t msix_vectors = 3) {
    state_.reset();
    device_ = std::make_shared<FakeVirtioDevice>(std::move(options));
    auto state = VirtioTransportState::Create(device_, memory_, &delivery_, msix_vectors);
    ASSERT_TRUE(state.ok()) << state.status();
    state_ = *std::move(state);
  }

  uint32_t Read(R reg) { return state_->Read(reg); }
  void Write(R reg, uint32_t value) { state_->Write(reg, value); }

  void WriteDriverFeatures(uint64_t features) {
    Write(R::kDriverFeatureSelect, 0);
    Write(R::kDriverFeature, static_cast<uint32_t>(features));
    Write(R::kDriverFeatureSelect, 1);
    Write(R::kDriverFeature, static_cast<uint32_t>(features >> 32));
  }
  // Linux's order: ACKNOWLEDGE, DRIVER, features, FEATURES_OK.
  void Negotiate(uint64_t features = kFeatures) {
    Write(R::kDeviceStatus, kAck);
    Write(R::kDeviceStatus, kAck | kDriver);
    WriteDriverFeatures(features);
    Write(R::kDeviceStatus, kAck | kDriver | kFeaturesOk);
  }
  void ProgramQueue(uint16_t q, const VirtqueueConfig& c) {
    Write(R::kQueueSelect, q);
    Write(R::kQueueSize, c.size);
    Write(R::kQueueDescLow, static_cast<uint32_t>(c.desc.value()));
    Write(R::kQueueDescHigh, static_cast<uint32_t>(c.desc.value() >> 32));
    Write(R::kQueueDriverLow, static_cast<uint32_t>(c.avail.value()));
    Write(R::kQueueDriverHigh, static_cast<uint32_t>(c.avail.value() >> 32));
    Write(R::kQueueDeviceLow, static_cast<uint32_t>(c.used.value()));
    Write(R::kQueueDeviceHigh, static_cast<uint32_t>(c.used.value() >> 32));
  }
  void EnableQueue(uint16_t q, const VirtqueueConfig& c) {
    ProgramQueue(q, c);
    Write(R::kQueueEnable, 1);
  }
  void DriverOk() { Write(R::kDeviceStatus, Read(R::kDeviceStatus) | kDriverOk); }
  // Negotiated, queue 0 enabled, DRIVER_OK.
  void Activate() {
    Negotiate();
    EnableQueue(0, driver0_.config());
    DriverOk();
    ASSERT_TRUE(device_->active());
  }

  GuestMemory memory_ = testing::TestGuestMemory(4 << 20);
  FakeVirtqueueDriver driver0_{memory_, {.size = 16, .ring_base = GuestAddress(0x10000)}};
  RecordingDelivery delivery_;
  std::shared_ptr<FakeVirtioDevice> device_;
  std::unique_ptr<VirtioTransportState> state_;
};

// --- Creation ---

TEST_F(VirtioTransportStateTest, CreateRefusesDeviceWithoutVersion1) {
  auto device = std::make_shared<FakeVirtioDevice>(FakeVirtioDeviceOptions{.features = 0});
  EXPECT_FALSE(VirtioTransportState::Create(device, memory_, &delivery_, 0).ok());
}

TEST_F(VirtioTransportStateTest, CreateRefusesQueueMaxThatIsNotAPowerOfTwo) {
  auto device =
      std::make_shared<FakeVirtioDevice>(FakeVirtioDeviceOptions{.queue_max_sizes = {100}});
  EXPECT_FALSE(VirtioTransportState::Create(device, memory_, &delivery_, 0).ok());
}

TEST_F(VirtioTransportStateTest, CreatesOneNotifyEventFdPerQueue) {
  EXPECT_EQ(state_->num_queues(), 2);
  EXPECT_EQ(state_->queue_notify_eventfds().size(), 2u);
  EXPECT_NE(state_->queue_notify_eventfds()[0].fd(), state_->queue_notify_eventfds()[1].fd());
}

// --- Feature negotiation ---

TEST_F(VirtioTransportStateTest, DeviceFeaturesReadThroughSelectWindows) {
  Write(R::kDeviceFeatureSelect, 0);
  EXPECT_EQ(Read(R::kDeviceFeature), static_cast<uint32_t>(kFeatures));
  Write(R::kDeviceFeatureSelect, 1);
  EXPECT_EQ(Read(R::kDeviceFeature), static_cast<uint32_t>(kFeatures >> 32));
  Write(R::kDeviceFeatureSelect, 2);
  EXPECT_EQ(Read(R::kDeviceFeature), 0u);
}

TEST_F(VirtioTransportStateTest, FeaturesOkLatchesForOfferedSubsetWithVersion1) {
  Negotiate(kVirtioFVersion1 | kVirtioFEventIdx);
  EXPECT_EQ(Read(R::kDeviceStatus), kAck | kDriver | kFeaturesOk);
  EXPECT_EQ(state_->counters().features_ok_refused, 0u);
}

TEST_F(VirtioTransportStateTest, FeaturesOkRefusedWhenDriverAcksUnofferedFeature) {
  Negotiate(kFeatures | (1ull << 5));
  EXPECT_EQ(Read(R::kDeviceStatus), kAck | kDriver);
  EXPECT_EQ(state_->counters().features_ok_refused, 1u);
}

TEST_F(VirtioTransportStateTest, FeaturesOkRefusedWithoutVersion1) {
  Negotiate(kVirtioFEventIdx);
  EXPECT_EQ(Read(R::kDeviceStatus) & kFeaturesOk, 0u);
}

TEST_F(VirtioTransportStateTest, FeaturesOkRefusedWhenDriverSetsBitsPastWindowOne) {
  Write(R::kDeviceStatus, kAck | kDriver);
  WriteDriverFeatures(kFeatures);
  Write(R::kDriverFeatureSelect, 2);
  Write(R::kDriverFeature, 1);
  Write(R::kDeviceStatus, kAck | kDriver | kFeaturesOk);
  EXPECT_EQ(Read(R::kDeviceStatus) & kFeaturesOk, 0u);
}

TEST_F(VirtioTransportStateTest, DriverFeatureWritesAfterFeaturesOkAreIgnored) {
  Negotiate(kVirtioFVersion1);
  Write(R::kDriverFeatureSelect, 0);
  Write(R::kDriverFeature, static_cast<uint32_t>(kVirtioFEventIdx));
  EXPECT_EQ(Read(R::kDriverFeature), 0u);
}

// --- Status machine ---

TEST_F(VirtioTransportStateTest, StatusBitsLatchOnlyInSpecOrder) {
  Write(R::kDeviceStatus, kDriver);  // no ACKNOWLEDGE yet
  EXPECT_EQ(Read(R::kDeviceStatus), 0u);
  Write(R::kDeviceStatus, kAck | kDriver | kDriverOk);  // DRIVER_OK before FEATURES_OK
  EXPECT_EQ(Read(R::kDeviceStatus), kAck | kDriver);
  EXPECT_EQ(device_->activations(), 0);
}

TEST_F(VirtioTransportStateTest, DriverCanNeitherClearBitsNorSetNeedsReset) {
  Negotiate();
  Write(R::kDeviceStatus, kAck | kNeedsReset);
  EXPECT_EQ(Read(R::kDeviceStatus), kAck | kDriver | kFeaturesOk);
}

TEST_F(VirtioTransportStateTest, FailedBitLatches) {
  Write(R::kDeviceStatus, kAck);
  Write(R::kDeviceStatus, kAck | kVirtioStatusFailed);
  EXPECT_EQ(Read(R::kDeviceStatus), kAck | kVirtioStatusFailed);
}

// --- Queue registers ---

TEST_F(VirtioTransportStateTest, QueueSizeStartsAtMaximum) {
  Write(R::kQueueSelect, 1);
  EXPECT_EQ(Read(R::kQueueSizeMax), 16u);
  EXPECT_EQ(Read(R::kQueueSize), 16u);
  EXPECT_EQ(Read(R::kQueueNotifyOff), 1u);
  EXPECT_EQ(Read(R::kQueueMsixVector), kVirtioMsiNoVector);
}

TEST_F(VirtioTransportStateTest, QueueSelectBeyondQueueCountReadsZeroAndIgnoresWrites) {
  Negotiate();
  Write(R::kQueueSelect, 7);
  EXPECT_EQ(Read(R::kQueueSizeMax), 0u);
  EXPECT_EQ(Read(R::kQueueSize), 0u);
  Write(R::kQueueSize, 8);
  Write(R::kQueueEnable, 1);
  EXPECT_EQ(Read(R::kQueueEnable), 0u);
  EXPECT_EQ(state_->counters().bad_accesses, 2u);
  EXPECT_EQ(Read(R::kDeviceStatus) & kNeedsReset, 0u);
}

TEST_F(VirtioTransportStateTest, QueueEnableBeforeFeaturesOkIsRefused) {
  Write(R::kDeviceStatus, kAck | kDriver);
  EnableQueue(0, driver0_.config());
  EXPECT_EQ(Read(R::kQueueEnable), 0u);
  EXPECT_EQ(state_->counters().queue_enable_refused, 1u);
}

TEST_F(VirtioTransportStateTest, QueueEnableWithSizeNotPowerOfTwoSetsNeedsReset) {
  Negotiate();
  VirtqueueConfig c = driver0_.config();
  c.size = 12;
  EnableQueue(0, c);
  EXPECT_EQ(Read(R::kQueueEnable), 0u);
  EXPECT_NE(Read(R::kDeviceStatus) & kNeedsReset, 0u);
}

TEST_F(VirtioTransportStateTest, QueueEnableWithSizeAboveMaximumSetsNeedsReset) {
  Negotiate();
  VirtqueueConfig c = driver0_.config();
  c.size = 32;
  EnableQueue(0, c);
  EXPECT_EQ(Read(R::kQueueEnable), 0u);
  EXPECT_NE(Read(R::kDeviceStatus) & kNeedsReset, 0u);
}

TEST_F(VirtioTransportStateTest, QueueEnableWithRingOutsideRamSetsNeedsReset) {
  Negotiate();
  VirtqueueConfig c = driver0_.config();
  c.used = GuestAddress(64ull << 20);
  EnableQueue(0, c);
  EXPECT_EQ(Read(R::kQueueEnable), 0u);
  EXPECT_NE(Read(R::kDeviceStatus) & kNeedsReset, 0u);
  EXPECT_THAT(state_->needs_reset_reason(), ::testing::HasSubstr("queue 0"));
}

TEST_F(VirtioTransportStateTest, EnabledQueueRegistersAreFrozen) {
  Negotiate();
  EnableQueue(0, driver0_.config());
  Write(R::kQueueSize, 4);
  Write(R::kQueueDescLow, 0x5000);
  EXPECT_EQ(Read(R::kQueueSize), 16u);
  EXPECT_EQ(Read(R::kQueueDescLow), driver0_.desc_addr().value());
}

TEST_F(VirtioTransportStateTest, QueueAddressesReadBackBothHalves) {
  Write(R::kQueueSelect, 1);
  Write(R::kQueueDescLow, 0x89abcdef);
  Write(R::kQueueDescHigh, 0x01234567);
  EXPECT_EQ(Read(R::kQueueDescLow), 0x89abcdefu);
  EXPECT_EQ(Read(R::kQueueDescHigh), 0x01234567u);
}

// --- Activation and reset ---

TEST_F(VirtioTransportStateTest, DriverOkActivatesDeviceWithNegotiatedFeaturesAndQueues) {
  Negotiate(kVirtioFVersion1 | kVirtioFEventIdx);
  EnableQueue(0, driver0_.config());
  DriverOk();
  ASSERT_EQ(device_->activations(), 1);
  auto a = *device_->last_activation();
  EXPECT_EQ(a.memory, &memory_);
  EXPECT_EQ(a.features, kVirtioFVersion1 | kVirtioFEventIdx);
  EXPECT_THAT(a.queue_enabled, ElementsAre(true, false));
  ASSERT_EQ(a.queue_configs.size(), 2u);
  EXPECT_EQ(a.queue_configs[0].desc, driver0_.desc_addr());
  EXPECT_EQ(a.queue_configs[0].avail, driver0_.avail_addr());
  EXPECT_EQ(a.queue_configs[0].used, driver0_.used_addr());
  EXPECT_TRUE(a.queue_configs[0].event_idx);
  EXPECT_FALSE(a.queue_configs[0].indirect);
  EXPECT_EQ(state_->counters().activations, 1u);
}

TEST_F(VirtioTransportStateTest, QueueEnableAfterDriverOkIsRefused) {
  Activate();
  EnableQueue(1, driver0_.config());
  EXPECT_EQ(Read(R::kQueueEnable), 0u);
  EXPECT_EQ(state_->counters().queue_enable_refused, 1u);
}

TEST_F(VirtioTransportStateTest, FailedActivationSetsNeedsResetAndRaisesConfigInterrupt) {
  Make({.activate_result = absl::InternalError("no backend")});
  Negotiate();
  EnableQueue(0, driver0_.config());
  DriverOk();
  EXPECT_EQ(Read(R::kDeviceStatus), kAck | kDriver | kFeaturesOk | kDriverOk | kNeedsReset);
  EXPECT_THAT(state_->needs_reset_reason(), ::testing::HasSubstr("no backend"));
  EXPECT_THAT(delivery_.isr_changes(), ElementsAre(Pair(kVirtioInterruptConfigChange, true)));
}

TEST_F(VirtioTransportStateTest, ActivationHookRunsAfterActivateAndAfterReset) {
  std::vector<bool> calls;
  state_->SetActivationHook([&](bool active) {
    calls.push_back(active);
    EXPECT_EQ(device_->active(), active);
  });
  Write(R::kDeviceStatus, 0);  // Linux resets first: nothing to unwire
  EXPECT_THAT(calls, IsEmpty());
  Activate();
  Write(R::kDeviceStatus, 0);
  EXPECT_THAT(calls, ElementsAre(true, false));
}

TEST_F(VirtioTransportStateTest, ResetClearsRegistersAndResetsDevice) {
  Activate();
  Write(R::kConfigMsixVector, 1);
  Write(R::kQueueSelect, 0);
  Write(R::kQueueMsixVector, 2);
  ASSERT_TRUE(device_->RaiseUsed(0));
  Write(R::kDeviceStatus, 0);
  EXPECT_EQ(device_->resets(), 1);
  EXPECT_FALSE(device_->active());
  EXPECT_EQ(Read(R::kDeviceStatus), 0u);
  EXPECT_EQ(Read(R::kDriverFeature), 0u);
  EXPECT_EQ(Read(R::kConfigMsixVector), kVirtioMsiNoVector);
  EXPECT_EQ(Read(R::kQueueSelect), 0u);
  EXPECT_EQ(Read(R::kQueueEnable), 0u);
  EXPECT_EQ(Read(R::kQueueMsixVector), kVirtioMsiNoVector);
  EXPECT_EQ(Read(R::kQueueDescLow), 0u);
  EXPECT_EQ(state_->interrupt_status(), 0u);
  EXPECT_THAT(delivery_.isr_changes().back(), Pair(uint8_t{0}, false));
}

TEST_F(VirtioTransportStateTest, DeviceCanBeReinitialisedAfterReset) {
  Activate();
  Write(R::kDeviceStatus, 0);
  Activate();
  EXPECT_EQ(device_->activations(), 2);
}

TEST_F(VirtioTransportStateTest, DestroyingTheStateResetsAnActiveDevice) {
  Activate();
  state_.reset();
  EXPECT_FALSE(device_->active());
}

// --- Notifications ---

TEST_F(VirtioTransportStateTest, NotifyReachesDeviceOnlyForLiveQueues) {
  state_->HandleQueueNotify(0);  // before DRIVER_OK
  Activate();
  state_->HandleQueueNotify(1);  // not enabled
  state_->HandleQueueNotify(9);  // no such queue
  state_->HandleQueueNotify(0);
  EXPECT_THAT(device_->processed(), ElementsAre(0));
  EXPECT_EQ(state_->counters().notifies_dropped, 3u);
}

TEST_F(VirtioTransportStateTest, NotifyRegisterWriteIsCountedAsUserSpaceExit) {
  Activate();
  state_->NotifyRegisterWritten(0);
  state_->NotifyRegisterWritten(0x10000);  // hostile queue index
  EXPECT_THAT(device_->processed(), ElementsAre(0));
  EXPECT_EQ(state_->counters().notify_exits, 2u);
}

TEST_F(VirtioTransportStateTest, DeferredNotifyRegisterWriteSignalsTheEventFdInstead) {
  state_->DeferNotifiesToEventFds();
  Activate();
  state_->NotifyRegisterWritten(0);
  state_->NotifyRegisterWritten(0x10000);  // hostile queue index: dropped
  // Nothing ran on the writing (vCPU) thread ...
  EXPECT_THAT(device_->processed(), ElementsAre());
  EXPECT_EQ(state_->counters().notify_exits, 2u);
  // ... the event loop's callback does it.
  state_->HandleQueueNotifyEvent(0);
  EXPECT_THAT(device_->processed(), ElementsAre(0));
  EXPECT_EQ(*state_->queue_notify_eventfds()[0].Read(), 0u);
}

TEST_F(VirtioTransportStateTest, NotifyEventDrainsEventFdWithoutCountingAnExit) {
  Activate();
  ASSERT_TRUE(state_->queue_notify_eventfds()[0].Write(3).ok());
  state_->HandleQueueNotifyEvent(0);
  EXPECT_THAT(device_->processed(), ElementsAre(0));
  EXPECT_EQ(*state_->queue_notify_eventfds()[0].Read(), 0u);
  EXPECT_EQ(state_->counters().notify_exits, 0u);
}

TEST_F(VirtioTransportStateTest, DisablingAQueueStopsItsNotifies) {
  Activate();
  Write(R::kQueueSelect, 0);
  Write(R::kQueueEnable, 0);
  state_->HandleQueueNotify(0);
  EXPECT_THAT(device_->processed(), IsEmpty());
}

// --- Interrupts ---

TEST_F(VirtioTransportStateTest, UsedBufferWithoutMsixSetsStatusBitAndRaises) {
  Activate();
  ASSERT_TRUE(device_->RaiseUsed(0));
  EXPECT_EQ(state_->interrupt_status(), kVirtioInterruptUsedBuffer);
  EXPECT_THAT(delivery_.isr_changes(), ElementsAre(Pair(kVirtioInterruptUsedBuffer, true)));
  EXPECT_EQ(state_->counters().used_interrupts, 1u);
}

TEST_F(VirtioTransportStateTest, UsedBufferWithMsixSendsTheQueueVector) {
  delivery_.set_msix(true);
  Write(R::kQueueSelect, 0);
  Write(R::kQueueMsixVector, 2);
  Activate();
  ASSERT_TRUE(device_->RaiseUsed(0));
  EXPECT_THAT(delivery_.vectors(), ElementsAre(2));
  EXPECT_EQ(state_->interrupt_status(), 0u);
}

TEST_F(VirtioTransportStateTest, NoVectorMeansNoInterrupt) {
  delivery_.set_msix(true);
  Activate();
  ASSERT_TRUE(device_->RaiseUsed(0));
  device_->ChangeConfig(0, 1);
  EXPECT_THAT(delivery_.vectors(), IsEmpty());
  EXPECT_THAT(delivery_.isr_changes(), IsEmpty());
  EXPECT_EQ(state_->counters().used_interrupts, 0u);
}

TEST_F(VirtioTransportStateTest, VectorBeyondTheTableReadsBackAsNoVector) {
  Write(R::kConfigMsixVector, 3);  // the table has 3 vectors: 0..2
  EXPECT_EQ(Read(R::kConfigMsixVector), kVirtioMsiNoVector);
  Write(R::kQueueMsixVector, 0x7fff);
  EXPECT_EQ(Read(R::kQueueMsixVector), kVirtioMsiNoVector);
  Write(R::kQueueMsixVector, 1);
  EXPECT_EQ(Read(R::kQueueMsixVector), 1u);
}

TEST_F(VirtioTransportStateTest, ConfigChangeBumpsGenerationAndRaisesConfigInterrupt) {
  Activate();
  const uint32_t before = Read(R::kConfigGeneration);
  device_->ChangeConfig(0, 0x42);
  EXPECT_EQ(Read(R::kConfigGeneration), before + 1);
  EXPECT_EQ(state_->interrupt_status(), kVirtioInterruptConfigChange);
  EXPECT_EQ(state_->counters().config_interrupts, 1u);
}

TEST_F(VirtioTransportStateTest, ConfigChangeWithMsixSendsTheConfigVector) {
  delivery_.set_msix(true);
  Write(R::kConfigMsixVector, 0);
  Activate();
  device_->ChangeConfig(0, 0x42);
  EXPECT_THAT(delivery_.vectors(), ElementsAre(0));
}

TEST_F(VirtioTransportStateTest, AckClearsOnlyTheAcknowledgedBits) {
  Activate();
  ASSERT_TRUE(device_->RaiseUsed(0));
  device_->ChangeConfig(0, 1);
  state_->AckInterrupt(kVirtioInterruptUsedBuffer);
  EXPECT_EQ(state_->interrupt_status(), kVirtioInterruptConfigChange);
  EXPECT_THAT(delivery_.isr_changes().back(), Pair(kVirtioInterruptConfigChange, false));
}

TEST_F(VirtioTransportStateTest, ReadAndClearReturnsStatusOnce) {
  Activate();
  ASSERT_TRUE(device_->RaiseUsed(0));
  EXPECT_EQ(state_->ReadAndClearInterruptStatus(), kVirtioInterruptUsedBuffer);
  EXPECT_EQ(state_->ReadAndClearInterruptStatus(), 0u);
  EXPECT_THAT(delivery_.isr_changes().back(), Pair(uint8_t{0}, false));
}

TEST_F(VirtioTransportStateTest, NeedsResetRaisesConfigInterruptAndStopsDelivery) {
  Activate();
  ASSERT_TRUE(device_->RaiseNeedsReset("bad chain"));
  EXPECT_EQ(Read(R::kDeviceStatus) & kNeedsReset, kNeedsReset);
  EXPECT_EQ(state_->counters().needs_reset, 1u);
  EXPECT_EQ(state_->needs_reset_reason(), "bad chain");
  EXPECT_EQ(state_->interrupt_status(), kVirtioInterruptConfigChange);
  ASSERT_TRUE(device_->RaiseUsed(0));
  state_->HandleQueueNotify(0);
  EXPECT_EQ(state_->interrupt_status(), kVirtioInterruptConfigChange);
  EXPECT_THAT(device_->processed(), IsEmpty());
  Write(R::kDeviceStatus, 0);
  EXPECT_EQ(Read(R::kDeviceStatus), 0u);
}

// --- The data path, end to end ---

TEST_F(VirtioTransportStateTest, KickedChainsComeBackUsedWithAnInterrupt) {
  Make({.complete_chains = true});
  Negotiate(kVirtioFVersion1);
  EnableQueue(0, driver0_.config());
  DriverOk();
  const uint16_t head = driver0_.AddChainBytes({{1, 2, 3}}, {16});
  state_->HandleQueueNotify(0);
  auto used = driver0_.PopUsed();
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(used->head, head);
  EXPECT_EQ(state_->interrupt_status(), kVirtioInterruptUsedBuffer);
}

TEST_F(VirtioTransportStateTest, MalformedRingPutsDeviceInNeedsReset) {
  Make({.complete_chains = true});
  Negotiate(kVirtioFVersion1);
  EnableQueue(0, driver0_.config());
  DriverOk();
  driver0_.SetAvailIdx(100);  // moved by more than the queue size
  state_->HandleQueueNotify(0);
  EXPECT_NE(Read(R::kDeviceStatus) & kNeedsReset, 0u);
  EXPECT_EQ(state_->counters().needs_reset, 1u);
}

// Notifies from the event-loop thread racing resets from a vCPU thread: the
// transport holds no lock of its own around ProcessQueue (the device's lock
// is the one on the data path), so a notify checked just before a reset may
// reach the device after it; the device ignores it (VirtioDevice's
// contract). Nothing deadlocks, every activation and reset gets through, and
// notifies between a reset and the next DRIVER_OK are dropped by the
// transport.
TEST_F(VirtioTransportStateTest, NotifiesRacingResetsAreDroppedOrIgnored) {
  Make({.complete_chains = true});
  std::atomic<bool> stop{false};
  std::thread loop([&] {
    while (!stop.load()) state_->HandleQueueNotify(0);
  });
  for (int i = 0; i < 200; ++i) {
    Negotiate(kVirtioFVersion1);
    EnableQueue(0, driver0_.config());
    DriverOk();
    Write(R::kDeviceStatus, 0);
  }
  stop = true;
  loop.join();
  EXPECT_EQ(device_->activations(), 200);
  EXPECT_EQ(device_->resets(), 200);
  // Only a notify that passed the transport's check just before a reset can
  // reach the device after it: at most one per reset for the one loop
  // thread (the transport drops every later one).
  EXPECT_LE(device_->processed_while_inactive(), 200);
  // Quiet now: a notify is dropped, the device not called.
  const size_t before = device_->processed().size();
  state_->HandleQueueNotify(0);
  EXPECT_EQ(device_->processed().size(), before);
}

}  // namespace
}  // namespace vmm
