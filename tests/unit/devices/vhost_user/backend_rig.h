// For tests of vmm's vhost-user devices against real back-ends
// (qemu-storage-daemon, virtiofsd), without KVM: the back-end as a child
// process, and the guest's side of the rings on memfd-backed RAM (what vmm
// gives a VM with a vhost-user device), each queue with a kick and a call
// eventfd as the transport's activation would hand over.
#ifndef VMM_TESTS_UNIT_DEVICES_VHOST_USER_BACKEND_RIG_H_
#define VMM_TESTS_UNIT_DEVICES_VHOST_USER_BACKEND_RIG_H_

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "base/event_loop.h"
#include "base/guest_memory.h"
#include "base/unique_fd.h"
#include "devices/virtio/device_spec.h"
#include "devices/virtio/virtio_device.h"
#include "gtest/gtest.h"
#include "tests/fakes/backend_process.h"
#include "tests/fakes/fake_virtio_context.h"
#include "tests/fakes/fake_virtqueue_driver.h"
#include "tests/fakes/loop_thread.h"

namespace vmm::testing {

// What device factories get from the VM: a running event loop.
class RigHost : public VirtioDeviceHost {
 public:
  EventLoop& loop() const override { return loop_.loop(); }
  void Notice(absl::string_view) const override {}

 private:
  mutable LoopThread loop_;
};

// The guest's side: `queues` rings of 16 entries in 8 MiB of memfd RAM.
class RingRig {
 public:
  explicit RingRig(int queues) {
    for (int q = 0; q < queues; ++q) {
      drivers_.push_back(std::make_unique<FakeVirtqueueDriver>(
          memory_, FakeVirtqueueDriverOptions{
                       .size = 16,
                       .ring_base = GuestAddress(0x10000 + 0x10000 * q),
                       .data_base = GuestAddress(0x100000 + 0x100000 * q)}));
      kick_.emplace_back(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
      call_.emplace_back(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    }
  }

  FakeVirtqueueDriver& driver(int q) { return *drivers_[q]; }
  FakeVirtioContext& context() { return context_; }
  const GuestMemory& memory() const { return memory_; }

  // DRIVER_OK with every queue enabled, fresh rings (a driver's bring-up
  // after a reset lays its rings out again).
  VirtioActivation Activation(uint64_t features = kVirtioFVersion1) {
    VirtioActivation a;
    a.memory = &memory_;
    a.features = features;
    a.context = &context_;
    for (size_t q = 0; q < drivers_.size(); ++q) {
      const FakeVirtqueueDriverOptions options = drivers_[q]->options();
      drivers_[q] = std::make_unique<FakeVirtqueueDriver>(memory_, options);
      a.queues.push_back(*Virtqueue::Create(drivers_[q]->config(), memory_));
      a.queue_enabled.push_back(true);
      a.kick_fds.push_back(kick_[q].get());
      a.call_fds.push_back(call_[q].get());
    }
    return a;
  }

  void Kick(int q) {
    const uint64_t one = 1;
    ASSERT_EQ(::write(kick_[q].get(), &one, 8), 8);
  }

  // Queue q's next completion, after its call (the guest's interrupt):
  // nullopt if none comes within 5 s. (A call may come without one:
  // libvhost-user signals once when it is given the call eventfd.)
  std::optional<FakeVirtqueueDriver::UsedEntry> WaitUsed(int q) {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (absl::Now() < deadline) {
      pollfd p{call_[q].get(), POLLIN, 0};
      if (::poll(&p, 1, 100) != 1) continue;
      uint64_t n;
      (void)!::read(call_[q].get(), &n, 8);
      if (auto used = drivers_[q]->PopUsed()) return used;
    }
    return std::nullopt;
  }

 private:
  GuestMemory memory_ = *GuestMemory::Create(
      std::vector<RamRange>{RamRange{GuestAddress(0), 8 << 20}}, GuestMemoryOptions{.memfd = true});
  std::vector<std::unique_ptr<FakeVirtqueueDriver>> drivers_;
  std::vector<UniqueFd> kick_, call_;
  FakeVirtioContext context_;
};

}  // namespace vmm::testing

#endif  // VMM_TESTS_UNIT_DEVICES_VHOST_USER_BACKEND_RIG_H_
