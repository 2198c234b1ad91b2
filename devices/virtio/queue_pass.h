// One pass of a device over its queues, the part every virtio device shares:
// popping chains (asking for a kick when a queue runs dry), returning them to
// the used ring, deciding which queues the driver wants an interrupt for, and
// turning a driver's broken ring into DEVICE_NEEDS_RESET. A device supplies
// only what to do with each chain.
//
// Threads: everything up to Settle() runs under the device's lock (it reads
// and writes the rings); Deliver() runs after the lock is released, because
// the transport's NotifyUsed / DeviceNeedsReset may take the transport's own
// lock, which is held while it calls into the device.
//
//   QueuePass pass("virtio-rng");
//   {
//     absl::MutexLock lock(&mu_);
//     if (!active_ || !active_->QueueUsable(0)) return;
//     pass.Begin(*active_);
//     while (std::optional<DescriptorChain> chain = pass.Pop(0)) {
//       const uint32_t written = Fill(*chain);
//       if (!pass.AddUsed(0, std::move(*chain), written)) break;
//     }
//     pass.Settle();
//   }
//   pass.Deliver();
#ifndef VMM_DEVICES_VIRTIO_QUEUE_PASS_H_
#define VMM_DEVICES_VIRTIO_QUEUE_PASS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "devices/virtio/descriptor_chain.h"
#include "devices/virtio/virtio_device.h"

namespace vmm {

class QueuePass {
 public:
  // Chains one pass pops from one queue at most. A driver that keeps a ring
  // full cannot hold the event loop on one device: at the budget Pop says
  // "empty" without asking for a kick, and Deliver asks the transport to run
  // the queue again (VirtioDeviceContext::ProcessAgain) after the loop has
  // served whatever else is ready. A whole ring's worth (the devices' queue
  // sizes are at most 256), so a driver that fills its ring and kicks once
  // is served in one pass.
  static constexpr int kChainBudget = 256;

  // `device` names the device in the failure message ("virtio-blk").
  explicit QueuePass(absl::string_view device) : device_(device) {}
  QueuePass(const QueuePass&) = delete;
  QueuePass& operator=(const QueuePass&) = delete;

  // Starts the pass on `active` (under the device's lock, which guards it
  // until Settle). Without Begin the pass is empty: Deliver does nothing.
  void Begin(VirtioActiveQueues& active);

  // The next chain of `queue` (Virtqueue::PopOrEnableNotification), or
  // nullopt when it is empty (a kick is then asked for), the driver broke
  // it (the pass has failed) or the pass popped kChainBudget chains from it
  // (it is run again).
  std::optional<DescriptorChain> Pop(uint16_t queue);
  // For a device that drains a busy queue with kicks off (it calls
  // SetNotificationsEnabled(queue, false) first, so the driver need not kick
  // while it works): the next chain, kicks turned off again if they were on.
  // When the queue is empty and `arm` is set, kicks go back on and it looks
  // once more. nullopt when empty or failed. A device with work of its own
  // still to finish (virtio-blk's queued I/O) passes arm=false, finishes it,
  // and pops again.
  std::optional<DescriptorChain> PopKicksOff(uint16_t queue, bool arm = true);
  // Returns `chain` with `written` bytes written; false if that failed (the
  // pass has failed).
  bool AddUsed(uint16_t queue, DescriptorChain chain, uint32_t written);
  // Sets (true) or clears VIRTQ_USED_F_NO_NOTIFY / avail_event on `queue`
  // for a device that drains with kicks off; false if that failed.
  bool SetNotificationsEnabled(uint16_t queue, bool enabled);
  // The driver broke the protocol on `queue`: the queues are left alone from
  // now on (VirtioActiveQueues::broken) and Deliver asks for
  // DEVICE_NEEDS_RESET. The first failure's message is the one reported.
  void Fail(uint16_t queue, const absl::Status& status);
  bool failed() const { return failure_.has_value(); }

  // Under the lock, at the end: asks each queue that got used entries
  // whether the driver wants an interrupt (EVENT_IDX / NO_INTERRUPT).
  void Settle();
  // After the lock: the interrupts, then DEVICE_NEEDS_RESET if it failed,
  // else ProcessAgain for each queue whose budget ran out.
  void Deliver();
  // Whether `queue` ran out of budget in this pass.
  bool budget_spent(uint16_t queue) const;

 private:
  std::string device_;
  VirtioActiveQueues* active_ = nullptr;
  VirtioDeviceContext* context_ = nullptr;
  absl::InlinedVector<uint16_t, 4> used_;    // each queue once, in first-use order
  absl::InlinedVector<uint16_t, 4> notify_;
  // What this pass last set each queue's kicks to (a queue not listed: as
  // the pass found it).
  absl::InlinedVector<std::pair<uint16_t, bool>, 4> kicks_;
  // Chains popped per queue in this pass.
  absl::InlinedVector<std::pair<uint16_t, int>, 4> popped_;
  // Counts a pop from `queue`; false (and the queue is marked to run again)
  // once the budget is spent.
  bool TakeBudget(uint16_t queue);
  absl::InlinedVector<uint16_t, 4> again_;
  // `queue` got a used entry: Settle asks it whether to interrupt.
  void MarkUsed(uint16_t queue);
  std::optional<bool> KicksSet(uint16_t queue) const;
  void RecordKicks(uint16_t queue, bool enabled);
  std::optional<std::string> failure_;
};

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_QUEUE_PASS_H_
