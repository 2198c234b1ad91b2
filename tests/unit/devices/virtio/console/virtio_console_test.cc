// virtio-console over a fake backend: bytes both ways, backpressure both
// ways (EAGAIN-style short writes hold transmit chains; no receive buffer
// means input is not watched), hostile chains, reset, and the size config.
#include "devices/virtio/console/virtio_console.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_chardev.h"
#include "tests/fakes/fake_virtio_context.h"
#include "tests/fakes/fake_virtqueue_driver.h"
#include "tests/fakes/test_guest_memory.h"

namespace vmm::testing {
namespace {

using ::testing::ElementsAre;

std::vector<uint8_t> Bytes(const std::string& s) { return {s.begin(), s.end()}; }
std::string Str(const std::vector<uint8_t>& v) { return {v.begin(), v.end()}; }

constexpr uint16_t kRx = VirtioConsole::kReceiveQueue;
constexpr uint16_t kTx = VirtioConsole::kTransmitQueue;

class VirtioConsoleTest : public ::testing::Test {
 protected:
  void Start(uint64_t features = kVirtioFVersion1) {
    dev_ = VirtioConsole::Create(std::make_unique<FakeChardev>(&backend_));
    rx_.emplace(memory_, FakeVirtqueueDriverOptions{.size = 16,
                                                    .ring_base = GuestAddress(0x10000),
                                                    .data_base = GuestAddress(0x100000)});
    tx_.emplace(memory_, FakeVirtqueueDriverOptions{.size = 16,
                                                    .ring_base = GuestAddress(0x20000),
                                                    .data_base = GuestAddress(0x200000)});
    VirtioActivation a;
    a.memory = &memory_;
    a.features = features;
    for (auto* d : {&*rx_, &*tx_}) {
      auto q = Virtqueue::Create(d->config(), memory_);
      ASSERT_TRUE(q.ok()) << q.status();
      a.queues.push_back(std::move(*q));
    }
    a.queue_enabled = {true, true};
    a.context = &context_;
    ASSERT_TRUE(dev_->Activate(std::move(a)).ok());
  }
  void Input(const std::string& s) {
    backend_.input.insert(backend_.input.end(), s.begin(), s.end());
  }

