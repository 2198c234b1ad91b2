#include "devices/virtio/virtio_pci_transport.h"

#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "base/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_irq_line.h"
#include "tests/fakes/fake_msi_sink.h"
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

// virtio_pci_common_cfg offsets (virtio 1.2 4.1.4.3).
constexpr uint64_t kDeviceFeatureSelect = 0x00, kDeviceFeature = 0x04,
                   kDriverFeatureSelect = 0x08, kDriverFeature = 0x0c, kConfigMsixVector = 0x10,
                   kNumQueues = 0x12, kDeviceStatus = 0x14, kConfigGeneration = 0x15,
                   kQueueSelect = 0x16, kQueueSize = 0x18, kQueueMsixVector = 0x1a,
                   kQueueEnable = 0x1c, kQueueNotifyOff = 0x1e, kQueueDesc = 0x20,
                   kQueueDriver = 0x28, kQueueDevice = 0x30;
constexpr uint64_t kIsr = 0x1000, kDeviceCfg = 0x2000, kNotify = 0x3000;

struct VirtioCap {
  uint8_t cfg_type, bar, cap_len;
  uint32_t offset, length;
  uint16_t at;  // config-space offset of the capability
};

class VirtioPciTransportTest : public ::testing::Test {
 protected:
  VirtioPciTransportTest() { Make(); }

  void Make(FakeVirtioDeviceOptions options = {}) {
    transport_.reset();
    device_ = std::make_shared<FakeVirtioDevice>(std::move(options));
    auto t = VirtioPciTransport::Create(device_, memory_, sink_);
    ASSERT_TRUE(t.ok()) << t.status();
    transport_ = *std::move(t);
    transport_->config().ConnectIntx(intx_);
  }

  uint64_t Bar(uint64_t offset, size_t width) {
    uint8_t b[8] = {};
    transport_->BarRead(0, offset, absl::MakeSpan(b, width));
    uint64_t v;
    std::memcpy(&v, b, 8);
    return v;
  }
  void SetBar(uint64_t offset, size_t width, uint64_t v) {
    uint8_t b[8];
    std::memcpy(b, &v, 8);
    transport_->BarWrite(0, offset, absl::MakeConstSpan(b, width));
  }
  uint32_t Cfg(uint64_t offset, size_t width) {
    uint8_t b[4] = {};
    transport_->config().Read(offset, absl::MakeSpan(b, width));
    uint32_t v;
    std::memcpy(&v, b, 4);
    return v;
  }
  void SetCfg(uint64_t offset, size_t width, uint32_t v) {
    uint8_t b[4];
    std::memcpy(b, &v, 4);
    transport_->config().Write(offset, absl::MakeConstSpan(b, width));
  }
  // The vendor capabilities, by walking the list from 0x34 as Linux does.
  std::vector<VirtioCap> VirtioCaps() {
    std::vector<VirtioCap> caps;
    for (uint32_t at = Cfg(0x34, 1), n = 0; at != 0 && n < 48; at = Cfg(at + 1, 1), ++n) {
      if (Cfg(at, 1) != kPciCapIdVendor) continue;
      caps.push_back({static_cast<uint8_t>(Cfg(at + 3, 1)), static_cast<uint8_t>(Cfg(at + 4, 1)),
                      static_cast<uint8_t>(Cfg(at + 2, 1)), Cfg(at + 8, 4), Cfg(at + 12, 4),
                      static_cast<uint16_t>(at)});
    }
    return caps;
  }
  VirtioCap Cap(uint8_t cfg_type) {
    for (const VirtioCap& c : VirtioCaps()) {
      if (c.cfg_type == cfg_type) return c;
    }
    ADD_FAILURE() << "no virtio capability of type " << int{cfg_type};
    return {};
  }
  // Linux's virtio_pci_modern sequence up to DRIVER_OK, queue 0 from
  // `driver` with MSI-X vector `vector` (config vector `config_vector`).
  void InitLikeLinux(uint16_t vector = kVirtioMsiNoVector,
                     uint16_t config_vector = kVirtioMsiNoVector) {
    SetBar(kDeviceStatus, 1, 0);
    SetBar(kDeviceStatus, 1, 1);
    SetBar(kDeviceStatus, 1, 3);
    SetBar(kDriverFeatureSelect, 4, 1);
    SetBar(kDriverFeature, 4, 1);  // VERSION_1
    SetBar(kDeviceStatus, 1, 3 | 8);
    ASSERT_EQ(Bar(kDeviceStatus, 1), 11u);
    SetBar(kConfigMsixVector, 2, config_vector);
    SetBar(kQueueSelect, 2, 0);
    SetBar(kQueueSize, 2, driver_.size());
    SetBar(kQueueMsixVector, 2, vector);
    ASSERT_EQ(Bar(kQueueMsixVector, 2), vector);
    SetBar(kQueueDesc, 4, driver_.desc_addr().value());  // two dwords, like Linux
    SetBar(kQueueDesc + 4, 4, 0);
    SetBar(kQueueDriver, 8, driver_.avail_addr().value());  // or one qword
    SetBar(kQueueDevice, 8, driver_.used_addr().value());
    SetBar(kQueueEnable, 2, 1);
    SetBar(kDeviceStatus, 1, 3 | 8 | 4);
    ASSERT_TRUE(device_->active());
  }
  void EnableMsix() {
    const uint16_t cap = transport_->msix().capability_offset();
    SetCfg(cap + 2, 2, Cfg(cap + 2, 2) | kMsixControlEnable);
    for (uint16_t v = 0; v < transport_->msix().vector_count(); ++v) {
      const uint64_t entry = VirtioPciTransport::kMsixTableOffset + 16ull * v;
      SetBar(entry, 4, 0xfee00000);
      SetBar(entry + 8, 4, 0x40 + v);
      SetBar(entry + 12, 4, 0);  // unmask
    }
  }

