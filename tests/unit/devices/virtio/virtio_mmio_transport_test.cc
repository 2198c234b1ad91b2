#include "devices/virtio/virtio_mmio_transport.h"

#include <cstring>
#include <memory>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_virtio_device.h"
#include "tests/fakes/fake_virtqueue_driver.h"
#include "tests/fakes/test_guest_memory.h"

namespace vmm {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::FakeVirtioDevice;
using testing::FakeVirtioDeviceOptions;
using testing::FakeVirtqueueDriver;

// Register offsets (virtio 1.2 4.2.2).
constexpr uint64_t kMagic = 0x000, kVersion = 0x004, kDeviceId = 0x008, kVendorId = 0x00c,
                   kDeviceFeatures = 0x010, kDeviceFeaturesSel = 0x014, kDriverFeatures = 0x020,
                   kDriverFeaturesSel = 0x024, kQueueSel = 0x030, kQueueNumMax = 0x034,
                   kQueueNum = 0x038, kQueueReady = 0x044, kQueueNotify = 0x050,
                   kInterruptStatus = 0x060, kInterruptAck = 0x064, kStatus = 0x070,
                   kQueueDescLow = 0x080, kQueueDescHigh = 0x084, kQueueDriverLow = 0x090,
                   kQueueDriverHigh = 0x094, kQueueDeviceLow = 0x0a0, kQueueDeviceHigh = 0x0a4,
                   kShmLenLow = 0x0b0, kConfigGeneration = 0x0fc, kConfig = 0x100;

constexpr uint32_t kVersion1High = 1;  // VIRTIO_F_VERSION_1 in feature window 1

class VirtioMmioTransportTest : public ::testing::Test {
 protected:
  VirtioMmioTransportTest() { Make(); }

  void Make(FakeVirtioDeviceOptions options = {}) {
    transport_.reset();
    device_ = std::make_shared<FakeVirtioDevice>(std::move(options));
    auto t = VirtioMmioTransport::Create(device_, memory_);
    ASSERT_TRUE(t.ok()) << t.status();
    transport_ = *std::move(t);
  }

  uint32_t Read32(uint64_t offset) {
    uint8_t b[4];
    transport_->Read(offset, b);
    uint32_t v;
    std::memcpy(&v, b, 4);
    return v;
  }
  void Write32(uint64_t offset, uint32_t v) {
    uint8_t b[4];
    std::memcpy(b, &v, 4);
    transport_->Write(offset, b);
  }
  // What Linux's virtio_mmio does from probe to DRIVER_OK, with queue 0 set
  // up from `driver`.
  void InitLikeLinux(const FakeVirtqueueDriver& driver) {
    Write32(kStatus, 0);
    Write32(kStatus, 1);
    Write32(kStatus, 1 | 2);
    Write32(kDeviceFeaturesSel, 1);
    const uint32_t high = Read32(kDeviceFeatures);
    Write32(kDriverFeaturesSel, 1);
    Write32(kDriverFeatures, high & kVersion1High);
    Write32(kDriverFeaturesSel, 0);
    Write32(kDriverFeatures, 0);
    Write32(kStatus, 1 | 2 | 8);
    ASSERT_EQ(Read32(kStatus) & 8, 8u);
    Write32(kQueueSel, 0);
    ASSERT_EQ(Read32(kQueueReady), 0u);
    ASSERT_GE(Read32(kQueueNumMax), driver.size());
    Write32(kQueueNum, driver.size());
    Write32(kQueueDescLow, static_cast<uint32_t>(driver.desc_addr().value()));
    Write32(kQueueDescHigh, 0);
    Write32(kQueueDriverLow, static_cast<uint32_t>(driver.avail_addr().value()));
    Write32(kQueueDriverHigh, 0);
    Write32(kQueueDeviceLow, static_cast<uint32_t>(driver.used_addr().value()));
    Write32(kQueueDeviceHigh, 0);
    Write32(kQueueReady, 1);
    Write32(kStatus, 1 | 2 | 8 | 4);
  }
  uint64_t IrqCount() { return *transport_->irq_eventfd().Read(); }

