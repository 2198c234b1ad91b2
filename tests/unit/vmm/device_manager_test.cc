// The device manager's wiring, through a fake VM (tests/fakes/fake_vm_wiring.h):
// what it binds to KVM when a driver brings a device up, moves a BAR, programs
// MSI-X or resets the device. The driver side is played through the buses, as
// a guest's accesses arrive (ECAM for config space, BAR and slot registers).
#include "vmm/device_manager.h"

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "arch/x86_64/layout.h"
#include "base/event_loop.h"
#include "devices/bus.h"
#include "devices/virtio/block/block_config.h"
#include "devices/virtio/rng/rng_config.h"
#include "devices/virtio/virtio_mmio_transport.h"
#include "devices/virtio/virtio_pci_transport.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_virtio_device.h"
#include "tests/fakes/fake_virtqueue_driver.h"
#include "tests/fakes/fake_vm_wiring.h"
#include "tests/fakes/test_guest_memory.h"
#include "vmm/interrupts.h"

namespace vmm {
namespace {

namespace x86 = ::vmm::x86_64;
using ::testing::HasSubstr;
using ::vmm::testing::FakeVirtqueueDriver;
using ::vmm::testing::FakeVmWiring;
using Ioeventfd = FakeVmWiring::Ioeventfd;

// virtio_pci_common_cfg (virtio 1.x, 4.1.4.3).
constexpr uint64_t kDriverFeatureSelect = 0x08, kDriverFeature = 0x0c, kDeviceStatus = 0x14,
                   kQueueSelect = 0x16, kQueueSize = 0x18, kQueueMsixVector = 0x1a,
                   kQueueEnable = 0x1c, kQueueDesc = 0x20, kQueueDriver = 0x28,
                   kQueueDevice = 0x30;
// virtio-mmio version 2 registers (4.2.2).
constexpr uint64_t kMmioDriverFeatures = 0x20, kMmioDriverFeaturesSel = 0x24,
                   kMmioQueueSel = 0x30, kMmioQueueNum = 0x38, kMmioQueueReady = 0x44,
                   kMmioStatus = 0x70, kMmioQueueDesc = 0x80, kMmioQueueDriver = 0x90,
                   kMmioQueueDevice = 0xa0;
constexpr uint8_t kAck = 1, kDriver = 2, kDriverOk = 4, kFeaturesOk = 8;

class DeviceManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(router_.Init().ok());
    DeviceManagerDeps deps;
    deps.vm = &wiring_;
    deps.gsi_router = &router_;
    deps.pio_bus = &pio_;
    deps.mmio_bus = &mmio_;
    deps.memory = &memory_;
    deps.loop = loop_.get();
    auto manager = DeviceManager::Create(std::move(deps), memory_.end().value());
    ASSERT_TRUE(manager.ok()) << manager.status();
    manager_ = *std::move(manager);
  }

