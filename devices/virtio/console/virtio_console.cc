#include "devices/virtio/console/virtio_console.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/state_file.h"
#include "base/status_macros.h"

namespace vmm {

std::shared_ptr<VirtioConsole> VirtioConsole::Create(std::unique_ptr<Chardev> backend,
                                                     Options options) {
  auto console = std::make_shared<VirtioConsole>(std::move(backend), options);
  std::weak_ptr<VirtioConsole> weak = console;
  console->backend_->Start(Chardev::Callbacks{
      .readable = [weak] { if (auto self = weak.lock()) self->OnInputReady(); },
      .writable = [weak] { if (auto self = weak.lock()) self->OnOutputReady(); },
      .resized = [weak] { if (auto self = weak.lock()) self->OnResize(); },
  });
  return console;
}

VirtioConsole::VirtioConsole(std::unique_ptr<Chardev> backend, Options options)
    : backend_(std::move(backend)), options_(options), features_(kVirtioFVersion1 | kVirtioFEventIdx |
                                              kVirtioFIndirectDesc | kFMultiport) {
  // struct virtio_console_config: cols, rows, max_nr_ports, emerg_wr.
  absl::MutexLock lock(&mu_);
  if (auto size = backend_->TerminalSize()) {
    features_ |= kFSize;
    std::memcpy(&config_[0], &size->first, 2);
    std::memcpy(&config_[2], &size->second, 2);
  }
  const uint32_t ports = options_.input_port ? 2 : 1;
  std::memcpy(&config_[4], &ports, 4);
}

void VirtioConsole::ReadConfig(uint64_t offset, absl::Span<uint8_t> data) {
  absl::MutexLock lock(&mu_);
  ReadConfigBytes(config_, offset, data);
}

void VirtioConsole::OnResize() {
  VirtioDeviceContext* context = nullptr;
  {
    absl::MutexLock lock(&mu_);
    auto size = backend_->TerminalSize();
    if (!size || (features_ & kFSize) == 0) return;
    uint8_t fresh[4];
    std::memcpy(&fresh[0], &size->first, 2);
    std::memcpy(&fresh[2], &size->second, 2);
    if (std::memcmp(fresh, config_, 4) == 0) return;
    std::memcpy(config_, fresh, 4);
    if (active_ && (active_->features & kFSize) != 0) {
      if (!active_->multiport) {
        context = active_->context;
      } else if (active_->port_open) {
        // struct { le16 rows; le16 cols; } after the header, as Linux reads it.
        uint8_t size_bytes[4];
        std::memcpy(&size_bytes[0], &size->second, 2);
        std::memcpy(&size_bytes[2], &size->first, 2);
        SendControl(kResize, 0, absl::string_view(reinterpret_cast<char*>(size_bytes), 4));
      }
    }
  }
  if (context != nullptr) context->NotifyConfigChanged();
  QueuePass pass("virtio-console");
  {
    absl::MutexLock lock(&mu_);
    if (!active_ || !active_->multiport) return;
    pass.Begin(*active_);
    PumpControl(pass);
    EndPass(pass);
  }
  pass.Deliver();
}

uint32_t VirtioConsole::InputPort() const { return active_->input_queue == 0 ? 0 : 1; }

void VirtioConsole::SendControl(uint16_t event, uint16_t value, absl::string_view extra,
                                uint32_t port) {
  // struct virtio_console_control: le32 id, le16 event, le16 value.
  std::string message(8, '\0');
  std::memcpy(&message[0], &port, 4);
  std::memcpy(&message[4], &event, 2);
  std::memcpy(&message[6], &value, 2);
  message.append(extra.data(), extra.size());
  if (active_->control_out.size() < 64) active_->control_out.push_back(std::move(message));
}

void VirtioConsole::HandleControl(absl::string_view message) {
  uint32_t id;
  uint16_t event, value;
  std::memcpy(&id, message.data(), 4);
  std::memcpy(&event, message.data() + 4, 2);
  std::memcpy(&value, message.data() + 6, 2);
  switch (event) {
    case kDeviceReady:
      if (value != 1) break;
      SendControl(kDeviceAdd, 1);
      if (InputPort() == 1) SendControl(kDeviceAdd, 1, {}, 1);
      break;
    case kPortReady:
      if (value != 1) break;
      if (id == 0) {
        if (!options_.generic_port) SendControl(kConsolePort, 1);
        SendControl(kPortOpen, 1);  // the host end is there
      } else if (id == 1 && InputPort() == 1) {
        SendControl(kPortOpen, active_->input_ended_told ? 0 : 1, {}, 1);
      }
      break;
    case kPortOpen:
      if (id == InputPort()) active_->port_open = value != 0;
      break;
    default:
      break;  // nothing else is the driver's to send
  }
}

void VirtioConsole::PumpControl(QueuePass& pass) {
  // The driver's messages first: they may queue answers.
  while (QueueUsable(kControlTransmitQueue)) {
    std::optional<DescriptorChain> chain = pass.Pop(kControlTransmitQueue);
    if (!chain) break;
    uint8_t message[8];
    if (!chain->writable().empty() ||
        chain->ReadFrom(*active_->memory, 0, absl::MakeSpan(message)) != sizeof(message)) {
      ++stats_.malformed;
    } else {
      HandleControl(absl::string_view(reinterpret_cast<char*>(message), sizeof(message)));
    }
    pass.AddUsed(kControlTransmitQueue, std::move(*chain), 0);
  }
  while (QueueUsable(kControlReceiveQueue) && !active_->control_out.empty()) {
    std::optional<DescriptorChain> chain = pass.Pop(kControlReceiveQueue);
    if (!chain) break;
    const std::string& message = active_->control_out.front();
    if (!chain->readable().empty() || chain->writable_bytes() < message.size()) {
      ++stats_.malformed;
      pass.AddUsed(kControlReceiveQueue, std::move(*chain), 0);
      continue;
    }
    const size_t written = chain->WriteTo(
        *active_->memory, 0,
        absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(message.data()), message.size()));
    active_->control_out.pop_front();
    pass.AddUsed(kControlReceiveQueue, std::move(*chain), static_cast<uint32_t>(written));
  }
}

