// Adaptive polling of a virtqueue after a pass: instead of turning kicks
// back on and sleeping as soon as the ring runs dry, the device watches the
// avail ring for a while with kicks still off, so a driver that submits its
// next request soon costs neither a kick (a VM exit and an eventfd wake-up)
// nor a sleep. QEMU's iothreads do this (poll-max-ns); so does this class,
// with QEMU's rule for the window: a request that came while polling leaves
// the window alone; one that came later, but within the maximum, doubles it
// (from 4 µs); one that came after the maximum resets it to zero, so an idle
// device stops polling.
//
// It is a pure policy: the device tells it when a pass began and ended and
// when the ring was armed, and calls Spin with a check of its ring. Not
// thread-safe: a device keeps it under its own lock.
#ifndef VMM_DEVICES_VIRTIO_QUEUE_POLLER_H_
#define VMM_DEVICES_VIRTIO_QUEUE_POLLER_H_

#include <optional>

#include "absl/functional/function_ref.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace vmm {

class QueuePoller {
 public:
  // The window's first step when it grows from zero (QEMU's too).
  static constexpr absl::Duration kInitialWindow = absl::Microseconds(4);
  // The default maximum (QEMU's poll-max-ns default): about what a kick and
  // a wake-up cost on a loaded host.
  static constexpr absl::Duration kDefaultMax = absl::Microseconds(32);

  // `max` zero: never polls.
  explicit QueuePoller(absl::Duration max) : max_(max) {}

  // The default for a device that was not told: kDefaultMax when this
  // process may run on two CPUs or more, zero on one (polling there only
  // takes the CPU from the vCPU that would submit the next request).
  static absl::Duration DefaultMax();

  absl::Duration max() const { return max_; }
  absl::Duration window() const { return window_; }

  // A pass is starting at `now`: if the ring was armed (a miss), the time
  // since the previous pass ended adjusts the window.
  void PassStarted(absl::Time now);
  // A pass found the ring dry at `now` (the start of the wait the window
  // is judged by).
  void PassEnded(absl::Time now) { last_end_ = now; }
  // Looks at the ring (`has_work`) until it says yes or `window` (window(),
  // read under the device's lock) passes; true if it said yes. With a zero
  // window it does not look: false. Runs without the device's lock;
  // `has_work` takes it for each look.
  static bool Spin(absl::Duration window, absl::FunctionRef<bool()> has_work);
  // Kicks were turned back on: the device will sleep until the next one.
  void Armed() { armed_ = true; }

 private:
  void Adjust(absl::Duration blocked);

  const absl::Duration max_;
  absl::Duration window_ = absl::ZeroDuration();
  std::optional<absl::Time> last_end_;
  bool armed_ = false;
};

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_QUEUE_POLLER_H_