  GuestMemory memory_ = testing::TestGuestMemory(4 << 20);
  FakeVirtqueueDriver driver_{memory_, {.size = 16, .ring_base = GuestAddress(0x10000)}};
  std::shared_ptr<FakeVirtioDevice> device_;
  std::shared_ptr<VirtioMmioTransport> transport_;
};

TEST_F(VirtioMmioTransportTest, IdentifiesAsVirtioMmioVersion2) {
  EXPECT_EQ(Read32(kMagic), 0x74726976u);  // "virt"
  EXPECT_EQ(Read32(kVersion), 2u);
  EXPECT_EQ(Read32(kDeviceId), 4u);
  EXPECT_EQ(Read32(kVendorId), 0x554d4551u);
}

TEST_F(VirtioMmioTransportTest, DeviceFeaturesThroughTheSelectWindow) {
  Write32(kDeviceFeaturesSel, 0);
  EXPECT_EQ(Read32(kDeviceFeatures), static_cast<uint32_t>(kVirtioFEventIdx | kVirtioFIndirectDesc));
  Write32(kDeviceFeaturesSel, 1);
  EXPECT_EQ(Read32(kDeviceFeatures), kVersion1High);
}

TEST_F(VirtioMmioTransportTest, LinuxInitSequenceActivatesTheDevice) {
  InitLikeLinux(driver_);
  ASSERT_EQ(device_->activations(), 1);
  auto a = *device_->last_activation();
  EXPECT_EQ(a.features, kVirtioFVersion1);
  EXPECT_THAT(a.queue_enabled, ElementsAre(true, false));
  EXPECT_EQ(a.queue_configs[0].used, driver_.used_addr());
  EXPECT_EQ(Read32(kStatus), 15u);
  EXPECT_EQ(Read32(kQueueReady), 1u);
}

TEST_F(VirtioMmioTransportTest, FeaturesOkIsNotLatchedForUnofferedFeatures) {
  Write32(kStatus, 1 | 2);
  Write32(kDriverFeaturesSel, 1);
  Write32(kDriverFeatures, kVersion1High | 0x80);
  Write32(kStatus, 1 | 2 | 8);
  EXPECT_EQ(Read32(kStatus), 3u);
}

TEST_F(VirtioMmioTransportTest, QueueNumMaxIsZeroForAQueueThatDoesNotExist) {
  Write32(kQueueSel, 1);
  EXPECT_EQ(Read32(kQueueNumMax), 16u);
  Write32(kQueueSel, 2);
  EXPECT_EQ(Read32(kQueueNumMax), 0u);
}

TEST_F(VirtioMmioTransportTest, WriteOnlyRegistersReadAsZero) {
  Write32(kQueueSel, 1);
  Write32(kQueueNum, 8);
  Write32(kQueueDescLow, 0x1000);
  EXPECT_EQ(Read32(kQueueSel), 0u);
  EXPECT_EQ(Read32(kQueueNum), 0u);
  EXPECT_EQ(Read32(kQueueDescLow), 0u);
  EXPECT_EQ(Read32(kQueueNotify), 0u);
  EXPECT_EQ(Read32(kInterruptAck), 0u);
}

TEST_F(VirtioMmioTransportTest, ReadOnlyRegistersIgnoreWrites) {
  Write32(kMagic, 0);
  Write32(kDeviceFeatures, 0xffffffff);
  Write32(kQueueNumMax, 2);
  Write32(kInterruptStatus, 3);
  EXPECT_EQ(Read32(kMagic), 0x74726976u);
  Write32(kQueueSel, 0);
  EXPECT_EQ(Read32(kQueueNumMax), 16u);
  EXPECT_EQ(Read32(kInterruptStatus), 0u);
  EXPECT_EQ(transport_->counters().bad_accesses, 4u);
}

TEST_F(VirtioMmioTransportTest, NoSharedMemoryRegions) {
  EXPECT_EQ(Read32(kShmLenLow), 0xffffffffu);
  EXPECT_EQ(Read32(kShmLenLow + 4), 0xffffffffu);
}

TEST_F(VirtioMmioTransportTest, RegisterAccessesThatAreNotAlignedWordsAreIgnored) {
  uint8_t byte[1] = {0xff};
  transport_->Read(kMagic, byte);
  EXPECT_EQ(byte[0], 0u);
  uint8_t word[4];
  transport_->Read(kMagic + 2, word);
  EXPECT_THAT(word, ElementsAre(0, 0, 0, 0));
  uint8_t qword[8] = {};
  transport_->Read(kMagic, qword);
  EXPECT_THAT(qword, ElementsAre(0, 0, 0, 0, 0, 0, 0, 0));
  const uint8_t status[1] = {1};
  transport_->Write(kStatus, status);
  EXPECT_EQ(Read32(kStatus), 0u);
  EXPECT_EQ(transport_->counters().bad_accesses, 4u);
}

TEST_F(VirtioMmioTransportTest, ConfigSpaceAt0x100PassesThroughAtAnyWidth) {
  Make({.config = {0x11, 0x22, 0x33, 0x44, 0x55}});
  uint8_t b[1];
  transport_->Read(kConfig + 4, b);
  EXPECT_EQ(b[0], 0x55);
  uint8_t w[2];
  transport_->Read(kConfig + 2, w);
  EXPECT_THAT(w, ElementsAre(0x33, 0x44));
  EXPECT_EQ(Read32(kConfig), 0x44332211u);
  const uint8_t data[2] = {0xaa, 0xbb};
  transport_->Write(kConfig + 1, data);
  EXPECT_EQ(Read32(kConfig), 0x44bbaa11u);
  EXPECT_EQ(Read32(kConfig + 0xfc), 0u);  // past the device's config
}

TEST_F(VirtioMmioTransportTest, ConfigAccessRunningPastTheRegisterFileIsIgnored) {
  uint8_t q[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  transport_->Read(0x1fc, q);
  EXPECT_THAT(q, ElementsAre(0, 0, 0, 0, 0, 0, 0, 0));
  EXPECT_EQ(transport_->counters().bad_accesses, 1u);
}

TEST_F(VirtioMmioTransportTest, QueueNotifyWriteProcessesTheQueueAndCountsAnExit) {
  InitLikeLinux(driver_);
  Write32(kQueueNotify, 0);
  Write32(kQueueNotify, 1);  // not enabled
  EXPECT_THAT(device_->processed(), ElementsAre(0));
  EXPECT_EQ(transport_->counters().notify_exits, 2u);
}

TEST_F(VirtioMmioTransportTest, QueueNotifyBeforeDriverOkDoesNothing) {
  Write32(kQueueNotify, 0);
  EXPECT_THAT(device_->processed(), IsEmpty());
}

TEST_F(VirtioMmioTransportTest, NotifyAddressIsQueueNotifyWithOneEventFdPerQueue) {
  EXPECT_EQ(VirtioMmioTransport::kQueueNotifyOffset, kQueueNotify);
  EXPECT_EQ(VirtioMmioTransport::kQueueNotifyWidth, 4u);
  EXPECT_EQ(transport_->queue_notify_eventfds().size(), 2u);
}

TEST_F(VirtioMmioTransportTest, UsedBufferSetsInterruptStatusAndPulsesTheIrqEventFd) {
  InitLikeLinux(driver_);
  ASSERT_TRUE(device_->RaiseUsed(0));
  EXPECT_EQ(Read32(kInterruptStatus), 1u);
  EXPECT_EQ(IrqCount(), 1u);
  Write32(kInterruptAck, 1);
  EXPECT_EQ(Read32(kInterruptStatus), 0u);
  EXPECT_EQ(IrqCount(), 0u);  // acknowledging raises nothing
}

TEST_F(VirtioMmioTransportTest, ConfigChangeSetsBitOneAndBumpsGeneration) {
  InitLikeLinux(driver_);
  const uint32_t generation = Read32(kConfigGeneration);
  device_->ChangeConfig(0, 7);
  EXPECT_EQ(Read32(kConfigGeneration), generation + 1);
  EXPECT_EQ(Read32(kInterruptStatus), 2u);
  EXPECT_EQ(IrqCount(), 1u);
  uint8_t b[1];
  transport_->Read(kConfig, b);
  EXPECT_EQ(b[0], 7);
}

TEST_F(VirtioMmioTransportTest, StatusZeroResetsTheDeviceAndUnwires) {
  std::vector<bool> hook;
  transport_->SetActivationHook([&](bool active) { hook.push_back(active); });
  InitLikeLinux(driver_);
  ASSERT_TRUE(device_->RaiseUsed(0));
  Write32(kStatus, 0);
  EXPECT_EQ(Read32(kStatus), 0u);
  EXPECT_EQ(Read32(kInterruptStatus), 0u);
  EXPECT_EQ(Read32(kQueueReady), 0u);
  EXPECT_FALSE(device_->active());
  EXPECT_THAT(hook, ElementsAre(true, false));
}

TEST_F(VirtioMmioTransportTest, KickThroughTheEventFdCompletesChainsWithoutExits) {
  Make({.complete_chains = true});
  InitLikeLinux(driver_);
  const uint16_t head = driver_.AddChainBytes({{9, 9}}, {8});
  ASSERT_TRUE(transport_->queue_notify_eventfds()[0].Write(1).ok());
  transport_->HandleQueueNotifyEvent(0);
  auto used = driver_.PopUsed();
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(used->head, head);
  EXPECT_EQ(Read32(kInterruptStatus), 1u);
  EXPECT_EQ(IrqCount(), 1u);
  EXPECT_EQ(transport_->counters().notify_exits, 0u);
}

}  // namespace
}  // namespace vmm