absl::Status VirtioConsole::Activate(VirtioActivation activation) {
  Active a;
  RETURN_IF_ERROR(TakeActivation("virtio-console", std::move(activation), a));
  a.multiport = (a.features & kFMultiport) != 0;
  a.port_open = !a.multiport;
  a.input_queue = a.multiport && options_.input_port ? kInputPortReceiveQueue : kReceiveQueue;
  absl::MutexLock lock(&mu_);
  active_ = std::move(a);
  return absl::OkStatus();
}

// Held chains go with the queues. The backend is left watched: the next
// callback finds nothing to do and stops the watch from the loop thread.
absl::StatusOr<VirtioDeviceSnapshot> VirtioConsole::Snapshot() const {
  absl::MutexLock lock(&mu_);
  if (!active_) return absl::FailedPreconditionError("virtio-console: not active");
  std::vector<size_t> held(active_->queues.size(), 0);
  if (active_->input_queue < held.size()) held[active_->input_queue] = active_->rx ? 1 : 0;
  if (kTransmitQueue < held.size()) held[kTransmitQueue] = active_->tx ? 1 : 0;
  StateWriter out;
  out.Put<uint64_t>(active_->tx ? active_->tx_offset : 0);
  out.Put<uint8_t>(active_->port_open);
  out.Put<uint8_t>(active_->input_ended_told);
  out.Put<uint32_t>(static_cast<uint32_t>(active_->control_out.size()));
  for (const std::string& message : active_->control_out) out.PutBytes(message);
  return VirtioDeviceSnapshot{SnapshotPositions(*active_, held), out.Take()};
}

