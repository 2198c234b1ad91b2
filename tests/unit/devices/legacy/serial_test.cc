#include "devices/legacy/serial.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_irq_line.h"

namespace vmm {
namespace {

using ::testing::ElementsAre;

// Register offsets.
constexpr uint64_t kRbr = 0, kThr = 0, kDll = 0, kIer = 1, kDlm = 1, kIir = 2, kFcr = 2,
                   kLcr = 3, kMcr = 4, kLsr = 5, kMsr = 6, kScr = 7;

constexpr uint8_t kIerRx = 0x01, kIerThre = 0x02, kIerAll = 0x0f;
constexpr uint8_t kMcrOut2 = 0x08, kMcrLoop = 0x10;
constexpr uint8_t kLsrDr = 0x01, kLsrOe = 0x02, kLsrThreTemt = 0x60;

class SerialTest : public ::testing::Test {
 protected:
  SerialTest()
      : irq_(std::make_shared<FakeIrqLine>()),
        serial_(
            irq_,
            [this](absl::Span<const uint8_t> bytes) {
              output_.insert(output_.end(), bytes.begin(), bytes.end());
            },
            [this] { ++rx_space_calls_; }) {}

  uint8_t In(uint64_t reg) {
    uint8_t v = 0;
    serial_.Read(reg, absl::MakeSpan(&v, 1));
    return v;
  }
  void Out(uint64_t reg, uint8_t v) { serial_.Write(reg, absl::MakeConstSpan(&v, 1)); }
  size_t Enqueue(const std::vector<uint8_t>& bytes) { return serial_.EnqueueInput(bytes); }