  GuestMemory memory_ = testing::TestGuestMemory(4 << 20);
  FakeVirtqueueDriver driver_{memory_, {.size = 16, .ring_base = GuestAddress(0x10000)}};
  std::shared_ptr<FakeMsiSink> sink_ = std::make_shared<FakeMsiSink>();
  std::shared_ptr<FakeIrqLine> intx_ = std::make_shared<FakeIrqLine>();
  std::shared_ptr<FakeVirtioDevice> device_;
  std::shared_ptr<VirtioPciTransport> transport_;
};

// --- Identity ---

TEST_F(VirtioPciTransportTest, IdentifiesAsModernVirtioFunction) {
  EXPECT_EQ(Cfg(0x00, 2), 0x1af4u);
  EXPECT_EQ(Cfg(0x02, 2), 0x1044u);  // 0x1040 + VIRTIO_ID_RNG
  EXPECT_EQ(Cfg(0x08, 1), 1u);       // revision 1: non-transitional
  EXPECT_EQ(Cfg(0x2c, 2), 0x1af4u);
  EXPECT_EQ(Cfg(0x2e, 2), 0x1044u);
  EXPECT_EQ(Cfg(0x3d, 1), 1u);  // INTA#
  EXPECT_EQ(Cfg(0x08, 4) >> 8, 0xff0000u);
}

TEST_F(VirtioPciTransportTest, ClassCodeFollowsTheDeviceType) {
  EXPECT_EQ(VirtioPciClassCode(1), 0x020000u);  // net: ethernet
  EXPECT_EQ(VirtioPciClassCode(2), 0x018000u);  // block: mass storage
  EXPECT_EQ(VirtioPciClassCode(3), 0x078000u);  // console: communication
  EXPECT_EQ(VirtioPciClassCode(4), 0xff0000u);  // rng: unclassified
  Make({.type = 2});
  EXPECT_EQ(Cfg(0x02, 2), 0x1042u);
  EXPECT_EQ(Cfg(0x08, 4) >> 8, 0x018000u);
}