absl::Status VirtioConsole::RestoreSnapshot(absl::string_view state) {
  StateReader in("virtio-console", state);
  uint64_t tx_resume = 0;
  uint8_t port_open = 0;
  uint32_t pending = 0;
  RETURN_IF_ERROR(in.Get("transmit offset", &tx_resume));
  uint8_t input_ended = 0;
  RETURN_IF_ERROR(in.Get("port open", &port_open));
  RETURN_IF_ERROR(in.Get("input ended", &input_ended));
  RETURN_IF_ERROR(in.Get("control messages", &pending));
  if (pending > 64) return absl::DataLossError("virtio-console: too many control messages");
  std::deque<std::string> control_out(pending);
  for (std::string& message : control_out) {
    RETURN_IF_ERROR(in.GetBytes("control message", 64, &message));
  }
  RETURN_IF_ERROR(in.Finish());
  absl::MutexLock lock(&mu_);
  if (!active_) return absl::FailedPreconditionError("virtio-console: not active");
  active_->tx_resume = tx_resume;
  if (active_->multiport) {
    active_->port_open = port_open != 0;
    active_->input_ended_told = input_ended != 0;
    active_->control_out = std::move(control_out);
  }
  return absl::OkStatus();
}

void VirtioConsole::Reset() {
  absl::MutexLock lock(&mu_);
  active_.reset();
}

VirtioConsoleStats VirtioConsole::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

std::vector<DeviceCounter> VirtioConsole::counters() const {
  const VirtioConsoleStats s = stats();
  return {
      {"bytes_out", s.bytes_out},
      {"bytes_in", s.bytes_in},
      {"malformed", s.malformed},
      {"tx_blocked", s.tx_blocked},
  };
}

bool VirtioConsole::QueueUsable(uint16_t queue) const {
  return active_ && active_->QueueUsable(queue);
}

void VirtioConsole::PumpTransmit(QueuePass& pass) {
  while (QueueUsable(kTransmitQueue)) {
    if (!active_->tx) {
      std::optional<DescriptorChain> chain = pass.Pop(kTransmitQueue);
      if (!chain) break;
      if (!chain->writable().empty() || chain->readable_bytes() == 0) {
        ++stats_.malformed;  // transmitq buffers are device-readable only
        pass.AddUsed(kTransmitQueue, std::move(*chain), 0);
        continue;
      }
      active_->tx = std::move(chain);
      // Past the end (a damaged snapshot) only completes the chain.
      active_->tx_offset = active_->tx_resume;
      active_->tx_resume = 0;
    }
    const DescriptorChain& chain = *active_->tx;
    const uint64_t total = chain.readable_bytes();
    bool blocked = false;
    while (active_->tx_offset < total) {
      const uint64_t len = std::min<uint64_t>(total - active_->tx_offset, kMaxChunk);
      absl::StatusOr<std::vector<iovec>> iov =
          chain.ReadableIovecs(*active_->memory, active_->tx_offset, len);
      if (!iov.ok() || iov->empty()) {  // validated at pop: cannot happen
        active_->tx_offset = total;
        break;
      }
      const size_t n = backend_->Write(absl::MakeConstSpan(
          static_cast<const uint8_t*>((*iov)[0].iov_base), (*iov)[0].iov_len));
      if (n == 0) {
        ++stats_.tx_blocked;
        blocked = true;
        break;
      }
      active_->tx_offset += n;
      stats_.bytes_out += n;
    }
    if (blocked) break;
    DescriptorChain done = std::move(*active_->tx);
    active_->tx.reset();
    pass.AddUsed(kTransmitQueue, std::move(done), 0);
  }
  const bool want = active_ && !active_->broken && active_->tx.has_value();
  if (want != watching_output_) {
    backend_->WatchOutput(want);
    watching_output_ = want;
  }
}