  std::shared_ptr<FakeIrqLine> irq_;
  std::vector<uint8_t> output_;
  int rx_space_calls_ = 0;
  Serial serial_;
};

TEST_F(SerialTest, ResetStateHasNoInterruptAndAnEmptyTransmitter) {
  EXPECT_EQ(In(kIir), 0x01);
  EXPECT_EQ(In(kIer), 0x00);
  EXPECT_EQ(In(kLsr), kLsrThreTemt);
  EXPECT_EQ(In(kMsr), 0xb0);  // CTS, DSR, DCD: the host end is ready
  EXPECT_FALSE(irq_->asserted());
}

TEST_F(SerialTest, WriteToThrSendsTheByteToTheOutputAndThrStaysEmpty) {
  Out(kThr, 'h');
  Out(kThr, 'i');
  EXPECT_THAT(output_, ElementsAre('h', 'i'));
  EXPECT_EQ(In(kLsr) & kLsrThreTemt, kLsrThreTemt);
}

TEST_F(SerialTest, ScratchRegisterHoldsWhatWasWritten) {
  Out(kScr, 0xa5);
  EXPECT_EQ(In(kScr), 0xa5);
  Out(kScr, 0x5a);
  EXPECT_EQ(In(kScr), 0x5a);
}

TEST_F(SerialTest, IerKeepsOnlyTheFourInterruptEnableBits) {
  Out(kIer, 0xff);
  EXPECT_EQ(In(kIer), 0x0f);
  Out(kIer, 0x00);
  EXPECT_EQ(In(kIer), 0x00);
}

TEST_F(SerialTest, DlabSelectsTheDivisorLatchInsteadOfThrAndIer) {
  Out(kLcr, 0x83);
  Out(kDll, 0x01);
  Out(kDlm, 0x02);
  EXPECT_EQ(In(kDll), 0x01);
  EXPECT_EQ(In(kDlm), 0x02);
  EXPECT_EQ(In(kLcr), 0x83);
  EXPECT_TRUE(output_.empty());
  Out(kLcr, 0x03);
  EXPECT_EQ(In(kIer), 0x00);  // the DLM write did not reach IER
  Out(kLcr, 0x83);
  EXPECT_EQ(In(kDll), 0x01);  // the divisor survives DLAB toggling
}

TEST_F(SerialTest, FifoEnableIsReflectedInIirBits7And6) {
  Out(kFcr, 0x01);
  EXPECT_EQ(In(kIir), 0xc1);
  Out(kFcr, 0x00);
  EXPECT_EQ(In(kIir), 0x01);
}

TEST_F(SerialTest, EnablingEtbeiWithThrEmptyRaisesThreInterrupt) {
  Out(kMcr, kMcrOut2);
  Out(kIer, kIerThre);
  EXPECT_TRUE(irq_->asserted());
  EXPECT_EQ(In(kIir), 0x02);
}

TEST_F(SerialTest, ReadingIirThatReportsThreClearsIt) {
  Out(kMcr, kMcrOut2);
  Out(kFcr, 0x01);
  Out(kIer, kIerThre);
  EXPECT_EQ(In(kIir), 0xc2);
  EXPECT_EQ(In(kIir), 0xc1);
  EXPECT_FALSE(irq_->asserted());
}

// The sequence Linux's 8250 driver uses to decide whether the UART
// re-asserts THRE (UART_BUG_THRE) must see the interrupt both times.
TEST_F(SerialTest, ReenablingEtbeiRaisesThreAgain) {
  Out(kIer, kIerThre);
  EXPECT_EQ(In(kIir) & 0x0f, 0x02);
  Out(kIer, 0);
  Out(kIer, kIerThre);
  EXPECT_EQ(In(kIir) & 0x0f, 0x02);
}

TEST_F(SerialTest, WriteToThrAfterAcknowledgingThreRaisesANewEdge) {
  Out(kMcr, kMcrOut2);
  Out(kIer, kIerThre);
  In(kIir);
  irq_->ClearHistory();
  Out(kThr, 'x');
  EXPECT_TRUE(irq_->asserted());
  EXPECT_EQ(irq_->rising_edges(), 1u);
  EXPECT_EQ(In(kIir), 0x02);
}

TEST_F(SerialTest, InterruptReachesTheLineOnlyWhileOut2IsSet) {
  Out(kIer, kIerThre);
  EXPECT_EQ(In(kIer), kIerThre);
  Out(kIer, 0);
  Out(kIer, kIerThre);
  EXPECT_FALSE(irq_->asserted());
  Out(kMcr, kMcrOut2);
  EXPECT_TRUE(irq_->asserted());
  Out(kMcr, 0);
  EXPECT_FALSE(irq_->asserted());
}

TEST_F(SerialTest, HostInputSetsDataReadyAndRaisesRxInterrupt) {
  Out(kMcr, kMcrOut2);
  Out(kIer, kIerRx);
  EXPECT_EQ(Enqueue({'a'}), 1u);
  EXPECT_TRUE(irq_->asserted());
  EXPECT_EQ(In(kLsr) & kLsrDr, kLsrDr);
  EXPECT_EQ(In(kIir), 0x04);
  EXPECT_EQ(In(kRbr), 'a');
  EXPECT_EQ(In(kLsr) & kLsrDr, 0);
  EXPECT_EQ(In(kIir), 0x01);
  EXPECT_FALSE(irq_->asserted());
}

TEST_F(SerialTest, RxBelowTriggerLevelReportsCharacterTimeout) {
  Out(kFcr, 0xc1);  // trigger at 14 bytes
  Out(kIer, kIerRx);
  Enqueue({'a'});
  EXPECT_EQ(In(kIir), 0xcc);
  Enqueue(std::vector<uint8_t>(13, 'b'));
  EXPECT_EQ(In(kIir), 0xc4);
}

TEST_F(SerialTest, LineStaysAssertedWhileAnyEnabledInterruptIsPending) {
  Out(kMcr, kMcrOut2);
  Out(kIer, kIerRx | kIerThre);
  Enqueue({'a'});
  EXPECT_EQ(In(kIir), 0x04);  // RX outranks THRE, which stays pending
  EXPECT_EQ(In(kRbr), 'a');
  EXPECT_TRUE(irq_->asserted());
  EXPECT_EQ(In(kIir), 0x02);
  EXPECT_FALSE(irq_->asserted());
}

TEST_F(SerialTest, ClearingIerDropsTheLine) {
  Out(kMcr, kMcrOut2);
  Out(kIer, kIerAll);
  EXPECT_TRUE(irq_->asserted());
  Out(kIer, 0);
  EXPECT_FALSE(irq_->asserted());
  EXPECT_EQ(In(kIir), 0x01);
}

TEST_F(SerialTest, IirReportsSourcesInTheChipsPriorityOrder) {
  // Loopback without FIFOs: the second byte overruns the first.
  Out(kMcr, kMcrLoop | kMcrOut2);
  Out(kThr, 'x');
  Out(kThr, 'y');
  // Leaving loopback changes CTS and DSR: a modem status change.
  Out(kMcr, kMcrOut2);
  Out(kIer, kIerAll);  // and ETBEI makes THRE pending
  EXPECT_TRUE(irq_->asserted());

  EXPECT_EQ(In(kIir), 0x06);  // receiver line status
  EXPECT_EQ(In(kLsr), kLsrThreTemt | kLsrOe | kLsrDr);
  EXPECT_EQ(In(kIir), 0x04);  // received data
  EXPECT_EQ(In(kRbr), 'y');   // in 16450 mode the new byte overwrote the old
  EXPECT_EQ(In(kIir), 0x02);  // THR empty, cleared by this read
  EXPECT_EQ(In(kIir), 0x00);  // modem status
  EXPECT_EQ(In(kMsr), 0xb3);  // DCTS and DDSR set, cleared by this read
  EXPECT_EQ(In(kIir), 0x01);
  EXPECT_FALSE(irq_->asserted());
  EXPECT_EQ(In(kLsr), kLsrThreTemt);  // OE cleared by the earlier read
}

TEST_F(SerialTest, LoopbackRoutesThrToRbrAndNothingToTheOutput) {
  Out(kMcr, kMcrLoop);
  Out(kThr, 0x42);
  EXPECT_TRUE(output_.empty());
  EXPECT_EQ(In(kLsr) & kLsrDr, kLsrDr);
  EXPECT_EQ(In(kRbr), 0x42);
  Out(kMcr, 0);
  Out(kThr, 0x43);
  EXPECT_THAT(output_, ElementsAre(0x43));
}

// Linux's autoconfig writes MCR = LOOP | RTS | OUT2 and expects MSR 7:4 to be
// CTS | DCD.
TEST_F(SerialTest, LoopbackReflectsMcrOutputsInMsr) {
  Out(kMcr, kMcrLoop | 0x0a);
  EXPECT_EQ(In(kMsr) & 0xf0, 0x90);
  Out(kMcr, kMcrLoop | 0x05);  // DTR -> DSR, OUT1 -> RI
  EXPECT_EQ(In(kMsr) & 0xf0, 0x60);
  Out(kMcr, kMcrLoop);  // RI fell: trailing-edge RI
  EXPECT_EQ(In(kMsr), 0x06);
}

TEST_F(SerialTest, LoopbackKeepsTheInterruptOffTheLine) {
  Out(kMcr, kMcrLoop | kMcrOut2);
  Out(kIer, kIerThre);
  EXPECT_EQ(In(kIir), 0x02);  // pending inside the chip
  EXPECT_FALSE(irq_->asserted());
}

TEST_F(SerialTest, McrKeepsOnlyItsFiveBits) {
  Out(kMcr, 0xff);
  EXPECT_EQ(In(kMcr), 0x1f);
}

TEST_F(SerialTest, OverflowingTheFifoSetsOverrunAndKeepsTheFifo) {
  Out(kFcr, 0x01);
  Out(kMcr, kMcrLoop);
  for (size_t i = 0; i <= Serial::kRxFifoCapacity; ++i) Out(kThr, static_cast<uint8_t>(i));
  EXPECT_EQ(In(kLsr) & kLsrOe, kLsrOe);
  EXPECT_EQ(In(kLsr) & kLsrOe, 0);  // cleared by reading LSR
  for (size_t i = 0; i < Serial::kRxFifoCapacity; ++i) {
    ASSERT_EQ(In(kRbr), static_cast<uint8_t>(i));
  }
  EXPECT_EQ(In(kLsr) & kLsrDr, 0);  // the overflowing byte was lost
}

TEST_F(SerialTest, OverrunRaisesLineStatusInterrupt) {
  Out(kMcr, kMcrLoop);
  Out(kIer, 0x04);
  Out(kThr, 1);
  EXPECT_EQ(In(kIir), 0x01);
  Out(kThr, 2);
  EXPECT_EQ(In(kIir), 0x06);
}

TEST_F(SerialTest, HostInputIsBoundedByTheFifo) {
  Out(kFcr, 0x01);
  std::vector<uint8_t> many(Serial::kRxFifoCapacity + 36, 'z');
  EXPECT_EQ(Enqueue(many), Serial::kRxFifoCapacity);
  EXPECT_EQ(Enqueue(many), 0u);
  EXPECT_EQ(In(kLsr) & kLsrOe, 0);  // refusing input is not an overrun
}

TEST_F(SerialTest, HostInputWithoutFifosIsAcceptedOneByteAtATime) {
  EXPECT_EQ(Enqueue({'a', 'b'}), 1u);
  EXPECT_EQ(In(kRbr), 'a');
  EXPECT_EQ(Enqueue({'b'}), 1u);
  EXPECT_EQ(In(kRbr), 'b');
}

TEST_F(SerialTest, RxSpaceCallbackFiresOnceWhenARefusedHostCanResume) {
  Out(kFcr, 0x01);
  std::vector<uint8_t> many(Serial::kRxFifoCapacity + 1, 'z');
  EXPECT_EQ(Enqueue(many), Serial::kRxFifoCapacity);
  EXPECT_EQ(rx_space_calls_, 0);
  In(kRbr);
  EXPECT_EQ(rx_space_calls_, 1);
  In(kRbr);
  EXPECT_EQ(rx_space_calls_, 1);
}

TEST_F(SerialTest, RxSpaceCallbackStaysQuietIfTheHostWasNeverRefused) {
  Out(kFcr, 0x01);
  Enqueue(std::vector<uint8_t>(Serial::kRxFifoCapacity, 'z'));
  In(kRbr);
  EXPECT_EQ(rx_space_calls_, 0);
}

TEST_F(SerialTest, HostInputIsHeldBackDuringLoopback) {
  Out(kMcr, kMcrLoop);
  EXPECT_EQ(Enqueue({'a'}), 0u);
  EXPECT_EQ(In(kLsr) & kLsrDr, 0);
  Out(kMcr, 0);
  EXPECT_EQ(rx_space_calls_, 1);
  EXPECT_EQ(Enqueue({'a'}), 1u);
}

TEST_F(SerialTest, FcrClearRxEmptiesTheFifo) {
  Out(kFcr, 0x01);
  Enqueue({'a', 'b'});
  Out(kFcr, 0x03);
  EXPECT_EQ(In(kLsr) & kLsrDr, 0);
  EXPECT_EQ(In(kIir), 0xc1);
}

TEST_F(SerialTest, SwitchingFifoModeClearsTheFifo) {
  Out(kFcr, 0x01);
  Enqueue({'a', 'b'});
  Out(kFcr, 0x00);
  EXPECT_EQ(In(kLsr) & kLsrDr, 0);
}

TEST_F(SerialTest, ModemStatusChangeRaisesModemStatusInterrupt) {
  Out(kIer, 0x08);
  Out(kMcr, kMcrLoop | kMcrOut2);
  Out(kMcr, kMcrOut2);
  EXPECT_TRUE(irq_->asserted());
  EXPECT_EQ(In(kIir), 0x00);
  In(kMsr);
  EXPECT_FALSE(irq_->asserted());
}

TEST_F(SerialTest, WideWritesAreSplitIntoConsecutiveRegisters) {
  const uint8_t msr_and_scr[2] = {0x11, 0x22};
  serial_.Write(kMsr, msr_and_scr);
  EXPECT_EQ(In(kScr), 0x22);
  EXPECT_EQ(In(kMsr), 0xb0);  // MSR is read-only

  uint8_t regs[8];
  serial_.Read(0, regs);
  EXPECT_EQ(regs[kLsr], kLsrThreTemt);
  EXPECT_EQ(regs[kScr], 0x22);
}

TEST_F(SerialTest, AccessesPastTheRegisterFileReadAllOnesAndAreIgnored) {
  uint8_t tail[4];
  serial_.Read(kMsr, tail);
  EXPECT_THAT(tail, ElementsAre(0xb0, 0x00, 0xff, 0xff));

  uint64_t wide = 0;
  serial_.Read(8, absl::MakeSpan(reinterpret_cast<uint8_t*>(&wide), 8));
  EXPECT_EQ(wide, ~uint64_t{0});
  serial_.Read(~uint64_t{0}, absl::MakeSpan(reinterpret_cast<uint8_t*>(&wide), 8));
  EXPECT_EQ(wide, ~uint64_t{0});

  const uint8_t junk[3] = {1, 2, 3};
  serial_.Write(8, junk);
  serial_.Write(~uint64_t{0}, junk);
  serial_.Write(100, {});
  EXPECT_TRUE(output_.empty());
  EXPECT_EQ(In(kScr), 0);
}

TEST_F(SerialTest, OddWidthWriteReachesEachRegisterOnce) {
  const uint8_t three[3] = {'a', 0x00, 0x01};  // THR, IER, FCR
  serial_.Write(kThr, three);
  EXPECT_THAT(output_, ElementsAre('a'));
  EXPECT_EQ(In(kIir), 0xc1);
}

TEST_F(SerialTest, WorksWithoutIrqLineOrOutput) {
  Serial bare(nullptr, nullptr);
  uint8_t v = kIerAll;
  bare.Write(kIer, absl::MakeConstSpan(&v, 1));
  v = kMcrOut2;
  bare.Write(kMcr, absl::MakeConstSpan(&v, 1));
  v = 'x';
  bare.Write(kThr, absl::MakeConstSpan(&v, 1));
  EXPECT_EQ(bare.EnqueueInput(std::vector<uint8_t>{'a'}), 1u);
  bare.Read(kIir, absl::MakeSpan(&v, 1));
  EXPECT_EQ(v, 0x04);
}

// A host thread feeds input while a vCPU thread drains it: every byte
// arrives once, in order, and the host never busy-waits without a wake-up.
TEST(SerialThreadTest, ConcurrentHostInputAndGuestReadsLoseNothing) {
  constexpr int kBytes = 5000;
  absl::Mutex mu;
  bool room = true;
  Serial serial(std::make_shared<FakeIrqLine>(), nullptr, [&] {
    absl::MutexLock lock(&mu);
    room = true;
  });
  uint8_t fcr = 0x01;
  serial.Write(kFcr, absl::MakeConstSpan(&fcr, 1));

  std::thread host([&] {
    int sent = 0;
    while (sent < kBytes) {
      {
        absl::MutexLock lock(&mu);
        mu.Await(absl::Condition(&room));
        room = false;
      }
      std::vector<uint8_t> chunk;
      for (int i = sent; i < kBytes && chunk.size() < 100; ++i) chunk.push_back(i & 0xff);
      size_t accepted = serial.EnqueueInput(chunk);
      sent += accepted;
      // Refused bytes mean a wake-up will come through on_rx_space.
      if (accepted == chunk.size()) {
        absl::MutexLock lock(&mu);
        room = true;
      }
    }
  });
  std::vector<uint8_t> received;
  while (received.size() < kBytes) {
    uint8_t lsr = 0;
    serial.Read(kLsr, absl::MakeSpan(&lsr, 1));
    if (lsr & kLsrDr) {
      uint8_t b = 0;
      serial.Read(kRbr, absl::MakeSpan(&b, 1));
      received.push_back(b);
    }
  }
  host.join();
  for (int i = 0; i < kBytes; ++i) ASSERT_EQ(received[i], i & 0xff) << "at " << i;
}

}  // namespace
}  // namespace vmm
