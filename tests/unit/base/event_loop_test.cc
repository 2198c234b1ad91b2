#include "base/event_loop.h"

#include <thread>

#include "gtest/gtest.h"

namespace vmm {
namespace {

TEST(EventLoopTest, DispatchesEventFdAndStops) {
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  auto efd = EventFd::Create();
  ASSERT_TRUE(efd.ok());
  uint64_t seen = 0;
  ASSERT_TRUE((*loop)->Add(efd->fd(), EPOLLIN, [&](uint32_t) {
    seen += *efd->Read();
    (*loop)->Stop();
  }).ok());
  ASSERT_TRUE(efd->Write(3).ok());
  ASSERT_TRUE((*loop)->Run().ok());
  EXPECT_EQ(seen, 3u);
}

TEST(EventLoopTest, StopFromAnotherThreadEndsRun) {
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  std::thread stopper([&] { (*loop)->Stop(); });
  EXPECT_TRUE((*loop)->Run().ok());
  stopper.join();
}

TEST(EventLoopTest, DuplicateAndUnknownFdsAreErrors) {
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  auto efd = EventFd::Create();
  ASSERT_TRUE(efd.ok());
  ASSERT_TRUE((*loop)->Add(efd->fd(), EPOLLIN, [](uint32_t) {}).ok());
  EXPECT_FALSE((*loop)->Add(efd->fd(), EPOLLIN, [](uint32_t) {}).ok());
  EXPECT_TRUE((*loop)->Remove(efd->fd()).ok());
  EXPECT_FALSE((*loop)->Remove(efd->fd()).ok());
}

}  // namespace
}  // namespace vmm
