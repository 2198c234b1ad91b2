#include "devices/virtio/rng/virtio_rng.h"

#include <sys/random.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "devices/virtio/queue_pass.h"

namespace vmm {
namespace {

bool GetRandom(absl::Span<uint8_t> out) {
  while (!out.empty()) {
    ssize_t n = ::getrandom(out.data(), out.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    out.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

absl::StatusOr<std::shared_ptr<VirtioRng>> VirtioRng::Create(VirtioRngOptions options,
                                                             EventLoop& loop) {
  UniqueFd timer(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!timer.valid()) return ErrnoStatus("virtio-rng: timerfd_create");
  const int fd = timer.get();
  options.schedule_retry = [fd](absl::Duration delay) {
    itimerspec spec{};
    spec.it_value = absl::ToTimespec(std::max(delay, absl::Milliseconds(1)));
    (void)::timerfd_settime(fd, 0, &spec, nullptr);
  };
  auto rng = std::make_shared<VirtioRng>(std::move(options));
  std::weak_ptr<VirtioRng> weak = rng;
  RETURN_IF_ERROR(loop.Add(fd, EPOLLIN, [weak, fd](uint32_t) {
    uint64_t expirations;
    (void)!::read(fd, &expirations, sizeof(expirations));
    if (auto self = weak.lock()) self->OnRetryTimer();
  }));
  rng->loop_ = &loop;
  rng->timer_ = std::move(timer);
  return rng;
}

VirtioRng::VirtioRng(VirtioRngOptions options) : options_(std::move(options)) {
  if (!options_.entropy) options_.entropy = GetRandom;
  if (!options_.clock) options_.clock = [] { return absl::Now(); };
  options_.rate_limit_bytes_per_second = std::min(options_.rate_limit_bytes_per_second, kMaxRate);
  nano_tokens_ = options_.rate_limit_bytes_per_second * kNanos;  // a full bucket
  last_refill_ = options_.clock();
}

VirtioRng::~VirtioRng() {
  if (loop_ != nullptr) (void)loop_->Remove(timer_.get());
}

void VirtioRng::ReadConfig(uint64_t /*offset*/, absl::Span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
}

absl::Status VirtioRng::Activate(VirtioActivation activation) {
  Active a;
  RETURN_IF_ERROR(TakeActivation("virtio-rng", std::move(activation), a));
  absl::MutexLock lock(&mu_);
  active_ = std::move(a);
  return absl::OkStatus();
}

absl::StatusOr<VirtioDeviceSnapshot> VirtioRng::Snapshot() const {
  absl::MutexLock lock(&mu_);
  if (!active_) return absl::FailedPreconditionError("virtio-rng: not active");
  const size_t held[] = {active_->held ? 1u : 0u};
  return VirtioDeviceSnapshot{SnapshotPositions(*active_, held), ""};
}

void VirtioRng::Reset() {
  absl::MutexLock lock(&mu_);
  active_.reset();
}

VirtioRngStats VirtioRng::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

std::vector<DeviceCounter> VirtioRng::counters() const {
  const VirtioRngStats s = stats();
  return {
      {"requests", s.requests},
      {"bytes", s.bytes},
      {"malformed", s.malformed},
      {"throttled", s.throttled},
      {"entropy_failures", s.entropy_failures},
  };
}

uint64_t VirtioRng::Budget() {
  const uint64_t rate = options_.rate_limit_bytes_per_second;
  if (rate == 0) return UINT64_MAX;
  const absl::Time now = options_.clock();
  if (now > last_refill_) {
    // At most a second counts: the bucket holds one second's worth, and
    // rate * 1e9 fits in 64 bits (the rate is at most kMaxRate).
    const uint64_t ns =
        static_cast<uint64_t>(absl::ToInt64Nanoseconds(std::min(now - last_refill_, absl::Seconds(1))));
    nano_tokens_ = std::min(rate * kNanos, nano_tokens_ + ns * rate);
  }
  last_refill_ = now;
  return nano_tokens_ / kNanos;
}

uint32_t VirtioRng::Fill(const DescriptorChain& chain, const GuestMemory& memory,
                         uint64_t limit) {
  const uint64_t len = std::min({chain.writable_bytes(), limit, uint64_t{kMaxBytesPerRequest}});
  if (len == 0) return 0;
  absl::StatusOr<std::vector<iovec>> iovecs = chain.WritableIovecs(memory, 0, len);
  if (!iovecs.ok()) return 0;
  for (const iovec& v : *iovecs) {
    if (!options_.entropy(absl::MakeSpan(static_cast<uint8_t*>(v.iov_base), v.iov_len))) {
      ++stats_.entropy_failures;
      return 0;
    }
  }
  return static_cast<uint32_t>(len);
}

void VirtioRng::OnRetryTimer() {
  {
    absl::MutexLock lock(&mu_);
    retry_scheduled_ = false;
  }
  ProcessQueue(0);
}

void VirtioRng::ProcessQueue(uint16_t index) {
  QueuePass pass("virtio-rng");
  {
    absl::MutexLock lock(&mu_);
    if (index != 0 || !active_ || !active_->QueueUsable(0)) return;
    pass.Begin(*active_);
    const GuestMemory& memory = *active_->memory;
    while (!retry_scheduled_) {
      std::optional<DescriptorChain> chain = std::move(active_->held);
      active_->held.reset();
      if (!chain) {
        chain = pass.Pop(0);
        if (!chain) break;
        ++stats_.requests;
      }
      uint32_t written = 0;
      if (!chain->readable().empty()) {
        ++stats_.malformed;  // the queue is device-writable only (5.4.6)
      } else if (const uint64_t budget = Budget(); budget == 0 && chain->writable_bytes() > 0) {
        // Out of budget: keep the chain and come back when the bucket holds
        // what it asks for (or a full second's worth, if it asks for more).
        const uint64_t rate = options_.rate_limit_bytes_per_second;
        const uint64_t want =
            std::min({chain->writable_bytes(), uint64_t{kMaxBytesPerRequest}, rate});
        const uint64_t missing = want * kNanos - nano_tokens_;  // nano_tokens_ < 1 byte here
        ++stats_.throttled;
        retry_scheduled_ = true;
        active_->held = std::move(chain);
        options_.schedule_retry(absl::Nanoseconds((missing + rate - 1) / rate));
        break;
      } else {
        written = Fill(*chain, memory, budget);
        if (budget != UINT64_MAX) nano_tokens_ -= written * kNanos;
      }
      stats_.bytes += written;
      if (!pass.AddUsed(0, std::move(*chain), written)) break;
    }
    pass.Settle();
  }
  pass.Deliver();
}

}  // namespace vmm