  uint64_t Read(uint64_t addr, size_t width) {
    uint8_t b[8] = {};
    EXPECT_TRUE(mmio_.Read(addr, absl::MakeSpan(b, width))) << std::hex << addr;
    uint64_t v;
    std::memcpy(&v, b, 8);
    return v;
  }
  void Write(uint64_t addr, size_t width, uint64_t v) {
    uint8_t b[8];
    std::memcpy(b, &v, 8);
    EXPECT_TRUE(mmio_.Write(addr, absl::MakeConstSpan(b, width))) << std::hex << addr;
  }
  // Config space of bus 0 `slot` through ECAM.
  uint64_t Ecam(int slot, uint64_t reg) {
    return x86::kEcamStart + (static_cast<uint64_t>(slot) << 15) + reg;
  }
  uint64_t Bar0(int slot) {
    const uint64_t low = Read(Ecam(slot, 0x10), 4);
    uint64_t base = low & ~uint64_t{0xf};
    if (((low >> 1) & 3) == 2) base |= Read(Ecam(slot, 0x14), 4) << 32;  // 64-bit BAR
    return base;
  }
  // Linux's virtio_pci_modern bring-up of queue 0 with MSI-X vector 0.
  void BringUpPci(uint64_t bar) {
    Write(bar + kDeviceStatus, 1, 0);
    Write(bar + kDeviceStatus, 1, kAck | kDriver);
    Write(bar + kDriverFeatureSelect, 4, 1);
    Write(bar + kDriverFeature, 4, 1);  // VERSION_1
    Write(bar + kDeviceStatus, 1, kAck | kDriver | kFeaturesOk);
    Write(bar + kQueueSelect, 2, 0);
    Write(bar + kQueueSize, 2, ring_.size());
    Write(bar + kQueueMsixVector, 2, 0);
    Write(bar + kQueueDesc, 8, ring_.desc_addr().value());
    Write(bar + kQueueDriver, 8, ring_.avail_addr().value());
    Write(bar + kQueueDevice, 8, ring_.used_addr().value());
    Write(bar + kQueueEnable, 2, 1);
    Write(bar + kDeviceStatus, 1, kAck | kDriver | kFeaturesOk | kDriverOk);
    ASSERT_EQ(Read(bar + kDeviceStatus, 1), uint64_t{kAck | kDriver | kFeaturesOk | kDriverOk});
  }
  // The same over virtio-mmio.
  void BringUpMmio(uint64_t base) {
    Write(base + kMmioStatus, 4, 0);
    Write(base + kMmioStatus, 4, kAck | kDriver);
    Write(base + kMmioDriverFeaturesSel, 4, 1);
    Write(base + kMmioDriverFeatures, 4, 1);
    Write(base + kMmioStatus, 4, kAck | kDriver | kFeaturesOk);
    Write(base + kMmioQueueSel, 4, 0);
    Write(base + kMmioQueueNum, 4, ring_.size());
    Write(base + kMmioQueueDesc, 4, ring_.desc_addr().value());
    Write(base + kMmioQueueDriver, 4, ring_.avail_addr().value());
    Write(base + kMmioQueueDevice, 4, ring_.used_addr().value());
    Write(base + kMmioQueueReady, 4, 1);
    Write(base + kMmioStatus, 4, kAck | kDriver | kFeaturesOk | kDriverOk);
    ASSERT_EQ(Read(base + kMmioStatus, 4), uint64_t{kAck | kDriver | kFeaturesOk | kDriverOk});
  }
  std::set<Ioeventfd> Notifies(uint64_t at) {
    std::set<Ioeventfd> found;
    for (const Ioeventfd& e : wiring_.ioeventfds()) {
      if (e.addr == at) found.insert(e);
    }
    return found;
  }

  // Declared in the order a Machine builds them: the buses hold the PCI bus
  // and transports (and so the devices), which use the memory and the loop
  // until they go, so those outlive the buses.
  FakeVmWiring wiring_;
  GsiRouter router_{&wiring_};
  GuestMemory memory_ = testing::TestGuestMemory(4 << 20);
  FakeVirtqueueDriver ring_{memory_, {.size = 16, .ring_base = GuestAddress(0x10000)}};
  std::unique_ptr<EventLoop> loop_ = *EventLoop::Create();
  Bus pio_, mmio_;
  std::unique_ptr<DeviceManager> manager_;
};

TEST_F(DeviceManagerTest, PciNotifyIoeventfdsFollowTheDriverAndTheBar) {
  ASSERT_TRUE(manager_->AddDevices({RngConfig{}}).ok());
  ASSERT_EQ(manager_->PciSlots().size(), 1u);
  const int slot = manager_->PciSlots()[0].slot;
  const uint64_t bar = Bar0(slot);
  ASSERT_NE(bar, 0u);
  EXPECT_TRUE(wiring_.ioeventfds().empty()) << "nothing bound before DRIVER_OK";

  BringUpPci(bar);
  const uint64_t notify = bar + VirtioPciTransport::kNotifyOffset;
  std::set<Ioeventfd> bound = wiring_.ioeventfds();
  ASSERT_EQ(bound.size(), 1u);  // rng: one queue
  const Ioeventfd q0 = *bound.begin();
  EXPECT_EQ(q0.addr, notify);
  EXPECT_EQ(q0.space, IoSpace::kMmio);
  EXPECT_EQ(q0.len, VirtioPciTransport::kNotifyWidth);
  EXPECT_EQ(q0.datamatch, std::nullopt);

  // The guest moves BAR 0 (as Linux's PCI core may when it reassigns): the
  // notify ioeventfd moves with it, nothing is left at the old address.
  const uint64_t moved = bar + 0x100000;
  Write(Ecam(slot, 0x10), 4, (moved & 0xffffffff) | (Read(Ecam(slot, 0x10), 4) & 0xf));
  ASSERT_EQ(Bar0(slot), moved);
  EXPECT_TRUE(Notifies(notify).empty());
  bound = wiring_.ioeventfds();
  ASSERT_EQ(bound.size(), 1u);
  EXPECT_EQ(bound.begin()->addr, moved + VirtioPciTransport::kNotifyOffset);
  EXPECT_EQ(bound.begin()->fd, q0.fd);

  // A device reset unbinds it.
  Write(moved + kDeviceStatus, 1, 0);
  EXPECT_TRUE(wiring_.ioeventfds().empty());
}