TEST_F(VirtioPciTransportTest, Bar0IsA64BitMemoryBar) {
  auto bar = transport_->config().bar_info(0);
  ASSERT_TRUE(bar.has_value());
  EXPECT_EQ(bar->type, PciBarType::kMemory64);
  EXPECT_EQ(bar->size, VirtioPciTransport::kBarSize);
  EXPECT_FALSE(transport_->config().bar_info(2).has_value());
}

// --- Capabilities ---

TEST_F(VirtioPciTransportTest, CapabilityListHoldsTheFiveVirtioStructures) {
  std::map<uint8_t, VirtioCap> by_type;
  for (const VirtioCap& c : VirtioCaps()) by_type[c.cfg_type] = c;
  ASSERT_EQ(by_type.size(), 5u);
  EXPECT_EQ(by_type[kVirtioPciCapCommonCfg].offset, 0x0000u);
  EXPECT_GE(by_type[kVirtioPciCapCommonCfg].length, 0x38u);
  EXPECT_EQ(by_type[kVirtioPciCapIsrCfg].offset, 0x1000u);
  EXPECT_EQ(by_type[kVirtioPciCapDeviceCfg].offset, 0x2000u);
  EXPECT_EQ(by_type[kVirtioPciCapNotifyCfg].offset, 0x3000u);
  EXPECT_EQ(by_type[kVirtioPciCapNotifyCfg].length, 2u * 4);
  for (uint8_t type = 1; type <= 4; ++type) {
    EXPECT_EQ(by_type[type].bar, 0) << int{type};
    EXPECT_EQ(by_type[type].cap_len, type == kVirtioPciCapNotifyCfg ? 20 : 16);
    EXPECT_LE(uint64_t{by_type[type].offset} + by_type[type].length, VirtioPciTransport::kBarSize);
  }
  EXPECT_EQ(by_type[kVirtioPciCapPciCfg].cap_len, 20);
  // notify_off_multiplier follows the notify capability header.
  EXPECT_EQ(Cfg(by_type[kVirtioPciCapNotifyCfg].at + 16, 4), 4u);
}

TEST_F(VirtioPciTransportTest, MsixCapabilityHasAVectorPerQueuePlusConfig) {
  const uint16_t cap = transport_->msix().capability_offset();
  EXPECT_EQ(Cfg(cap, 1), kPciCapIdMsix);
  EXPECT_EQ(Cfg(cap + 2, 2) & kMsixControlTableSizeMask, 2u);  // N - 1 = 3 - 1
  EXPECT_EQ(Cfg(cap + 4, 4), VirtioPciTransport::kMsixTableOffset | 0u);  // BIR 0
  EXPECT_EQ(Cfg(cap + 8, 4), VirtioPciTransport::kMsixPbaOffset | 0u);
}

// --- Common configuration ---

TEST_F(VirtioPciTransportTest, CommonConfigDescribesTheQueues) {
  EXPECT_EQ(Bar(kNumQueues, 2), 2u);
  SetBar(kQueueSelect, 2, 1);
  EXPECT_EQ(Bar(kQueueSelect, 2), 1u);
  EXPECT_EQ(Bar(kQueueSize, 2), 16u);
  EXPECT_EQ(Bar(kQueueNotifyOff, 2), 1u);
  EXPECT_EQ(Bar(kQueueMsixVector, 2), kVirtioMsiNoVector);
  EXPECT_EQ(Bar(kConfigMsixVector, 2), kVirtioMsiNoVector);
  SetBar(kDeviceFeatureSelect, 4, 1);
  EXPECT_EQ(Bar(kDeviceFeature, 4), 1u);
  SetBar(kQueueSelect, 2, 5);  // beyond the queue count
  EXPECT_EQ(Bar(kQueueSize, 2), 0u);
}

