// For tests of vhost in the host kernel: a receive ring (0) and a transmit
// ring (1) laid out in the test's own memory by the tests' virtqueue driver,
// as a guest's driver would, and handed to a VhostKernel with a kick and a
// call eventfd each.
#ifndef VMM_TESTS_KVM_VHOST_RINGS_H_
#define VMM_TESTS_KVM_VHOST_RINGS_H_

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

#include "base/guest_memory.h"
#include "base/unique_fd.h"
#include "devices/vhost/vhost_kernel.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_virtqueue_driver.h"
#include "tests/fakes/test_guest_memory.h"

namespace vmm::testing {

struct VhostRings {
  static constexpr uint64_t kVirtioFVersion1 = 1ull << 32;

  GuestMemory memory = TestGuestMemory(4 << 20);
  FakeVirtqueueDriver rx{memory, {.size = 16,
                                  .ring_base = GuestAddress(0x10000),
                                  .data_base = GuestAddress(0x100000)}};
  FakeVirtqueueDriver tx{memory, {.size = 16,
                                  .ring_base = GuestAddress(0x20000),
                                  .data_base = GuestAddress(0x200000)}};
  UniqueFd kick[2], call[2];

  // VERSION_1 (which the kernel must offer), the memory table and both
  // rings with their eventfds. Fails the test (check HasFatalFailure) if the
  // kernel refuses any of it.
  void Attach(VhostKernel& vhost) {
    absl::StatusOr<uint64_t> offered = vhost.GetFeatures();
    ASSERT_TRUE(offered.ok()) << offered.status();
    ASSERT_NE(*offered & kVirtioFVersion1, 0u);
    ASSERT_TRUE(vhost.SetFeatures(kVirtioFVersion1).ok());
    ASSERT_TRUE(vhost.SetMemTable(memory).ok());
    FakeVirtqueueDriver* drivers[2] = {&rx, &tx};
    for (uint32_t q = 0; q < 2; ++q) {
      kick[q].Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
      call[q].Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
      ASSERT_TRUE(vhost.SetVring(q, drivers[q]->config(), memory, 0).ok());
      ASSERT_TRUE(vhost.SetVringKick(q, kick[q].get()).ok());
      ASSERT_TRUE(vhost.SetVringCall(q, call[q].get()).ok());
    }
  }

  // What a guest's notify would do: wake the kernel for ring `q`.
  void Kick(int q) {
    const uint64_t one = 1;
    ASSERT_EQ(::write(kick[q].get(), &one, sizeof(one)), 8);
  }
};

}  // namespace vmm::testing

#endif  // VMM_TESTS_KVM_VHOST_RINGS_H_
