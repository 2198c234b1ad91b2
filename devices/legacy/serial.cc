#include "devices/legacy/serial.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/strings/str_cat.h"
#include "base/state_file.h"
#include "base/status_macros.h"

namespace vmm {
namespace {

// Register offsets (DLAB selects the divisor latch at 0 and 1).
constexpr uint64_t kRbrThrDll = 0;
constexpr uint64_t kIerDlm = 1;
constexpr uint64_t kIirFcr = 2;
constexpr uint64_t kLcr = 3;
constexpr uint64_t kMcr = 4;
constexpr uint64_t kLsr = 5;
constexpr uint64_t kMsr = 6;
constexpr uint64_t kScr = 7;

constexpr uint8_t kIerRxData = 0x01;      // ERBFI
constexpr uint8_t kIerThrEmpty = 0x02;    // ETBEI
constexpr uint8_t kIerLineStatus = 0x04;  // ELSI
constexpr uint8_t kIerModemStatus = 0x08; // EDSSI
constexpr uint8_t kIerMask = 0x0f;        // bits 7:4 read as 0 on a 16550A

constexpr uint8_t kIirNone = 0x01;
constexpr uint8_t kIirModemStatus = 0x00;
constexpr uint8_t kIirThrEmpty = 0x02;
constexpr uint8_t kIirRxData = 0x04;
constexpr uint8_t kIirLineStatus = 0x06;
constexpr uint8_t kIirRxTimeout = 0x0c;
constexpr uint8_t kIirFifosEnabled = 0xc0;

constexpr uint8_t kFcrEnable = 0x01;
constexpr uint8_t kFcrClearRx = 0x02;
constexpr uint8_t kFcrClearTx = 0x04;

constexpr uint8_t kLcrDlab = 0x80;

constexpr uint8_t kMcrDtr = 0x01;
constexpr uint8_t kMcrRts = 0x02;
constexpr uint8_t kMcrOut1 = 0x04;
constexpr uint8_t kMcrOut2 = 0x08;
constexpr uint8_t kMcrLoop = 0x10;
constexpr uint8_t kMcrMask = 0x1f;

constexpr uint8_t kLsrDataReady = 0x01;
constexpr uint8_t kLsrOverrun = 0x02;
constexpr uint8_t kLsrThrEmpty = 0x20;
constexpr uint8_t kLsrTxEmpty = 0x40;

constexpr uint8_t kMsrDeltaCts = 0x01;
constexpr uint8_t kMsrDeltaDsr = 0x02;
constexpr uint8_t kMsrTrailingRi = 0x04;
constexpr uint8_t kMsrDeltaDcd = 0x08;
constexpr uint8_t kMsrCts = 0x10;
constexpr uint8_t kMsrDsr = 0x20;
constexpr uint8_t kMsrRi = 0x40;
constexpr uint8_t kMsrDcd = 0x80;

// RX FIFO trigger levels selected by FCR bits 7:6.
constexpr size_t kRxTriggers[4] = {1, 4, 8, 14};

bool InRegisterFile(uint64_t offset, size_t i) {
  return offset < Serial::kRegisterCount && i < Serial::kRegisterCount - offset;
}

}  // namespace

Serial::Serial(std::shared_ptr<IrqLine> irq, Chardev* host) : irq_(std::move(irq)), host_(host) {
  if (host_ == nullptr) return;
  host_->Start(Chardev::Callbacks{
      .readable = [this] { OnHostReadable(); },
      .writable = [this] { OnHostWritable(); },
  });
  WatchInputFirstTime();
}

// Without mu_: the machine is built under the VMM's machine lock, and a
// guest's output reaches the VMM (a library sink stopping the VM) under mu_,
// so taking mu_ here would order the two both ways. Nothing can race: no
// callback runs before this first watch exists, and the loop's own lock
// orders this write before any callback that reads it.
void Serial::WatchInputFirstTime() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  input_watched_ = true;
  host_->WatchInput(true);
}

Serial::~Serial() {
  if (host_ != nullptr) host_->Stop();
}