TEST_F(VirtioPciTransportTest, LinuxInitSequenceActivatesTheDevice) {
  InitLikeLinux();
  auto a = *device_->last_activation();
  EXPECT_EQ(a.features, kVirtioFVersion1);
  EXPECT_THAT(a.queue_enabled, ElementsAre(true, false));
  EXPECT_EQ(a.queue_configs[0].desc, driver_.desc_addr());
  EXPECT_EQ(a.queue_configs[0].avail, driver_.avail_addr());
  EXPECT_EQ(a.queue_configs[0].used, driver_.used_addr());
  EXPECT_EQ(Bar(kQueueDriver, 8), driver_.avail_addr().value());
  EXPECT_EQ(Bar(kQueueEnable, 2), 1u);
}

TEST_F(VirtioPciTransportTest, FieldAccessesOfTheWrongWidthAreIgnored) {
  SetBar(kQueueSelect, 4, 1);     // a 16-bit field written as a dword
  SetBar(kDeviceStatus, 2, 1);    // an 8-bit field written as a word
  SetBar(kQueueSelect + 1, 1, 1);  // the middle of a field
  EXPECT_EQ(Bar(kQueueSelect, 2), 0u);
  EXPECT_EQ(Bar(kDeviceStatus, 1), 0u);
  EXPECT_EQ(Bar(kNumQueues, 4), 0u);
  EXPECT_EQ(transport_->counters().bad_accesses, 4u);
}

TEST_F(VirtioPciTransportTest, ConfigGenerationCountsDeviceConfigChanges) {
  InitLikeLinux();
  device_->ChangeConfig(0, 5);
  device_->ChangeConfig(0, 6);
  EXPECT_EQ(Bar(kConfigGeneration, 1), 2u);
  EXPECT_EQ(Bar(kDeviceCfg, 1), 6u);
}

TEST_F(VirtioPciTransportTest, DeviceConfigPassesThroughTheBar) {
  Make({.config = {1, 2, 3, 4}});
  EXPECT_EQ(Bar(kDeviceCfg, 4), 0x04030201u);
  SetBar(kDeviceCfg + 2, 2, 0xbbaa);
  EXPECT_EQ(Bar(kDeviceCfg, 4), 0xbbaa0201u);
}

TEST_F(VirtioPciTransportTest, AccessesOutsideTheBarAreIgnored) {
  SetBar(VirtioPciTransport::kBarSize - 2, 4, 0xffffffff);
  EXPECT_EQ(Bar(VirtioPciTransport::kBarSize, 4), 0u);
  uint8_t b[4] = {1, 1, 1, 1};
  transport_->BarRead(2, 0, b);
  EXPECT_THAT(b, ElementsAre(0, 0, 0, 0));
  EXPECT_EQ(transport_->counters().bad_accesses, 3u);
}

// --- Notifications ---

TEST_F(VirtioPciTransportTest, EachQueueHasItsOwnNotifyAddress) {
  EXPECT_EQ(transport_->notify_bar(), 0);
  EXPECT_EQ(transport_->notify_offset(0), kNotify);
  EXPECT_EQ(transport_->notify_offset(1), kNotify + 4);
  EXPECT_EQ(VirtioPciTransport::kNotifyWidth, 2u);
  EXPECT_EQ(transport_->queue_notify_eventfds().size(), 2u);
}

TEST_F(VirtioPciTransportTest, NotifyWriteAtTheQueueAddressProcessesThatQueue) {
  InitLikeLinux();
  SetBar(transport_->notify_offset(0), 2, 0);
  SetBar(transport_->notify_offset(1), 2, 1);  // queue 1 is not enabled
  EXPECT_THAT(device_->processed(), ElementsAre(0));
  EXPECT_EQ(transport_->counters().notify_exits, 2u);
}

TEST_F(VirtioPciTransportTest, NotifyWritesBetweenOrPastQueueSlotsAreIgnored) {
  InitLikeLinux();
  SetBar(kNotify + 2, 2, 0);
  SetBar(kNotify + 4 * 2, 2, 2);  // queue 2 does not exist
  EXPECT_THAT(device_->processed(), IsEmpty());
  EXPECT_EQ(transport_->counters().bad_accesses, 2u);
}

// --- MSI-X ---