  GuestMemory memory_ = TestGuestMemory(4 << 20);
  FakeChardev::State backend_;
  FakeVirtioContext context_;
  std::optional<FakeVirtqueueDriver> rx_, tx_;
  std::shared_ptr<VirtioConsole> dev_;
};

TEST_F(VirtioConsoleTest, IsDeviceTypeThreeWithReceiveAndTransmitQueuesAndOnePort) {
  Start();
  EXPECT_EQ(dev_->device_type(), 3u);
  // Port 0's receive and transmit queues, then MULTIPORT's control queues.
  EXPECT_THAT(dev_->queue_max_sizes(),
              ElementsAre(VirtioConsole::kQueueSize, VirtioConsole::kQueueSize,
                          VirtioConsole::kControlQueueSize, VirtioConsole::kControlQueueSize));
  EXPECT_NE(dev_->device_features() & VirtioConsole::kFMultiport, 0u);
  EXPECT_EQ(dev_->device_features() & VirtioConsole::kFSize, 0u) << "not a terminal";
  uint8_t config[12];
  dev_->ReadConfig(0, absl::MakeSpan(config));
  EXPECT_THAT(config, ElementsAre(0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0));
}

TEST_F(VirtioConsoleTest, TerminalBackendOffersSizeWithColsAndRows) {
  backend_.size = std::make_pair(uint16_t{132}, uint16_t{43});
  Start();
  EXPECT_NE(dev_->device_features() & VirtioConsole::kFSize, 0u);
  uint8_t config[4];
  dev_->ReadConfig(0, absl::MakeSpan(config));
  EXPECT_THAT(config, ElementsAre(132, 0, 43, 0));
  uint8_t past[4] = {9, 9, 9, 9};
  dev_->ReadConfig(10, absl::MakeSpan(past));
  EXPECT_THAT(past, ElementsAre(0, 0, 0, 0));
}

TEST_F(VirtioConsoleTest, TerminalResizeUpdatesConfigAndNotifiesADriverThatNegotiatedSize) {
  backend_.size = std::make_pair(uint16_t{80}, uint16_t{24});
  Start(kVirtioFVersion1 | VirtioConsole::kFSize);
  backend_.callbacks.resized();  // same size: nothing to say
  EXPECT_EQ(context_.config_changes(), 0u);
  backend_.size = std::make_pair(uint16_t{100}, uint16_t{50});
  backend_.callbacks.resized();
  EXPECT_EQ(context_.config_changes(), 1u);
  uint8_t config[4];
  dev_->ReadConfig(0, absl::MakeSpan(config));
  EXPECT_THAT(config, ElementsAre(100, 0, 50, 0));
}

TEST_F(VirtioConsoleTest, ResizeIsNotSignalledToADriverWithoutSize) {
  backend_.size = std::make_pair(uint16_t{80}, uint16_t{24});
  Start(kVirtioFVersion1);
  backend_.size = std::make_pair(uint16_t{81}, uint16_t{25});
  backend_.callbacks.resized();
  EXPECT_EQ(context_.config_changes(), 0u);
}

TEST_F(VirtioConsoleTest, GuestOutputReachesTheBackendAndChainsComplete) {
  Start();
  tx_->AddChainBytes({Bytes("hello, "), Bytes("host\n")}, {});
  tx_->AddChainBytes({Bytes("second\n")}, {});
  dev_->ProcessQueue(kTx);
  EXPECT_EQ(backend_.output, "hello, host\nsecond\n");
  auto used = tx_->PopAllUsed();
  ASSERT_EQ(used.size(), 2u);
  EXPECT_EQ(used[0].len, 0u);
  EXPECT_EQ(context_.notify_count(kTx), 1u);
  EXPECT_EQ(dev_->stats().bytes_out, 19u);
}

TEST_F(VirtioConsoleTest, BlockedOutputHoldsTheChainUntilWritableWithoutBuffering) {
  Start();
  backend_.write_budget = 4;
  tx_->AddChainBytes({Bytes("0123456789")}, {});
  tx_->AddChainBytes({Bytes("abc")}, {});
  dev_->ProcessQueue(kTx);
  EXPECT_EQ(backend_.output, "0123");
  EXPECT_EQ(tx_->pending_used(), 0u) << "a chain whose bytes were not all written stays out";
  EXPECT_TRUE(backend_.watching_output);
  EXPECT_EQ(dev_->stats().tx_blocked, 1u);

  // More kicks change nothing while the host is blocked.
  dev_->ProcessQueue(kTx);
  EXPECT_EQ(backend_.output, "0123");

  backend_.write_budget = 3;
  backend_.callbacks.writable();
  EXPECT_EQ(backend_.output, "0123456");
  EXPECT_EQ(tx_->pending_used(), 0u);

  backend_.write_budget = SIZE_MAX;
  backend_.callbacks.writable();
  EXPECT_EQ(backend_.output, "0123456789abc");
  EXPECT_EQ(tx_->PopAllUsed().size(), 2u);
  EXPECT_FALSE(backend_.watching_output);
}

TEST_F(VirtioConsoleTest, HostInputFillsPostedReceiveBuffers) {
  Start();
  rx_->AddChainBytes({}, {64});
  dev_->ProcessQueue(kRx);
  EXPECT_TRUE(backend_.watching_input);
  EXPECT_EQ(rx_->pending_used(), 0u);
  Input("ls -l\n");
  backend_.callbacks.readable();
  auto used = rx_->PopUsed();
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(used->len, 6u);
  EXPECT_EQ(Str(used->written), "ls -l\n");
  EXPECT_EQ(context_.notify_count(kRx), 1u);
  EXPECT_FALSE(backend_.watching_input) << "no receive buffer left: stop reading";
}

TEST_F(VirtioConsoleTest, InputIsNotReadWhileTheGuestHasNoReceiveBuffers) {
  Start();
  Input("typed early");
  dev_->ProcessQueue(kRx);  // nothing posted
  backend_.callbacks.readable();  // a stale readiness
  EXPECT_FALSE(backend_.watching_input);
  EXPECT_EQ(backend_.reads, 0u);
  EXPECT_EQ(backend_.input.size(), 11u) << "input waits in the host, not in the device";

  rx_->AddChainBytes({}, {4});
  rx_->AddChainBytes({}, {4});
  dev_->ProcessQueue(kRx);
  auto used = rx_->PopAllUsed();
  ASSERT_EQ(used.size(), 2u);
  EXPECT_EQ(Str(used[0].written), "type");
  EXPECT_EQ(Str(used[1].written), "d ea");
  EXPECT_EQ(backend_.input.size(), 3u);
  EXPECT_FALSE(backend_.watching_input);
}

TEST_F(VirtioConsoleTest, WrongDirectionAndEmptyChainsAreReturnedEmptyAndCounted) {
  Start();
  // Device-readable buffer on the receive queue, writable on the transmit one.
  rx_->AddChainBytes({Bytes("x")}, {16});
  tx_->AddChainBytes({Bytes("must not appear")}, {16});
  tx_->AddChainBytes({}, {8});
  VirtioBuffer empty{tx_->Alloc(8), 0};
  tx_->AddChain({&empty, 1}, {});
  VirtioBuffer empty_rx{rx_->Alloc(8), 0};
  rx_->AddChain({}, {&empty_rx, 1});
  Input("abc");
  dev_->ProcessQueue(kRx);
  dev_->ProcessQueue(kTx);
  EXPECT_EQ(backend_.output, "");
  auto rx_used = rx_->PopAllUsed();
  auto tx_used = tx_->PopAllUsed();
  ASSERT_EQ(rx_used.size(), 2u);
  ASSERT_EQ(tx_used.size(), 3u);
  for (const auto& u : rx_used) EXPECT_EQ(u.len, 0u);
  for (const auto& u : tx_used) EXPECT_EQ(u.len, 0u);
  EXPECT_EQ(dev_->stats().malformed, 5u);
  EXPECT_EQ(backend_.input.size(), 3u);
  EXPECT_FALSE(context_.needs_reset());
}

TEST_F(VirtioConsoleTest, ChainOutsideMemoryAsksForResetAndReleasesWatches) {
  Start();
  rx_->AddChainBytes({}, {8});
  dev_->ProcessQueue(kRx);
  EXPECT_TRUE(backend_.watching_input);
  VirtioBuffer outside{GuestAddress(64ull << 20), 8};
  tx_->AddChain({&outside, 1}, {});
  dev_->ProcessQueue(kTx);
  EXPECT_TRUE(context_.needs_reset());
  Input("x");
  backend_.callbacks.readable();
  EXPECT_FALSE(backend_.watching_input);
  EXPECT_EQ(backend_.input.size(), 1u);
}

TEST_F(VirtioConsoleTest, ResetDropsHeldChainsAndTheNextCallbackUnwatches) {
  Start();
  backend_.write_budget = 0;
  tx_->AddChainBytes({Bytes("stuck")}, {});
  rx_->AddChainBytes({}, {8});
  dev_->ProcessQueue(kTx);
  dev_->ProcessQueue(kRx);
  EXPECT_TRUE(backend_.watching_output);
  EXPECT_TRUE(backend_.watching_input);
  dev_->Reset();
  backend_.write_budget = SIZE_MAX;
  backend_.callbacks.writable();
  Input("late");
  backend_.callbacks.readable();
  EXPECT_EQ(backend_.output, "");
  EXPECT_FALSE(backend_.watching_output);
  EXPECT_FALSE(backend_.watching_input);
  EXPECT_EQ(backend_.input.size(), 4u);
}

TEST_F(VirtioConsoleTest, LongOutputGoesOutInBoundedChunks) {
  Start();
  std::vector<uint8_t> big(3 * VirtioConsole::kMaxChunk + 5, 'z');
  tx_->AddChainBytes({big}, {});
  dev_->ProcessQueue(kTx);
  EXPECT_EQ(backend_.output.size(), big.size());
  EXPECT_EQ(tx_->PopAllUsed().size(), 1u);
}

TEST_F(VirtioConsoleTest, QueueKicksBeforeActivationAreIgnored) {
  dev_ = VirtioConsole::Create(std::make_unique<FakeChardev>(&backend_));
  dev_->ProcessQueue(kRx);
  dev_->ProcessQueue(kTx);
  dev_->ProcessQueue(7);
  backend_.callbacks.readable();
  EXPECT_FALSE(backend_.watching_input);
}

// --- Snapshots (issue 15) ---

// Chains the console holds (a receive buffer waiting for input, a transmit
// chain the host took only part of) are given back in the snapshot: the
// restored console pops them again, fills the receive buffer with the next
// input, and writes only the rest of the transmit chain.
TEST_F(VirtioConsoleTest, ARestoredConsoleRetakesItsHeldChainsWithoutRepeatingOutput) {
  Start();
  rx_->AddChainBytes({}, {16});
  dev_->ProcessQueue(kRx);
  backend_.write_budget = 4;
  tx_->AddChainBytes({Bytes("0123456789")}, {});
  dev_->ProcessQueue(kTx);
  ASSERT_EQ(backend_.output, "0123");
  absl::StatusOr<VirtioDeviceSnapshot> snapshot = dev_->Snapshot();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  ASSERT_EQ(snapshot->queues.size(), 2u);
  EXPECT_EQ(snapshot->queues[kRx].next_avail, 0) << "the held receive buffer is given back";
  EXPECT_EQ(snapshot->queues[kTx].next_avail, 0) << "the held transmit chain is given back";

  FakeChardev::State host;
  auto restored = VirtioConsole::Create(std::make_unique<FakeChardev>(&host));
  VirtioActivation a;
  a.memory = &memory_;
  a.features = kVirtioFVersion1;
  for (auto* d : {&*rx_, &*tx_}) {
    auto q = Virtqueue::Create(d->config(), memory_);
    ASSERT_TRUE(q.ok()) << q.status();
    q->Restore(snapshot->queues[a.queues.size()]);
    a.queues.push_back(std::move(*q));
  }
  a.queue_enabled = {true, true};
  a.context = &context_;
  ASSERT_TRUE(restored->Activate(std::move(a)).ok());
  ASSERT_TRUE(restored->RestoreSnapshot(snapshot->state).ok());
  restored->ProcessQueue(kTx);
  EXPECT_EQ(host.output, "456789") << "the part written before the snapshot came again";
  host.input = {'h', 'i'};
  restored->ProcessQueue(kRx);
  auto used = rx_->PopUsed();
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(Str(used->written), "hi");
  EXPECT_FALSE(restored->RestoreSnapshot("x").ok()) << "a damaged state";
}

// --- MULTIPORT ---

// A driver that negotiated MULTIPORT: one FakeVirtqueueDriver per queue
// (port 0's receiveq and transmitq, the control receiveq and transmitq,
// then port 1's when the device has it), and the control exchange.
class VirtioConsoleMultiportTest : public VirtioConsoleTest {
 protected:
  void StartMultiport(VirtioConsoleOptions options = {}) {
    dev_ = VirtioConsole::Create(std::make_unique<FakeChardev>(&backend_), options);
    VirtioActivation a;
    a.memory = &memory_;
    a.features = kVirtioFVersion1 | VirtioConsole::kFMultiport;
    for (uint64_t i = 0; i < dev_->queue_max_sizes().size(); ++i) {
      q_.push_back(std::make_unique<FakeVirtqueueDriver>(
          memory_, FakeVirtqueueDriverOptions{.size = 16,
                                              .ring_base = GuestAddress(0x10000 * (i + 1)),
                                              .data_base = GuestAddress(0x100000 + 0x40000 * i)}));
      auto vq = Virtqueue::Create(q_.back()->config(), memory_);
      ASSERT_TRUE(vq.ok()) << vq.status();
      a.queues.push_back(std::move(*vq));
      a.queue_enabled.push_back(true);
    }
    a.context = &context_;
    ASSERT_TRUE(dev_->Activate(std::move(a)).ok());
  }
  // struct virtio_console_control.
  static std::vector<uint8_t> Message(uint32_t id, uint16_t event, uint16_t value) {
    std::vector<uint8_t> m(8);
    std::memcpy(&m[0], &id, 4);
    std::memcpy(&m[4], &event, 2);
    std::memcpy(&m[6], &value, 2);
    return m;
  }
  void DriverSays(uint32_t id, uint16_t event, uint16_t value) {
    ControlOut().AddChainBytes({Message(id, event, value)}, {});
    dev_->ProcessQueue(VirtioConsole::kControlTransmitQueue);
  }
  std::vector<std::vector<uint8_t>> DeviceSaid() {
    std::vector<std::vector<uint8_t>> said;
    for (auto& used : ControlIn().PopAllUsed()) said.push_back(used.written);
    return said;
  }
  FakeVirtqueueDriver& Receive() { return *q_[kRx]; }
  FakeVirtqueueDriver& ControlIn() { return *q_[VirtioConsole::kControlReceiveQueue]; }
  FakeVirtqueueDriver& ControlOut() { return *q_[VirtioConsole::kControlTransmitQueue]; }

