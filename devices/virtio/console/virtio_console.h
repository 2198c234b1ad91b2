// virtio-console (virtio 1.x, 5.3): one port, port 0 (hvc0 in Linux):
// receiveq 0 (host -> guest) and transmitq 1 (guest -> host), over an
// injected Chardev. VIRTIO_CONSOLE_F_SIZE is offered when the backend's
// output is a terminal (cols/rows from it, updated on resize).
//
// VIRTIO_CONSOLE_F_MULTIPORT is offered (max_nr_ports 1) for what its
// control queues (2: control receiveq, 3: control transmitq) say: when the
// driver has opened the port. Without it a driver gives no such signal, and
// Linux drops input that arrives while it sets the port up (add_port fills
// the receive queue before it marks the console connected): with it, the
// device answers DEVICE_READY with DEVICE_ADD for port 0, PORT_READY with
// CONSOLE_PORT and PORT_OPEN (the host side is there), and takes no input
// from the backend until the driver's PORT_OPEN (as QEMU's virtconsole).
// Terminal resizes then go as RESIZE messages (rows, cols, as Linux and
// QEMU order them). A driver that does not negotiate MULTIPORT gets the
// single-port device, input at once.
//
// With `generic_port` (Options) port 0 is not announced as a console: Linux
// makes it /dev/vport<N>p0, a plain byte stream (no tty: no echo, no line
// discipline) whose PORT_OPEN follows its open() and close(): input waits
// for a reader. What --host-root gives a command whose stdin is not a
// terminal. With `input_port` too, input goes to port 1 instead, whose host
// end closes at the end of the backend's input (the reader sees the end of
// file) while port 0 keeps the output; max_nr_ports is then 2.
//
// Backpressure both ways, with no host-side buffer at all:
// - transmit: bytes are written from guest memory straight to the backend;
//   when it would block, the chain stays un-completed (at most one is held)
//   and the device waits for the backend's writable callback.
// - receive: one receive chain is held while the backend is watched for
//   input, and input is read straight into it; with no receive buffer the
//   input is not watched (it waits in the kernel: pipe, socket, tty).
//
// Hostile drivers: a receive chain with device-readable buffers, a transmit
// chain with device-writable ones, and zero-length chains are returned with
// length 0 and counted.
//
// Threads: ProcessQueue and the backend callbacks run on the event loop;
// Activate/Reset on vCPU threads. All are serialised by the device mutex, and
// the backend is only called from the loop thread.
#ifndef VMM_DEVICES_VIRTIO_CONSOLE_VIRTIO_CONSOLE_H_
#define VMM_DEVICES_VIRTIO_CONSOLE_VIRTIO_CONSOLE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "devices/chardev/chardev.h"
#include "devices/virtio/queue_pass.h"
#include "devices/virtio/virtio_device.h"

namespace vmm {

struct VirtioConsoleStats {
  uint64_t bytes_out = 0;   // guest -> host
  uint64_t bytes_in = 0;    // host -> guest
  uint64_t malformed = 0;   // wrong-direction or zero-length chains
  uint64_t tx_blocked = 0;  // times output would block
};

struct VirtioConsoleOptions {
  bool generic_port = false;  // port 0 as /dev/vportNp0, not hvc0 (MULTIPORT only)
  // Input on a port of its own, port 1 (/dev/vportNp1), whose host end
  // closes when the backend's input ends (Chardev::InputEnded): its reader
  // sees the end of file, and port 0's output goes on (a closed host end
  // also stops the guest's writes, so port 0 could not carry the end).
  bool input_port = false;
};

class VirtioConsole : public VirtioDevice {
 public:
  static constexpr uint32_t kDeviceType = 3;  // VIRTIO_ID_CONSOLE
  static constexpr uint16_t kQueueSize = 128;
  static constexpr uint16_t kReceiveQueue = 0;
  static constexpr uint16_t kTransmitQueue = 1;
  static constexpr uint16_t kControlReceiveQueue = 2;   // MULTIPORT
  static constexpr uint16_t kControlTransmitQueue = 3;  // MULTIPORT
  static constexpr uint16_t kControlQueueSize = 32;
  static constexpr uint64_t kFSize = 1ull << 0;  // VIRTIO_CONSOLE_F_SIZE
  static constexpr uint64_t kFMultiport = 1ull << 1;  // VIRTIO_CONSOLE_F_MULTIPORT
  // struct virtio_console_control's events.
  enum ControlEvent : uint16_t {
    kDeviceReady = 0,
    kDeviceAdd = 1,
    kDeviceRemove = 2,
    kPortReady = 3,
    kConsolePort = 4,
    kResize = 5,
    kPortOpen = 6,
    kPortName = 7,
  };
  // Bytes moved per backend call (bounds the work of one step).
  static constexpr uint32_t kMaxChunk = 4096;