TEST_F(VirtioPciTransportTest, UsedBufferRaisesTheQueueVector) {
  EnableMsix();
  InitLikeLinux(/*vector=*/1, /*config_vector=*/0);
  ASSERT_TRUE(device_->RaiseUsed(0));
  device_->ChangeConfig(0, 1);
  EXPECT_THAT(sink_->triggers(), ElementsAre(1, 0));
  EXPECT_FALSE(intx_->asserted());
}

TEST_F(VirtioPciTransportTest, NoVectorMeansNoInterrupt) {
  EnableMsix();
  InitLikeLinux(kVirtioMsiNoVector, kVirtioMsiNoVector);
  ASSERT_TRUE(device_->RaiseUsed(0));
  EXPECT_THAT(sink_->triggers(), IsEmpty());
  EXPECT_FALSE(intx_->asserted());
}

TEST_F(VirtioPciTransportTest, VectorOutsideTheTableReadsBackNoVector) {
  SetBar(kQueueMsixVector, 2, 3);
  EXPECT_EQ(Bar(kQueueMsixVector, 2), kVirtioMsiNoVector);
  SetBar(kConfigMsixVector, 2, 2);
  EXPECT_EQ(Bar(kConfigMsixVector, 2), 2u);
}

TEST_F(VirtioPciTransportTest, MaskedVectorIsDeliveredWhenUnmasked) {
  EnableMsix();
  InitLikeLinux(/*vector=*/1);
  SetBar(VirtioPciTransport::kMsixTableOffset + 16 + 12, 4, kMsixVectorMasked);
  ASSERT_TRUE(device_->RaiseUsed(0));
  EXPECT_THAT(sink_->triggers(), IsEmpty());
  SetBar(VirtioPciTransport::kMsixTableOffset + 16 + 12, 4, 0);
  EXPECT_THAT(sink_->triggers(), ElementsAre(1));
}

// --- INTx and the ISR ---

TEST_F(VirtioPciTransportTest, WithoutMsixUsedBufferAssertsIntxUntilIsrIsRead) {
  InitLikeLinux();
  ASSERT_TRUE(device_->RaiseUsed(0));
  EXPECT_TRUE(intx_->asserted());
  EXPECT_EQ(Bar(kIsr, 1), kVirtioInterruptUsedBuffer);
  EXPECT_FALSE(intx_->asserted());
  EXPECT_EQ(Bar(kIsr, 1), 0u);
  EXPECT_THAT(sink_->triggers(), IsEmpty());
}

TEST_F(VirtioPciTransportTest, WithoutMsixConfigChangeSetsIsrBitOne) {
  InitLikeLinux();
  device_->ChangeConfig(0, 1);
  EXPECT_TRUE(intx_->asserted());
  EXPECT_EQ(Bar(kIsr, 1), kVirtioInterruptConfigChange);
  EXPECT_FALSE(intx_->asserted());
}

TEST_F(VirtioPciTransportTest, ResetDeassertsIntx) {
  InitLikeLinux();
  ASSERT_TRUE(device_->RaiseUsed(0));
  const int resets = device_->resets();
  SetBar(kDeviceStatus, 1, 0);
  EXPECT_FALSE(intx_->asserted());
  EXPECT_EQ(device_->resets(), resets + 1);
}

// --- PCI configuration access capability ---

TEST_F(VirtioPciTransportTest, PciCfgWindowReadsAndWritesTheBar) {
  const uint16_t at = Cap(kVirtioPciCapPciCfg).at;
  ASSERT_EQ(at, transport_->pci_cfg_cap_offset());
  SetCfg(at + 4, 1, 0);              // bar
  SetCfg(at + 8, 4, kNumQueues);     // offset
  SetCfg(at + 12, 4, 2);             // length
  EXPECT_EQ(Cfg(at + 16, 4) & 0xffff, 2u);
  SetCfg(at + 8, 4, kDeviceStatus);
  SetCfg(at + 12, 4, 1);
  SetCfg(at + 16, 4, 1);  // ACKNOWLEDGE through the window
  EXPECT_EQ(Bar(kDeviceStatus, 1), 1u);
}

