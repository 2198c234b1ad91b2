#include "devices/virtio/queue_pass.h"

#include <algorithm>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/strings/str_cat.h"

namespace vmm {

void QueuePass::Begin(VirtioActiveQueues& active) {
  active_ = &active;
  context_ = active.context;
}

bool QueuePass::TakeBudget(uint16_t queue) {
  for (auto& [q, n] : popped_) {
    if (q != queue) continue;
    if (n >= kChainBudget) {
      if (absl::c_find(again_, queue) == again_.end()) again_.push_back(queue);
      return false;
    }
    ++n;
    return true;
  }
  popped_.emplace_back(queue, 1);
  return true;
}

bool QueuePass::budget_spent(uint16_t queue) const {
  return absl::c_find(again_, queue) != again_.end();
}

std::optional<DescriptorChain> QueuePass::Pop(uint16_t queue) {
  if (active_ == nullptr || !active_->QueueUsable(queue)) return std::nullopt;
  if (!TakeBudget(queue)) return std::nullopt;
  absl::StatusOr<std::optional<DescriptorChain>> popped =
      active_->queues[queue].PopOrEnableNotification(*active_->memory);
  if (!popped.ok()) {
    Fail(queue, popped.status());
    return std::nullopt;
  }
  if (!popped->has_value()) RecordKicks(queue, true);
  return std::move(*popped);
}

std::optional<DescriptorChain> QueuePass::PopKicksOff(uint16_t queue, bool arm) {
  if (active_ == nullptr || !active_->QueueUsable(queue)) return std::nullopt;
  if (!TakeBudget(queue)) return std::nullopt;
  Virtqueue& q = active_->queues[queue];
  const GuestMemory& memory = *active_->memory;
  absl::StatusOr<std::optional<DescriptorChain>> popped = q.PopChain(memory);
  if (popped.ok() && !popped->has_value() && arm && KicksSet(queue) != true) {
    // Empty: kicks on, then one more look for a chain published before the
    // driver could see them on.
    if (!SetNotificationsEnabled(queue, true)) return std::nullopt;
    popped = q.PopChain(memory);
  }
  if (!popped.ok()) {
    Fail(queue, popped.status());
    return std::nullopt;
  }
  if (popped->has_value() && !SetNotificationsEnabled(queue, false)) return std::nullopt;
  return std::move(*popped);
}

bool QueuePass::AddUsed(uint16_t queue, DescriptorChain chain, uint32_t written) {
  if (active_ == nullptr || !active_->QueueUsable(queue)) return false;
  if (absl::Status s = active_->queues[queue].AddUsed(std::move(chain), written, *active_->memory);
      !s.ok()) {
    Fail(queue, s);
    return false;
  }
  MarkUsed(queue);
  return true;
}

bool QueuePass::SetNotificationsEnabled(uint16_t queue, bool enabled) {
  if (active_ == nullptr || !active_->QueueUsable(queue)) return false;
  if (KicksSet(queue) == enabled) return true;  // already so in this pass
  if (absl::Status s = active_->queues[queue].SetNotificationsEnabled(enabled, *active_->memory);
      !s.ok()) {
    Fail(queue, s);
    return false;
  }
  RecordKicks(queue, enabled);
  return true;
}

void QueuePass::Fail(uint16_t queue, const absl::Status& status) {
  if (active_ != nullptr) active_->broken = true;
  if (!failure_) failure_ = absl::StrCat(device_, " queue ", queue, ": ", status.message());
}

void QueuePass::MarkUsed(uint16_t queue) {
  if (std::find(used_.begin(), used_.end(), queue) == used_.end()) used_.push_back(queue);
}

void QueuePass::Settle() {
  if (active_ == nullptr || failure_) return;
  for (uint16_t queue : used_) {
    absl::StatusOr<bool> should = active_->queues[queue].ShouldNotify(*active_->memory);
    if (!should.ok()) {
      Fail(queue, should.status());
      return;
    }
    if (*should) notify_.push_back(queue);
  }
}

void QueuePass::Deliver() {
  if (context_ == nullptr) return;
  // Settle finds nothing to notify once the pass has failed: a broken
  // driver gets the reset request only.
  for (uint16_t queue : notify_) context_->NotifyUsed(queue);
  if (failure_) {
    context_->DeviceNeedsReset(*failure_);
    return;
  }
  for (uint16_t queue : again_) context_->ProcessAgain(queue);
}

std::optional<bool> QueuePass::KicksSet(uint16_t queue) const {
  for (const auto& [q, enabled] : kicks_) {
    if (q == queue) return enabled;
  }
  return std::nullopt;
}

void QueuePass::RecordKicks(uint16_t queue, bool enabled) {
  for (auto& [q, on] : kicks_) {
    if (q == queue) {
      on = enabled;
      return;
    }
  }
  kicks_.emplace_back(queue, enabled);
}

}  // namespace vmm