void Serial::Read(uint64_t offset, absl::Span<uint8_t> data) {
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = InRegisterFile(offset, i) ? ReadRegister(offset + i) : 0xff;
  }
  UpdateInputWatch();
}

void Serial::Write(uint64_t offset, absl::Span<const uint8_t> data) {
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < data.size(); ++i) {
    if (InRegisterFile(offset, i)) WriteRegister(offset + i, data[i]);
  }
  UpdateInputWatch();
}

uint64_t Serial::tx_dropped() const {
  absl::MutexLock lock(&mu_);
  return tx_dropped_;
}

void Serial::OnHostReadable() {
  absl::MutexLock lock(&mu_);
  // In loopback the receiver is disconnected from the line: input waits.
  if (!(mcr_ & kMcrLoop) && rx_count_ < RxCapacity()) {
    uint8_t buf[kRxFifoCapacity];
    const size_t n = host_->Read(absl::MakeSpan(buf, RxCapacity() - rx_count_));
    for (size_t i = 0; i < n; ++i) Receive(buf[i]);
    UpdateIrq();
  }
  UpdateInputWatch();
}

void Serial::OnHostWritable() {
  absl::MutexLock lock(&mu_);
  FlushTx();
  UpdateIrq();
}

uint8_t Serial::ReadRegister(uint64_t reg) {
  switch (reg) {
    case kRbrThrDll: {
      if (lcr_ & kLcrDlab) return dll_;
      uint8_t byte = PopRx();
      UpdateIrq();
      return byte;
    }
    case kIerDlm:
      return (lcr_ & kLcrDlab) ? dlm_ : ier_;
    case kIirFcr: {
      uint8_t iir = PendingInterrupt();
      // Reading IIR acknowledges a THR-empty interrupt it reports.
      if (iir == kIirThrEmpty) {
        thre_pending_ = false;
        UpdateIrq();
      }
      return iir | (fifo_enabled_ ? kIirFifosEnabled : 0);
    }
    case kLcr:
      return lcr_;
    case kMcr:
      return mcr_;
    case kLsr: {
      uint8_t lsr = Lsr();
      overrun_ = false;  // error bits clear on read
      UpdateIrq();
      return lsr;
    }
    case kMsr: {
      uint8_t msr = ModemInputs() | msr_deltas_;
      msr_deltas_ = 0;
      UpdateIrq();
      return msr;
    }
    case kScr:
      return scr_;
  }
  return 0xff;
}

void Serial::WriteRegister(uint64_t reg, uint8_t value) {
  switch (reg) {
    case kRbrThrDll:
      if (lcr_ & kLcrDlab) {
        dll_ = value;
      } else {
        Transmit(value);
      }
      break;
    case kIerDlm:
      if (lcr_ & kLcrDlab) {
        dlm_ = value;
      } else {
        WriteIer(value);
      }
      break;
    case kIirFcr:
      WriteFcr(value);
      break;
    case kLcr:
      lcr_ = value;
      break;
    case kMcr:
      WriteMcr(value);
      break;
    case kScr:
      scr_ = value;
      break;
    default:  // LSR and MSR are read-only
      break;
  }
}

void Serial::Transmit(uint8_t byte) {
  thre_pending_ = false;  // writing THR acknowledges THR-empty, as reading IIR does
  if (mcr_ & kMcrLoop) {
    Receive(byte);  // the transmitter's output is wired to the receiver
    thre_pending_ = true;
  } else if (host_ == nullptr) {
    thre_pending_ = true;  // nowhere to go: gone at once
  } else if (tx_count_ >= TxCapacity()) {
    ++tx_dropped_;  // the guest did not wait for THRE
  } else {
    tx_[tx_count_++] = byte;
    FlushTx();
  }
  UpdateIrq();
}

size_t Serial::TxCapacity() const { return fifo_enabled_ ? kTxFifoCapacity : 1; }

void Serial::FlushTx() {
  if (tx_count_ > 0) {
    const size_t n = std::min(host_->Write(absl::MakeConstSpan(tx_.data(), tx_count_)), tx_count_);
    std::memmove(tx_.data(), tx_.data() + n, tx_count_ - n);
    tx_count_ -= n;
    if (tx_count_ == 0) thre_pending_ = true;
  }
  const bool want = tx_count_ > 0;
  if (want != output_watched_) {
    host_->WatchOutput(want);
    output_watched_ = want;
  }
}