TEST_F(VirtioPciTransportTest, PciCfgWindowReadsTheIsrWithItsSideEffect) {
  InitLikeLinux();
  ASSERT_TRUE(device_->RaiseUsed(0));
  const uint16_t at = Cap(kVirtioPciCapPciCfg).at;
  SetCfg(at + 8, 4, kIsr);
  SetCfg(at + 12, 4, 1);
  EXPECT_EQ(Cfg(at + 16, 1), kVirtioInterruptUsedBuffer);
  EXPECT_FALSE(intx_->asserted());
}

TEST_F(VirtioPciTransportTest, PciCfgWindowWithInvalidSetupTouchesNothing) {
  const uint16_t at = Cap(kVirtioPciCapPciCfg).at;
  SetCfg(at + 8, 4, kDeviceStatus);
  SetCfg(at + 12, 4, 3);  // not 1, 2 or 4
  SetCfg(at + 16, 4, 1);
  EXPECT_EQ(Bar(kDeviceStatus, 1), 0u);
  SetCfg(at + 12, 4, 1);
  SetCfg(at + 4, 1, 2);  // a BAR that does not exist
  SetCfg(at + 16, 4, 1);
  EXPECT_EQ(Bar(kDeviceStatus, 1), 0u);
  SetCfg(at + 4, 1, 0);
  SetCfg(at + 8, 4, 0xfffffffc);  // past the BAR
  SetCfg(at + 12, 4, 4);
  SetCfg(at + 16, 4, 1);
  EXPECT_EQ(transport_->counters().bad_accesses, 3u);
}

// --- The data path ---

TEST_F(VirtioPciTransportTest, KickThroughTheEventFdCompletesChainsWithMsix) {
  Make({.complete_chains = true});
  EnableMsix();
  InitLikeLinux(/*vector=*/1);
  const uint16_t head = driver_.AddChainBytes({{1}}, {4});
  ASSERT_TRUE(transport_->queue_notify_eventfds()[0].Write(1).ok());
  transport_->HandleQueueNotifyEvent(0);
  auto used = driver_.PopUsed();
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(used->head, head);
  EXPECT_THAT(sink_->triggers(), ElementsAre(1));
  EXPECT_EQ(transport_->counters().notify_exits, 0u);
}

// --- Queues whose data path is in a back-end (vhost, vhost-user) ---

// A queue in a back-end: the back-end is kicked by the same eventfd KVM's
// ioeventfd signals, and calls the MSI-X vector's irqfd itself (no hop
// through the VMM); queues the device runs itself get neither.
TEST_F(VirtioPciTransportTest, ABackendQueueIsKickedByItsNotifyEventfdAndCallsTheVectorsIrqfd) {
  Make({.queue_max_sizes = {16, 16}, .backend_queues = {0}});
  absl::StatusOr<EventFd> irqfd = EventFd::Create();
  ASSERT_TRUE(irqfd.ok());
  sink_->SetDirectTriggerFd(1, irqfd->fd());
  EnableMsix();
  InitLikeLinux(/*vector=*/1);
  const auto record = device_->last_activation();
  ASSERT_TRUE(record.has_value());
  ASSERT_EQ(record->kick_fds.size(), 2u);
  ASSERT_EQ(record->call_fds.size(), 2u);
  EXPECT_EQ(record->kick_fds[0], transport_->queue_notify_eventfds()[0].fd());
  EXPECT_EQ(record->call_fds[0], irqfd->fd());
  EXPECT_EQ(record->call_fds[1], -1) << "queue 1 is the VMM's own";
  EXPECT_EQ(transport_->state().queue_call_eventfd(1), nullptr);
}

