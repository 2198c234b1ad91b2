#include "devices/virtio/console/virtio_console.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/state_file.h"
#include "base/status_macros.h"

namespace vmm {

std::shared_ptr<VirtioConsole> VirtioConsole::Create(std::unique_ptr<Chardev> backend) {
  auto console = std::make_shared<VirtioConsole>(std::move(backend));
  std::weak_ptr<VirtioConsole> weak = console;
  console->backend_->Start(Chardev::Callbacks{
      .readable = [weak] { if (auto self = weak.lock()) self->OnInputReady(); },
      .writable = [weak] { if (auto self = weak.lock()) self->OnOutputReady(); },
      .resized = [weak] { if (auto self = weak.lock()) self->OnResize(); },
  });
  return console;
}

VirtioConsole::VirtioConsole(std::unique_ptr<Chardev> backend)
    : backend_(std::move(backend)), features_(kVirtioFVersion1 | kVirtioFEventIdx |
                                              kVirtioFIndirectDesc) {
  // struct virtio_console_config: cols, rows, max_nr_ports, emerg_wr.
  absl::MutexLock lock(&mu_);
  if (auto size = backend_->TerminalSize()) {
    features_ |= kFSize;
    std::memcpy(&config_[0], &size->first, 2);
    std::memcpy(&config_[2], &size->second, 2);
  }
  const uint32_t ports = 1;
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
    if (active_ && (active_->features & kFSize) != 0) context = active_->context;
  }
  if (context != nullptr) context->NotifyConfigChanged();
}

absl::Status VirtioConsole::Activate(VirtioActivation activation) {
  Active a;
  RETURN_IF_ERROR(TakeActivation("virtio-console", std::move(activation), a));
  absl::MutexLock lock(&mu_);
  active_ = std::move(a);
  return absl::OkStatus();
}

// Held chains go with the queues. The backend is left watched: the next
// callback finds nothing to do and stops the watch from the loop thread.
absl::StatusOr<VirtioDeviceSnapshot> VirtioConsole::Snapshot() const {
  absl::MutexLock lock(&mu_);
  if (!active_) return absl::FailedPreconditionError("virtio-console: not active");
  size_t held[2] = {};
  held[kReceiveQueue] = active_->rx ? 1 : 0;
  held[kTransmitQueue] = active_->tx ? 1 : 0;
  StateWriter out;
  out.Put<uint64_t>(active_->tx ? active_->tx_offset : 0);
  return VirtioDeviceSnapshot{SnapshotPositions(*active_, held), out.Take()};
}

absl::Status VirtioConsole::RestoreSnapshot(absl::string_view state) {
  StateReader in("virtio-console", state);
  uint64_t tx_resume = 0;
  RETURN_IF_ERROR(in.Get("transmit offset", &tx_resume));
  RETURN_IF_ERROR(in.Finish());
  absl::MutexLock lock(&mu_);
  if (!active_) return absl::FailedPreconditionError("virtio-console: not active");
  active_->tx_resume = tx_resume;
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
  while (QueueUsable(kReceiveQueue)) {
    if (!active_->rx) {
      std::optional<DescriptorChain> chain = pass.Pop(kReceiveQueue);
      if (!chain) break;
      if (!chain->readable().empty() || chain->writable_bytes() == 0) {
        ++stats_.malformed;  // receiveq buffers are device-writable only
        pass.AddUsed(kReceiveQueue, std::move(*chain), 0);
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
    if (n == 0) break;  // no input now: keep the chain and watch
    stats_.bytes_in += n;
    DescriptorChain done = std::move(*active_->rx);
    active_->rx.reset();
    pass.AddUsed(kReceiveQueue, std::move(done), static_cast<uint32_t>(n));
  }
  const bool want = active_ && !active_->broken && active_->rx.has_value();
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
    if (queue == kReceiveQueue) PumpReceive(pass);
    if (queue == kTransmitQueue) PumpTransmit(pass);
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