void Serial::UpdateInputWatch() {
  const bool want = host_ != nullptr && !(mcr_ & kMcrLoop) && rx_count_ < RxCapacity();
  if (want == input_watched_) return;
  host_->WatchInput(want);
  input_watched_ = want;
}

void Serial::Receive(uint8_t byte) {
  if (rx_count_ == RxCapacity()) {
    overrun_ = true;
    // In 16450 mode the new character overwrites RBR; with FIFOs it is lost.
    if (!fifo_enabled_) rx_[rx_head_] = byte;
    return;
  }
  rx_[(rx_head_ + rx_count_) % kRxFifoCapacity] = byte;
  ++rx_count_;
}

uint8_t Serial::PopRx() {
  if (rx_count_ == 0) return 0;
  uint8_t byte = rx_[rx_head_];
  rx_head_ = (rx_head_ + 1) % kRxFifoCapacity;
  --rx_count_;
  return byte;
}

void Serial::ClearRxFifo() {
  rx_head_ = 0;
  rx_count_ = 0;
}

size_t Serial::RxCapacity() const { return fifo_enabled_ ? kRxFifoCapacity : 1; }

void Serial::WriteFcr(uint8_t value) {
  bool enable = value & kFcrEnable;
  // Switching FIFO mode clears the FIFOs; other bits only take with bit 0 set.
  bool clear_tx = false;
  if (enable != fifo_enabled_) {
    fifo_enabled_ = enable;
    ClearRxFifo();
    clear_tx = true;
  }
  if (enable) {
    if (value & kFcrClearRx) ClearRxFifo();
    if (value & kFcrClearTx) clear_tx = true;
    rx_trigger_ = kRxTriggers[value >> 6];
  }
  if (clear_tx && tx_count_ > 0) {  // bytes the host had not taken yet are gone
    tx_count_ = 0;
    thre_pending_ = true;
    if (host_ != nullptr) FlushTx();  // stops the output watch
  }
  UpdateIrq();
}

void Serial::WriteIer(uint8_t value) {
  uint8_t old = ier_;
  ier_ = value & kIerMask;
  // Enabling ETBEI while THR is empty raises THRE at once; Linux's 8250
  // driver relies on it to start transmitting.
  if ((ier_ & kIerThrEmpty) && !(old & kIerThrEmpty) && tx_count_ == 0) thre_pending_ = true;
  UpdateIrq();
}

void Serial::WriteMcr(uint8_t value) {
  uint8_t before = ModemInputs();
  mcr_ = value & kMcrMask;
  uint8_t after = ModemInputs();
  uint8_t changed = before ^ after;
  if (changed & kMsrCts) msr_deltas_ |= kMsrDeltaCts;
  if (changed & kMsrDsr) msr_deltas_ |= kMsrDeltaDsr;
  if (changed & kMsrDcd) msr_deltas_ |= kMsrDeltaDcd;
  if ((before & kMsrRi) && !(after & kMsrRi)) msr_deltas_ |= kMsrTrailingRi;
  UpdateIrq();
}

uint8_t Serial::ModemInputs() const {
  if (!(mcr_ & kMcrLoop)) return kMsrCts | kMsrDsr | kMsrDcd;  // the host end is ready
  uint8_t inputs = 0;
  if (mcr_ & kMcrRts) inputs |= kMsrCts;
  if (mcr_ & kMcrDtr) inputs |= kMsrDsr;
  if (mcr_ & kMcrOut1) inputs |= kMsrRi;
  if (mcr_ & kMcrOut2) inputs |= kMsrDcd;
  return inputs;
}

uint8_t Serial::Lsr() const {
  uint8_t lsr = tx_count_ == 0 ? kLsrThrEmpty | kLsrTxEmpty : 0;
  if (rx_count_ > 0) lsr |= kLsrDataReady;
  if (overrun_) lsr |= kLsrOverrun;
  return lsr;
}

