// The virtqueue driver (virtqueue_driver.h) for gtest unit tests: misuse of
// the driver fails the test that made it.
#ifndef VMM_TESTS_FAKES_FAKE_VIRTQUEUE_DRIVER_H_
#define VMM_TESTS_FAKES_FAKE_VIRTQUEUE_DRIVER_H_

#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "tests/fakes/virtqueue_driver.h"

namespace vmm::testing {

using FakeVirtqueueDriverOptions = VirtqueueDriverOptions;

class FakeVirtqueueDriver : public VirtqueueDriver {
 public:
  explicit FakeVirtqueueDriver(const GuestMemory& memory, Options options = {})
      : VirtqueueDriver(memory, FailingTheTest(std::move(options))) {}

 private:
  static Options FailingTheTest(Options options) {
    if (!options.on_error) {
      options.on_error = [](const std::string& what) { ADD_FAILURE() << what; };
    }
    return options;
  }
};

}  // namespace vmm::testing

#endif  // VMM_TESTS_FAKES_FAKE_VIRTQUEUE_DRIVER_H_