void VirtioConsole::PumpReceive(QueuePass& pass) {
  // With MULTIPORT, nothing until the driver has opened the port.
  const uint16_t queue = active_ ? active_->input_queue : kReceiveQueue;
  while (QueueUsable(queue) && active_->port_open) {
    if (!active_->rx) {
      std::optional<DescriptorChain> chain = pass.Pop(queue);
      if (!chain) break;
      if (!chain->readable().empty() || chain->writable_bytes() == 0) {
        ++stats_.malformed;  // receiveq buffers are device-writable only
        pass.AddUsed(queue, std::move(*chain), 0);
        continue;
      }
      active_->rx = std::move(chain);
    }
    const uint64_t len = std::min<uint64_t>(active_->rx->writable_bytes(), kMaxChunk);
    absl::StatusOr<std::vector<iovec>> iov = active_->rx->WritableIovecs(*active_->memory, 0, len);
    size_t n = 0;
    if (iov.ok() && !iov->empty()) {
      n = backend_->Read(
          absl::MakeSpan(static_cast<uint8_t*>((*iov)[0].iov_base), (*iov)[0].iov_len));
    }
    if (n == 0) {
      // The input port's reader learns of the end of input as its host end
      // closing.
      if (active_->input_queue != kReceiveQueue && backend_->InputEnded() &&
          !active_->input_ended_told) {
        active_->input_ended_told = true;
        SendControl(kPortOpen, 0, {}, 1);
        PumpControl(pass);
      }
      break;  // no input now: keep the chain and watch
    }
    stats_.bytes_in += n;
    DescriptorChain done = std::move(*active_->rx);
    active_->rx.reset();
    pass.AddUsed(queue, std::move(done), static_cast<uint32_t>(n));
  }
  // A held buffer with the port open; not while the driver has it closed
  // (the backend's readiness would only spin the loop).
  const bool want = active_ && !active_->broken && active_->port_open && active_->rx.has_value();
  if (want != watching_input_) {
    backend_->WatchInput(want);
    watching_input_ = want;
  }
}

void VirtioConsole::EndPass(QueuePass& pass) {
  // A broken driver's chains are not touched again.
  if (pass.failed() && active_) {
    active_->rx.reset();
    active_->tx.reset();
  }
  pass.Settle();
}

void VirtioConsole::ProcessQueue(uint16_t queue) {
  QueuePass pass("virtio-console");
  {
    absl::MutexLock lock(&mu_);
    if (!active_ || active_->broken) return;
    pass.Begin(*active_);
    if (queue == active_->input_queue) PumpReceive(pass);
    if (queue == kInputPortTransmitQueue && active_->input_queue == kInputPortReceiveQueue) {
      // Nothing is written to the input port; what is, is dropped.
      while (std::optional<DescriptorChain> chain = pass.Pop(queue)) {
        pass.AddUsed(queue, std::move(*chain), 0);
      }
    }
    if (queue == kTransmitQueue) PumpTransmit(pass);
    if (queue == kControlReceiveQueue || queue == kControlTransmitQueue) {
      const bool was_open = active_->port_open;
      PumpControl(pass);
      // The driver opened the port: input may flow now.
      if (!was_open && active_->port_open) PumpReceive(pass);
    }
    EndPass(pass);
  }
  pass.Deliver();
}

void VirtioConsole::OnInputReady() {
  QueuePass pass("virtio-console");
  {
    absl::MutexLock lock(&mu_);
    if (active_) pass.Begin(*active_);
    PumpReceive(pass);
    EndPass(pass);
  }
  pass.Deliver();
}

void VirtioConsole::OnOutputReady() {
  QueuePass pass("virtio-console");
  {
    absl::MutexLock lock(&mu_);
    if (active_) pass.Begin(*active_);
    PumpTransmit(pass);
    EndPass(pass);
  }
  pass.Deliver();
}

}  // namespace vmm