uint8_t Serial::PendingInterrupt() const {
  if ((ier_ & kIerLineStatus) && overrun_) return kIirLineStatus;
  if ((ier_ & kIerRxData) && rx_count_ > 0) {
    // Below the trigger level the chip reports a character timeout; there is
    // no time here, so the timeout has always expired.
    return fifo_enabled_ && rx_count_ < rx_trigger_ ? kIirRxTimeout : kIirRxData;
  }
  if ((ier_ & kIerThrEmpty) && thre_pending_) return kIirThrEmpty;
  if ((ier_ & kIerModemStatus) && msr_deltas_ != 0) return kIirModemStatus;
  return kIirNone;
}

void Serial::UpdateIrq() {
  bool level = PendingInterrupt() != kIirNone && (mcr_ & kMcrOut2) && !(mcr_ & kMcrLoop);
  if (level == irq_asserted_) return;
  irq_asserted_ = level;
  // Under the lock, so concurrent updates reach the line in state order.
  if (irq_) irq_->SetLevel(level);
}

std::string Serial::SaveState() const {
  absl::MutexLock lock(&mu_);
  StateWriter out;
  for (uint8_t reg : {ier_, lcr_, mcr_, scr_, dll_, dlm_, msr_deltas_}) out.Put(reg);
  out.Put<uint8_t>(fifo_enabled_);
  out.Put<uint8_t>(static_cast<uint8_t>(rx_trigger_));
  out.Put<uint8_t>(overrun_);
  out.Put<uint8_t>(thre_pending_);
  out.PutBytes(absl::string_view(reinterpret_cast<const char*>(tx_.data()), tx_count_));
  std::string rx;
  for (size_t i = 0; i < rx_count_; ++i) {
    rx.push_back(static_cast<char>(rx_[(rx_head_ + i) % kRxFifoCapacity]));
  }
  out.PutBytes(rx);
  return out.Take();
}

absl::Status Serial::RestoreState(absl::string_view payload) {
  StateReader in("com1", payload);
  uint8_t ier, lcr, mcr, scr, dll, dlm, msr_deltas, fifo, trigger, overrun, thre;
  std::string tx, rx;
  for (auto [name, field] : {std::pair{"ier", &ier}, {"lcr", &lcr}, {"mcr", &mcr}, {"scr", &scr},
                             {"dll", &dll}, {"dlm", &dlm}, {"msr deltas", &msr_deltas},
                             {"fifo", &fifo}, {"rx trigger", &trigger}, {"overrun", &overrun},
                             {"thre", &thre}}) {
    RETURN_IF_ERROR(in.Get(name, field));
  }
  RETURN_IF_ERROR(in.GetBytes("tx fifo", kTxFifoCapacity, &tx));
  RETURN_IF_ERROR(in.GetBytes("rx fifo", kRxFifoCapacity, &rx));
  RETURN_IF_ERROR(in.Finish());
  if (absl::c_find(kRxTriggers, trigger) == std::end(kRxTriggers)) {
    return absl::DataLossError(absl::StrCat("state 'com1': rx trigger ", trigger));
  }
  if (fifo == 0 && (rx.size() > 1 || tx.size() > 1)) {
    return absl::DataLossError("state 'com1': a FIFO-less UART holding several bytes");
  }
  absl::MutexLock lock(&mu_);
  ier_ = ier & 0x0f;
  lcr_ = lcr;
  mcr_ = mcr & 0x1f;
  scr_ = scr;
  dll_ = dll;
  dlm_ = dlm;
  msr_deltas_ = msr_deltas & 0x0f;
  fifo_enabled_ = fifo != 0;
  rx_trigger_ = trigger;
  overrun_ = overrun != 0;
  thre_pending_ = thre != 0;
  tx_count_ = host_ != nullptr ? tx.size() : 0;
  std::memcpy(tx_.data(), tx.data(), tx_count_);
  rx_head_ = 0;
  rx_count_ = rx.size();
  std::memcpy(rx_.data(), rx.data(), rx.size());
  UpdateIrq();
  if (host_ != nullptr) {
    UpdateInputWatch();
    FlushTx();
  }
  return absl::OkStatus();
}

}  // namespace vmm