TEST_F(DeviceManagerTest, MsixVectorsAreIrqfdsWhoseRoutesTheDriverProgrammes) {
  ASSERT_TRUE(manager_->AddDevices({RngConfig{}}).ok());
  const int slot = manager_->PciSlots()[0].slot;
  const uint64_t bar = Bar0(slot);
  EXPECT_TRUE(wiring_.irqfds().empty()) << "vectors start masked: no irqfd bound";
  // The driver enables MSI-X (capability found from 0x34) and fills the table.
  uint64_t cap = Read(Ecam(slot, 0x34), 1);
  for (int n = 0; cap != 0 && Read(Ecam(slot, cap), 1) != 0x11 && n < 48; ++n) {
    cap = Read(Ecam(slot, cap + 1), 1);
  }
  ASSERT_NE(cap, 0u) << "no MSI-X capability";
  Write(Ecam(slot, cap + 2), 2, Read(Ecam(slot, cap + 2), 2) | 0x8000);
  auto entry = [&](uint16_t v) { return bar + VirtioPciTransport::kMsixTableOffset + 16ull * v; };
  for (uint16_t v = 0; v < 2; ++v) {
    Write(entry(v), 4, 0xfee0'0000 | (v << 12));  // LAPIC window, destination v
    Write(entry(v) + 4, 4, 0);
    Write(entry(v) + 8, 4, 0x40 + v);
    Write(entry(v) + 12, 4, 0);  // unmasked
  }
  // One irqfd per vector (rng: its queue and the configuration vector),
  // each on a GSI of its own above the IOAPIC's pins, routed as programmed.
  const std::vector<std::pair<int, uint32_t>> irqfds = wiring_.irqfd_order();
  ASSERT_EQ(irqfds.size(), 2u);
  EXPECT_NE(irqfds[0].second, irqfds[1].second);
  for (uint16_t v = 0; v < 2; ++v) {
    EXPECT_GE(irqfds[v].second, GsiRouter::kFirstMsiGsi);
    std::optional<kvm_irq_routing_msi> route = wiring_.MsiRoute(irqfds[v].second);
    ASSERT_TRUE(route.has_value()) << "vector " << v;
    EXPECT_EQ(route->address_lo, 0xfee0'0000u | (v << 12));
    EXPECT_EQ(route->data, 0x40u + v);
  }

  // Masking vector 0 detaches its irqfd (and drops the route): a back-end
  // writing the eventfd meanwhile is held in it, not delivered or lost.
  Write(entry(0) + 12, 4, 1);
  EXPECT_FALSE(wiring_.irqfds().contains(irqfds[0]));
  EXPECT_FALSE(wiring_.MsiRoute(irqfds[0].second).has_value());
  EXPECT_TRUE(wiring_.irqfds().contains(irqfds[1])) << "vector 1 is untouched";
  // Unmasking routes it again and re-binds the same eventfd, which KVM
  // fires at once if the back-end signalled while it was masked.
  Write(entry(0) + 12, 4, 0);
  EXPECT_TRUE(wiring_.irqfds().contains(irqfds[0]));
  EXPECT_TRUE(wiring_.MsiRoute(irqfds[0].second).has_value());
}

// A device with a queue in a back-end: the loop watches the call eventfd of
// that queue, not its notify eventfd (the back-end reads that one, and
// every kick it misses would be a stalled queue).
TEST_F(DeviceManagerTest, ABackendQueuesNotifyEventfdIsLeftToTheBackend) {
  auto device = std::make_shared<testing::FakeVirtioDevice>(
      testing::FakeVirtioDeviceOptions{.queue_max_sizes = {16}, .backend_queues = {0}});
  ASSERT_TRUE(manager_->AddVirtioDevice(device, VirtioTransport::kMmio).ok());
  BringUpMmio(x86::kVirtioMmioStart);
  const auto record = device->last_activation();
  ASSERT_TRUE(record.has_value());
  ASSERT_EQ(record->kick_fds.size(), 1u);
  ASSERT_EQ(record->call_fds.size(), 1u);
  // KVM's ioeventfd for queue 0 is the back-end's kick.
  const std::set<Ioeventfd> bound = wiring_.ioeventfds();
  ASSERT_EQ(bound.size(), 1u);
  EXPECT_EQ(bound.begin()->fd, record->kick_fds[0]);
  // The loop does not take the back-end's kicks: Add on the notify fd
  // succeeds (it is not in the loop), on the call fd it fails (it is).
  EXPECT_TRUE(loop_->Add(record->kick_fds[0], EPOLLIN, [](uint32_t) {}).ok());
  EXPECT_TRUE(loop_->Remove(record->kick_fds[0]).ok());
  EXPECT_FALSE(loop_->Add(record->call_fds[0], EPOLLIN, [](uint32_t) {}).ok());
}

TEST_F(DeviceManagerTest, MmioSlotHasItsIrqfdAndADatamatchedNotifyAfterDriverOk) {
  RngConfig rng;
  rng.transport = VirtioTransport::kMmio;
  ASSERT_TRUE(manager_->AddDevices({rng}).ok());
  EXPECT_TRUE(manager_->PciSlots().empty());
  ASSERT_EQ(manager_->MmioSlotIndices(), std::vector<uint32_t>{0});
  const std::set<std::pair<int, uint32_t>> irqfds = wiring_.irqfds();
  ASSERT_EQ(irqfds.size(), 1u);
  EXPECT_EQ(irqfds.begin()->second, x86::kVirtioMmioFirstGsi);
  EXPECT_THAT(manager_->MmioCmdlineFragments(), HasSubstr("virtio_mmio.device=4K@0xd0000000:16"));

  BringUpMmio(x86::kVirtioMmioStart);
  const std::set<Ioeventfd> bound = wiring_.ioeventfds();
  ASSERT_EQ(bound.size(), 1u);
  EXPECT_EQ(bound.begin()->addr, x86::kVirtioMmioStart + VirtioMmioTransport::kQueueNotifyOffset);
  EXPECT_EQ(bound.begin()->len, VirtioMmioTransport::kQueueNotifyWidth);
  EXPECT_EQ(bound.begin()->datamatch, std::optional<uint64_t>(0)) << "queue 0's index";
}

TEST_F(DeviceManagerTest, DevicesGoInRegistryOrderAndAddrSlotsAreKept) {
  // The rng asks for slot 3; the disk (created first: registry order) takes
  // the lowest free slot, 1, and the other rng would clash.
  RngConfig rng;
  rng.pci_slot = 3;
  ASSERT_TRUE(manager_->AddDevices({rng}).ok());
  ASSERT_EQ(manager_->PciSlots().size(), 1u);
  EXPECT_EQ(manager_->PciSlots()[0].slot, 3);
  absl::Status clash = manager_->AddDevices({rng});
  EXPECT_FALSE(clash.ok()) << "two devices in slot 3";
  EXPECT_THAT(std::string(clash.message()), HasSubstr("virtio-rng addr=3: PCI slot 3 is taken"));
  absl::Status twice = manager_->AddDevices({RngConfig{}, RngConfig{}});
  EXPECT_EQ(twice.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(twice.message()), HasSubstr("more than one virtio-rng"));
  // "off" creates nothing.
  RngConfig off;
  off.enabled = false;
  ASSERT_TRUE(manager_->AddDevices({off}).ok());
  EXPECT_EQ(manager_->PciSlots().size(), 1u);
}

TEST_F(DeviceManagerTest, AFactoryErrorNamesTheDevice) {
  DiskConfig disk;
  disk.path = "/nonexistent/vmm-test.img";
  absl::Status status = manager_->AddDevices({disk});
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("/nonexistent/vmm-test.img"));
  EXPECT_TRUE(manager_->PciSlots().empty()) << "nothing half-added";
}

// --- Snapshots (issue 15) ---

// A second VM's devices over the same guest memory: what --restore builds.
struct RestoredDevices {
  explicit RestoredDevices(const GuestMemory& memory) {
    EXPECT_TRUE(router.Init().ok());
    DeviceManagerDeps deps;
    deps.vm = &wiring;
    deps.gsi_router = &router;
    deps.pio_bus = &pio;
    deps.mmio_bus = &mmio;
    deps.memory = &memory;
    deps.loop = loop.get();
    manager = *DeviceManager::Create(std::move(deps), memory.end().value());
  }
  FakeVmWiring wiring;
  GsiRouter router{&wiring};
  std::unique_ptr<EventLoop> loop = *EventLoop::Create();
  Bus pio, mmio;
  std::unique_ptr<DeviceManager> manager;
};

// A restored PCI device sits where the guest had moved its BAR, and its
// notify ioeventfd is bound there: the guest's driver finds it as it left it.
TEST_F(DeviceManagerTest, ARestoredDeviceIsWiredWhereTheGuestLeftIt) {
  ASSERT_TRUE(manager_->AddDevices({RngConfig{}}).ok());
  const int slot = manager_->PciSlots()[0].slot;
  const uint64_t moved = Bar0(slot) + 0x100000;
  Write(Ecam(slot, 0x10), 4, (moved & 0xffffffff) | (Read(Ecam(slot, 0x10), 4) & 0xf));
  ASSERT_EQ(Bar0(slot), moved);
  BringUpPci(moved);
  StateFile file;
  ASSERT_TRUE(manager_->SaveState(&file).ok());
  EXPECT_TRUE(file.Has(absl::StrFormat("virtio/pci/0000:00:%02x.0", slot)));

  RestoredDevices restored(memory_);
  ASSERT_TRUE(restored.manager->AddDevices({RngConfig{}}).ok());
  EXPECT_TRUE(restored.wiring.ioeventfds().empty());
  const absl::Status status = restored.manager->RestoreState(file);
  ASSERT_TRUE(status.ok()) << status;
  const std::set<Ioeventfd> bound = restored.wiring.ioeventfds();
  ASSERT_EQ(bound.size(), 1u);
  EXPECT_EQ(bound.begin()->addr, moved + VirtioPciTransport::kNotifyOffset);
  const std::vector<DeviceInfo> devices = restored.manager->devices();
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_TRUE(devices[0].active);
}

// Restoring onto other devices is refused naming the difference.
TEST_F(DeviceManagerTest, ARestoreOntoOtherDevicesIsRefused) {
  ASSERT_TRUE(manager_->AddDevices({RngConfig{}}).ok());
  StateFile file;
  ASSERT_TRUE(manager_->SaveState(&file).ok());
  RngConfig mmio_rng;
  mmio_rng.transport = VirtioTransport::kMmio;
  RestoredDevices restored(memory_);
  ASSERT_TRUE(restored.manager->AddDevices({mmio_rng}).ok());
  const absl::Status status = restored.manager->RestoreState(file);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr("the snapshot has virtio-rng at pci 0000:00:01.0"));
}

// A device that cannot save its state (vhost, vhost-user) is refused by its
// kind and address while the guest uses it.
TEST_F(DeviceManagerTest, ASnapshotRefusesADeviceThatCannotSaveItsState) {
  ASSERT_TRUE(manager_
                  ->AddVirtioDevice(std::make_shared<testing::FakeVirtioDevice>(),
                                    VirtioTransport::kPci, std::nullopt, "backend-device")
                  .ok());
  StateFile before;
  EXPECT_TRUE(manager_->SaveState(&before).ok()) << "not set up by a driver: nothing to save";
  const int slot = manager_->PciSlots()[0].slot;
  BringUpPci(Bar0(slot));
  StateFile file;
  const absl::Status status = manager_->SaveState(&file);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr(absl::StrFormat("backend-device at pci 0000:00:%02x.0", slot)));
}

}  // namespace
}  // namespace vmm
