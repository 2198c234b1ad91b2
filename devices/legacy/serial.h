// A 16550A UART (the PC's COM port) as 8 I/O ports, over a host chardev
// (devices/chardev/): stdio, a file, a Unix socket, a pty.
//
// Transmit: a byte written to THR goes into a 16-byte transmit FIFO, which is
// handed to the chardev at once; THRE (and TEMT) read set once the chardev
// took everything. When the chardev would block (a socket client or pty
// reader that does not read), the bytes wait in the FIFO, THRE stays clear
// and the guest's driver waits as it would for a slow line; the chardev's
// writable callback sends the rest and raises the THR-empty interrupt. A
// byte written while the FIFO is full is lost, as on the chip (counted).
// Receive: the chardev is read only while the RX FIFO has room, so host
// input waits in the kernel, not here.
//
// Interrupts follow the chip: one pending source is reported in IIR by
// priority (line status > RX data > THR empty > modem status), and the line
// is asserted while any enabled source is pending. As on the PC, the chip's
// interrupt output reaches the bus only while MCR.OUT2 is set and loopback is
// off (Linux sets OUT2 when it opens the port; bare guests must set it too).
#ifndef VMM_DEVICES_LEGACY_SERIAL_H_
#define VMM_DEVICES_LEGACY_SERIAL_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "devices/bus.h"
#include "devices/chardev/chardev.h"
#include "devices/irq_line.h"

namespace vmm {

class Serial : public BusDevice {
 public:
  // Register file size: the device occupies 8 consecutive ports.
  static constexpr uint64_t kRegisterCount = 8;
  // RX FIFO depth while FIFOs are enabled (FCR bit 0); one byte otherwise,
  // as in 16450 mode. Deeper than the real chip's 16 to save host wake-ups.
  static constexpr size_t kRxFifoCapacity = 64;
  // TX FIFO depth while FIFOs are enabled; one byte otherwise. The chip's 16:
  // what Linux's driver loads per THR-empty interrupt.
  static constexpr size_t kTxFifoCapacity = 16;

  // `irq` may be null (no interrupt wired). `host` may be null (output
  // dropped, no input); otherwise it must outlive the Serial, which starts
  // it and stops it again when it goes.
  Serial(std::shared_ptr<IrqLine> irq, Chardev* host);
  ~Serial() override;

  // Byte-wide registers: a wider access is split into byte accesses to
  // consecutive ports, as the ISA bus does. Ports past the register file read
  // 0xff and ignore writes.
  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

  // Bytes the guest wrote to THR while the TX FIFO was full.
  uint64_t tx_dropped() const;

  // The UART's registers and FIFOs, for a snapshot (base/state_file.h's
  // codec), and back: a payload that does not describe a 16550A (a count
  // past its FIFO, an unknown trigger level) is DataLoss, one line.
  std::string SaveState() const ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status RestoreState(absl::string_view payload) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  uint8_t ReadRegister(uint64_t reg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteRegister(uint64_t reg, uint8_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Transmit(uint8_t byte) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A byte arriving at the receiver (from the host or from loopback).
  void Receive(uint8_t byte) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteFcr(uint8_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteIer(uint8_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteMcr(uint8_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ClearRxFifo() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint8_t PopRx() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t RxCapacity() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // CTS/DSR/RI/DCD as MSR bits 7:4: the MCR outputs in loopback, otherwise
  // the (always ready) remote end.
  uint8_t ModemInputs() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint8_t Lsr() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // IIR bits 3:0 of the highest-priority enabled pending interrupt.
  uint8_t PendingInterrupt() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drives the IRQ line to match the state; called after every change.
  void UpdateIrq() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t TxCapacity() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands the TX FIFO to the host; THR-empty once all of it went.
  void FlushTx() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Watches host input exactly while the receiver can take it.
  void UpdateInputWatch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WatchInputFirstTime();
  // The chardev's callbacks (loop thread).
  void OnHostReadable();
  void OnHostWritable();

  const std::shared_ptr<IrqLine> irq_;
  Chardev* const host_;

  mutable absl::Mutex mu_;
  uint8_t ier_ ABSL_GUARDED_BY(mu_) = 0;
  uint8_t lcr_ ABSL_GUARDED_BY(mu_) = 0;
  uint8_t mcr_ ABSL_GUARDED_BY(mu_) = 0;
  uint8_t scr_ ABSL_GUARDED_BY(mu_) = 0;
  uint8_t dll_ ABSL_GUARDED_BY(mu_) = 12;  // 9600 baud
  uint8_t dlm_ ABSL_GUARDED_BY(mu_) = 0;
  bool fifo_enabled_ ABSL_GUARDED_BY(mu_) = false;
  size_t rx_trigger_ ABSL_GUARDED_BY(mu_) = 1;
  bool overrun_ ABSL_GUARDED_BY(mu_) = false;       // LSR.OE until LSR is read
  bool thre_pending_ ABSL_GUARDED_BY(mu_) = false;  // THR-empty interrupt
  uint8_t msr_deltas_ ABSL_GUARDED_BY(mu_) = 0;     // MSR bits 3:0 until MSR is read
  bool irq_asserted_ ABSL_GUARDED_BY(mu_) = false;
  bool input_watched_ ABSL_GUARDED_BY(mu_) = false;
  bool output_watched_ ABSL_GUARDED_BY(mu_) = false;
  std::array<uint8_t, kTxFifoCapacity> tx_ ABSL_GUARDED_BY(mu_) = {};
  size_t tx_count_ ABSL_GUARDED_BY(mu_) = 0;  // tx_[0..tx_count_) waits for the host
  uint64_t tx_dropped_ ABSL_GUARDED_BY(mu_) = 0;
  std::array<uint8_t, kRxFifoCapacity> rx_ ABSL_GUARDED_BY(mu_) = {};
  size_t rx_head_ ABSL_GUARDED_BY(mu_) = 0;
  size_t rx_count_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vmm

#endif  // VMM_DEVICES_LEGACY_SERIAL_H_