  std::vector<std::unique_ptr<FakeVirtqueueDriver>> q_;
};

// What a driver that negotiates MULTIPORT hears and says on the control
// queues, as Linux does: the device adds port 0 as a console, opens its host
// end, and holds host input back until the driver opens the port (Linux
// drops input that comes while it sets the port up).
TEST_F(VirtioConsoleMultiportTest, WithMultiportInputWaitsForTheDriverToOpenThePort) {
  StartMultiport();
  for (int i = 0; i < 4; ++i) ControlIn().AddChainBytes({}, {64});

  // Input is there from the start, and so is a receive buffer: held back.
  Input("typed early\n");
  Receive().AddChainBytes({}, {64});
  dev_->ProcessQueue(kRx);
  EXPECT_EQ(Receive().pending_used(), 0u) << "input before the port is open would be dropped";
  EXPECT_FALSE(backend_.watching_input);

  DriverSays(0, VirtioConsole::kDeviceReady, 1);
  EXPECT_THAT(DeviceSaid(), ElementsAre(Message(0, VirtioConsole::kDeviceAdd, 1)));
  DriverSays(0, VirtioConsole::kPortReady, 1);
  EXPECT_THAT(DeviceSaid(), ElementsAre(Message(0, VirtioConsole::kConsolePort, 1),
                                        Message(0, VirtioConsole::kPortOpen, 1)));
  EXPECT_EQ(Receive().pending_used(), 0u);
  DriverSays(0, VirtioConsole::kPortOpen, 1);
  auto used = Receive().PopUsed();
  ASSERT_TRUE(used.has_value()) << "the port is open: the early input goes in";
  EXPECT_EQ(Str(used->written), "typed early\n");

  // A short control message is counted and returned, nothing else.
  ControlOut().AddChainBytes({{1, 2, 3}}, {});
  dev_->ProcessQueue(VirtioConsole::kControlTransmitQueue);
  EXPECT_EQ(dev_->stats().malformed, 1u);
}

// The generic port (--host-root with a piped stdin): port 0 is not made the
// console (Linux makes it /dev/vportNp0, no tty), and input waits for the
// driver's PORT_OPEN, which Linux sends when a reader opens the port.
TEST_F(VirtioConsoleMultiportTest, AGenericPortIsNoConsoleAndItsInputWaitsForAReader) {
  StartMultiport({.generic_port = true});
  for (int i = 0; i < 8; ++i) ControlIn().AddChainBytes({}, {64});
  Input("last line\n");
  DriverSays(0, VirtioConsole::kDeviceReady, 1);
  DriverSays(0, VirtioConsole::kPortReady, 1);
  EXPECT_THAT(DeviceSaid(), ElementsAre(Message(0, VirtioConsole::kDeviceAdd, 1),
                                        Message(0, VirtioConsole::kPortOpen, 1)))
      << "no CONSOLE_PORT: a plain port";
  Receive().AddChainBytes({}, {64});
  dev_->ProcessQueue(kRx);
  EXPECT_EQ(Receive().pending_used(), 0u) << "no reader yet";
  DriverSays(0, VirtioConsole::kPortOpen, 1);  // the reader opened /dev/vport0p0
  auto used = Receive().PopUsed();
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(Str(used->written), "last line\n");
}

// The input port (--host-root with a piped stdin): input goes to port 1
// once its reader opened it, and the end of the host's input reaches that
// reader as port 1's host end closing; port 0 (the output) stays open.
TEST_F(VirtioConsoleMultiportTest, TheInputPortPassesTheEndOfInputOn) {
  backend_.input_ends = true;
  StartMultiport({.generic_port = true, .input_port = true});
  ASSERT_EQ(q_.size(), 6u);
  uint8_t ports[4];
  dev_->ReadConfig(4, absl::MakeSpan(ports));
  EXPECT_THAT(ports, ElementsAre(2, 0, 0, 0)) << "max_nr_ports";
  FakeVirtqueueDriver& input = *q_[VirtioConsole::kInputPortReceiveQueue];
  for (int i = 0; i < 8; ++i) ControlIn().AddChainBytes({}, {64});
  Input("last line\n");
  DriverSays(0, VirtioConsole::kDeviceReady, 1);
  DriverSays(0, VirtioConsole::kPortReady, 1);
  DriverSays(1, VirtioConsole::kPortReady, 1);
  EXPECT_THAT(DeviceSaid(), ElementsAre(Message(0, VirtioConsole::kDeviceAdd, 1),
                                        Message(1, VirtioConsole::kDeviceAdd, 1),
                                        Message(0, VirtioConsole::kPortOpen, 1),
                                        Message(1, VirtioConsole::kPortOpen, 1)));
  input.AddChainBytes({}, {64});
  input.AddChainBytes({}, {64});
  DriverSays(1, VirtioConsole::kPortOpen, 1);  // the command's stdin opened
  auto used = input.PopUsed();
  ASSERT_TRUE(used.has_value()) << "input goes to port 1";
  EXPECT_EQ(Str(used->written), "last line\n");
  EXPECT_THAT(DeviceSaid(), ElementsAre(Message(1, VirtioConsole::kPortOpen, 0)))
      << "the end of input, as port 1's host end closing";
  EXPECT_EQ(Receive().pending_used(), 0u) << "nothing for port 0";
}

}  // namespace
}  // namespace vmm::testing