// Without MSI-X a back-end's signal has to set the ISR and the INTx line: it
// goes through the transport's call eventfd, which the VMM watches.
TEST_F(VirtioPciTransportTest, WithoutMsixABackendCallGoesThroughTheVmmToIntx) {
  Make({.queue_max_sizes = {16}, .backend_queues = {0}});
  InitLikeLinux();
  const EventFd* call = transport_->state().queue_call_eventfd(0);
  ASSERT_NE(call, nullptr);
  EXPECT_EQ(device_->last_activation()->call_fds[0], call->fd());
  ASSERT_TRUE(call->Write(1).ok());  // the back-end signals
  transport_->state().HandleQueueCallEvent(0);
  EXPECT_TRUE(intx_->asserted());
  EXPECT_EQ(Bar(kIsr, 1), kVirtioInterruptUsedBuffer);
  EXPECT_THAT(sink_->triggers(), IsEmpty());
}

// MSI-X on but the queue has no vector: no irqfd to hand over; the call
// eventfd stands in, and its signal raises nothing (as NotifyUsed would).
TEST_F(VirtioPciTransportTest, ABackendQueueWithoutAVectorGetsTheVmmsCallEventfd) {
  Make({.queue_max_sizes = {16}, .backend_queues = {0}});
  absl::StatusOr<EventFd> irqfd = EventFd::Create();
  ASSERT_TRUE(irqfd.ok());
  sink_->SetDirectTriggerFd(0, irqfd->fd());
  EnableMsix();
  InitLikeLinux(kVirtioMsiNoVector);
  const EventFd* call = transport_->state().queue_call_eventfd(0);
  ASSERT_NE(call, nullptr);
  EXPECT_EQ(device_->last_activation()->call_fds[0], call->fd());
  ASSERT_TRUE(call->Write(1).ok());
  transport_->state().HandleQueueCallEvent(0);
  EXPECT_THAT(sink_->triggers(), IsEmpty());
  EXPECT_FALSE(intx_->asserted());
}

// A notify that exits to the VMM (no ioeventfd yet) still reaches the
// back-end: it is written to the kick eventfd, never run in the VMM.
TEST_F(VirtioPciTransportTest, ANotifyWriteForABackendQueueKicksItsEventfd) {
  Make({.queue_max_sizes = {16}, .backend_queues = {0}});
  InitLikeLinux();
  SetBar(kNotify, 2, 0);
  absl::StatusOr<uint64_t> kicks = transport_->queue_notify_eventfds()[0].Read();
  ASSERT_TRUE(kicks.ok());
  EXPECT_EQ(*kicks, 1u);
  EXPECT_THAT(device_->processed(), IsEmpty());
}

// --- Snapshots (issue 15) ---

class VirtioPciSnapshotTest : public VirtioPciTransportTest {
 protected:
  // A fresh transport and device, as a restored VM builds them, over the
  // same guest memory (the snapshot's RAM).
  void MakeRestored(FakeVirtioDeviceOptions options) {
    restored_device_ = std::make_shared<FakeVirtioDevice>(std::move(options));
    auto t = VirtioPciTransport::Create(restored_device_, memory_, restored_sink_);
    ASSERT_TRUE(t.ok()) << t.status();
    restored_ = *std::move(t);
    restored_->config().ConnectIntx(restored_intx_);
  }
  absl::Status Restore(const std::string& config, const std::string& state) {
    RETURN_IF_ERROR(restored_->config().RestoreState(config));
    return restored_->RestoreState(state);
  }

  std::shared_ptr<FakeMsiSink> restored_sink_ = std::make_shared<FakeMsiSink>();
  std::shared_ptr<FakeIrqLine> restored_intx_ = std::make_shared<FakeIrqLine>();
  std::shared_ptr<FakeVirtioDevice> restored_device_;
  std::shared_ptr<VirtioPciTransport> restored_;
};

