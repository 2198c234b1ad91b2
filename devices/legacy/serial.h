// A 16550A UART (the PC's COM port) as 8 I/O ports. Transmission is
// instantaneous: every byte written to THR goes straight to the output sink,
// so THR and the transmitter are always empty. Host input arrives through
// EnqueueInput into a bounded RX FIFO.
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

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "devices/bus.h"
#include "devices/irq_line.h"

namespace vmm {

class Serial : public BusDevice {
 public:
  // Receives the bytes the guest transmits (one byte per call). Called with
  // the device lock held, so output stays in order across vCPUs; it must not
  // call back into this Serial.
  using OutputSink = std::function<void(absl::Span<const uint8_t>)>;
  // Tells the host side that the RX FIFO has room again after EnqueueInput
  // accepted fewer bytes than offered. Called without the device lock held
  // (it may call EnqueueInput), on the vCPU thread that drained the FIFO.
  using RxSpaceCallback = std::function<void()>;

  // Register file size: the device occupies 8 consecutive ports.
  static constexpr uint64_t kRegisterCount = 8;
  // RX FIFO depth while FIFOs are enabled (FCR bit 0); one byte otherwise,
  // as in 16450 mode. Deeper than the real chip's 16 to save host wake-ups.
  static constexpr size_t kRxFifoCapacity = 64;

  // `irq` may be null (no interrupt wired); `output` may be empty (output
  // discarded); `on_rx_space` may be empty.
  Serial(std::shared_ptr<IrqLine> irq, OutputSink output, RxSpaceCallback on_rx_space = {});

  // Byte-wide registers: a wider access is split into byte accesses to
  // consecutive ports, as the ISA bus does. Ports past the register file read
  // 0xff and ignore writes.
  void Read(uint64_t offset, absl::Span<uint8_t> data) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data) override;

  // Host input (thread-safe). Accepts as many bytes as fit in the RX FIFO and
  // returns how many; the rest must be offered again after on_rx_space fires.
  // Raises the RX data interrupt if enabled.
  size_t EnqueueInput(absl::Span<const uint8_t> bytes);

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
  // True once if the host was refused input and the FIFO now has room.
  bool TakeRxSpaceNotification() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<IrqLine> irq_;
  const OutputSink output_;
  const RxSpaceCallback on_rx_space_;

  absl::Mutex mu_;
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
  bool host_waiting_ ABSL_GUARDED_BY(mu_) = false;  // EnqueueInput was refused bytes
  std::array<uint8_t, kRxFifoCapacity> rx_ ABSL_GUARDED_BY(mu_) = {};
  size_t rx_head_ ABSL_GUARDED_BY(mu_) = 0;
  size_t rx_count_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vmm

#endif  // VMM_DEVICES_LEGACY_SERIAL_H_