  using Options = VirtioConsoleOptions;
  // Starts `backend` with callbacks into the device (hence shared_ptr).
  static std::shared_ptr<VirtioConsole> Create(std::unique_ptr<Chardev> backend,
                                               Options options = {});
  explicit VirtioConsole(std::unique_ptr<Chardev> backend, Options options = {});

  uint32_t device_type() const override { return kDeviceType; }
  uint64_t device_features() const override { return features_; }
  // Port 1's receive and transmit queues (input_port).
  static constexpr uint16_t kInputPortReceiveQueue = 4;
  static constexpr uint16_t kInputPortTransmitQueue = 5;
  std::vector<uint16_t> queue_max_sizes() const override {
    std::vector<uint16_t> sizes = {kQueueSize, kQueueSize, kControlQueueSize, kControlQueueSize};
    if (options_.input_port) sizes.insert(sizes.end(), {kQueueSize, kQueueSize});
    return sizes;
  }
  // cols, rows (u16 each), max_nr_ports = 1, emerg_wr (u32, write-only).
  void ReadConfig(uint64_t offset, absl::Span<uint8_t> data) override;
  void WriteConfig(uint64_t, absl::Span<const uint8_t>) override {}
  absl::Status Activate(VirtioActivation activation) override;
  void ProcessQueue(uint16_t queue) override;
  void Reset() override;
  // Snapshots: the queues' positions and how much of a transmit chain the backend took (so a restored
  // console does not write it twice).
  absl::StatusOr<VirtioDeviceSnapshot> Snapshot() const override;
  absl::Status RestoreSnapshot(absl::string_view state) override;

  // The backend's callbacks (loop thread).
  void OnInputReady();
  void OnOutputReady();
  // Re-reads the terminal size; tells the driver if F_SIZE was negotiated.
  void OnResize();

  VirtioConsoleStats stats() const;
  std::vector<DeviceCounter> counters() const override;

 private:
  struct Active : VirtioActiveQueues {
    std::optional<DescriptorChain> rx;  // waiting for input
    std::optional<DescriptorChain> tx;  // partly written, waiting for the backend
    uint64_t tx_offset = 0;
    // Restored: bytes of the first transmit chain popped that were written
    // before the snapshot.
    uint64_t tx_resume = 0;
    bool multiport = false;  // negotiated
    // The driver opened the port input goes to (always, without
    // MULTIPORT): input flows.
    bool port_open = false;
    bool input_ended_told = false;  // input_port: its host end closed
    // Where input goes: port 0's receive queue, or port 1's (input_port).
    uint16_t input_queue = 0;
    // Control messages for the driver, sent as it gives control buffers
    // (bounded: the device sends a handful per driver message).
    std::deque<std::string> control_out;
  };
  // MULTIPORT: the driver's control messages, and the device's to it.
  void PumpControl(QueuePass& pass) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleControl(absl::string_view message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SendControl(uint16_t event, uint16_t value, absl::string_view extra = {},
                   uint32_t port = 0) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The port input goes to.
  uint32_t InputPort() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Under mu_, after a pump: drops the held chains if the driver broke a
  // ring, then settles the pass (which the caller delivers without mu_).
  void EndPass(QueuePass& pass) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PumpTransmit(QueuePass& pass) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PumpReceive(QueuePass& pass) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool QueueUsable(uint16_t queue) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::unique_ptr<Chardev> backend_;
  const Options options_;
  uint64_t features_;

  mutable absl::Mutex mu_;
  uint8_t config_[12] ABSL_GUARDED_BY(mu_) = {};
  std::optional<Active> active_ ABSL_GUARDED_BY(mu_);
  VirtioConsoleStats stats_ ABSL_GUARDED_BY(mu_);
  bool watching_input_ ABSL_GUARDED_BY(mu_) = false;
  bool watching_output_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_CONSOLE_VIRTIO_CONSOLE_H_