// A driver that set a device up and used it goes on with the restored one:
// same registers, same MSI-X vectors, the queue at its saved position (the
// next chain lands in the next used slot), the device's own state handed
// back, and one kick per queue so nothing published meanwhile waits.
TEST_F(VirtioPciSnapshotTest, ARestoredDeviceContinuesWhereTheSavedOneStood) {
  const FakeVirtioDeviceOptions options{.complete_chains = true, .snapshot_state = "device bytes"};
  Make(options);
  EnableMsix();
  InitLikeLinux(/*vector=*/1, /*config_vector=*/0);
  for (int i = 0; i < 3; ++i) driver_.AddChainBytes({{1}}, {4});
  transport_->state().HandleQueueNotify(0);
  ASSERT_EQ(driver_.PopAllUsed().size(), 3u);
  const uint16_t pending = driver_.AddChainBytes({{2}}, {4});  // made available, not kicked

  absl::StatusOr<std::string> state = transport_->SaveState();
  ASSERT_TRUE(state.ok()) << state.status();
  const std::string config = transport_->config().SaveState();

  MakeRestored(options);
  ASSERT_TRUE(Restore(config, *state).ok());
  EXPECT_TRUE(restored_device_->active());
  EXPECT_EQ(restored_device_->restored_state(), "device bytes");
  EXPECT_EQ(restored_->state().status(), 15u);
  EXPECT_EQ(restored_device_->last_activation()->queue_configs[0].desc, driver_.desc_addr());
  EXPECT_TRUE(restored_->msix().enabled());
  EXPECT_EQ(restored_->msix().message(1), transport_->msix().message(1));
  // The kick the restore queued: the chain published before the snapshot.
  restored_->HandleQueueNotifyEvent(0);
  auto used = driver_.PopUsed();
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(used->head, pending);
  EXPECT_EQ(driver_.used_idx(), 4u);
  EXPECT_THAT(restored_sink_->triggers(), ElementsAre(1));
}

// INTx is a level: a restored function whose driver had not yet read the
// ISR asserts its line again.
TEST_F(VirtioPciSnapshotTest, APendingIntxIsAssertedAgain) {
  const FakeVirtioDeviceOptions options{.snapshot_state = ""};
  Make(options);
  InitLikeLinux();
  ASSERT_TRUE(device_->RaiseUsed(0));
  ASSERT_TRUE(intx_->asserted());
  absl::StatusOr<std::string> state = transport_->SaveState();
  ASSERT_TRUE(state.ok());
  MakeRestored(options);
  ASSERT_TRUE(Restore(transport_->config().SaveState(), *state).ok());
  EXPECT_TRUE(restored_intx_->asserted());
  EXPECT_EQ(restored_->state().ReadAndClearInterruptStatus(), kVirtioInterruptUsedBuffer);
}

// A device that cannot save its state is refused by name while the guest
// uses it; before the driver sets it up there is nothing to save.
TEST_F(VirtioPciSnapshotTest, ADeviceWithoutSnapshotsIsRefusedOnlyWhileActive) {
  EXPECT_TRUE(transport_->SaveState().ok());
  InitLikeLinux();
  absl::StatusOr<std::string> state = transport_->SaveState();
  EXPECT_EQ(state.status().code(), absl::StatusCode::kUnimplemented);
}

// A damaged state (every truncation, a wrong queue count) is an error and
// leaves the new transport reset, never half-restored.
TEST_F(VirtioPciSnapshotTest, ADamagedStateIsRefusedAndLeavesTheDeviceReset) {
  const FakeVirtioDeviceOptions options{.complete_chains = true, .snapshot_state = "x"};
  Make(options);
  EnableMsix();
  InitLikeLinux(/*vector=*/1);
  absl::StatusOr<std::string> state = transport_->SaveState();
  ASSERT_TRUE(state.ok());
  const std::string config = transport_->config().SaveState();
  for (size_t n = 0; n < state->size(); ++n) {
    MakeRestored(options);
    EXPECT_FALSE(Restore(config, state->substr(0, n)).ok()) << n;
    EXPECT_EQ(restored_->state().status(), 0u) << n;
    EXPECT_FALSE(restored_device_->active()) << n;
  }
  MakeRestored({.queue_max_sizes = {16}, .snapshot_state = "x"});
  absl::Status other = Restore(config, *state);
  EXPECT_EQ(other.code(), absl::StatusCode::kDataLoss) << other;
  // Another device type's config space.
  MakeRestored({.type = 2, .snapshot_state = "x"});
  EXPECT_EQ(restored_->config().RestoreState(config).code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace vmm
