#include "base/event_loop.h"

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
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

// A paused VM's devices: held, a device fd's callback does not run though
// the fd is ready; a control fd's does; after Release() the device's runs,
// for a level-triggered and an edge-triggered watch alike.
TEST(EventLoopTest, HoldKeepsDeviceWorkBackAndReleaseDispatchesIt) {
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  auto level = EventFd::Create(), edge = EventFd::Create(), control = EventFd::Create();
  ASSERT_TRUE(level.ok() && edge.ok() && control.ok());
  std::atomic<int> level_runs{0}, edge_runs{0}, control_runs{0};
  ASSERT_TRUE((*loop)->Add(level->fd(), EPOLLIN, [&](uint32_t) {
    (void)level->Read();
    ++level_runs;
  }).ok());
  ASSERT_TRUE((*loop)->Add(edge->fd(), EPOLLIN | EPOLLET, [&](uint32_t) {
    (void)edge->Read();
    ++edge_runs;
  }).ok());
  ASSERT_TRUE((*loop)->Add(control->fd(), EPOLLIN, [&](uint32_t) {
    (void)control->Read();
    ++control_runs;
  }, EventLoop::Kind::kControl).ok());
  std::thread runner([&] { (void)(*loop)->Run(); });

  (*loop)->Hold();
  ASSERT_TRUE(level->Write(1).ok());
  ASSERT_TRUE(edge->Write(1).ok());
  ASSERT_TRUE(control->Write(1).ok());
  for (int i = 0; i < 200 && control_runs == 0; ++i) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(control_runs, 1) << "control work runs while held";
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(level_runs, 0);
  EXPECT_EQ(edge_runs, 0);

  (*loop)->Release();
  for (int i = 0; i < 200 && (level_runs == 0 || edge_runs == 0); ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(level_runs, 1);
  EXPECT_EQ(edge_runs, 1) << "an edge that came while held is not lost";
  (*loop)->Stop();
  runner.join();
}

// Hold() returns only once a device callback already running has finished;
// a watch added while held waits too.
TEST(EventLoopTest, HoldWaitsForARunningDeviceCallback) {
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  auto busy = EventFd::Create(), late = EventFd::Create();
  ASSERT_TRUE(busy.ok() && late.ok());
  absl::Notification entered;
  std::atomic<bool> finished{false};
  ASSERT_TRUE((*loop)->Add(busy->fd(), EPOLLIN, [&](uint32_t) {
    (void)busy->Read();
    entered.Notify();
    absl::SleepFor(absl::Milliseconds(200));
    finished = true;
  }).ok());
  std::thread runner([&] { (void)(*loop)->Run(); });
  ASSERT_TRUE(busy->Write(1).ok());
  entered.WaitForNotification();
  (*loop)->Hold();
  EXPECT_TRUE(finished) << "Hold returned while a device callback ran";

  std::atomic<int> late_runs{0};
  ASSERT_TRUE(late->Write(1).ok());
  ASSERT_TRUE((*loop)->Add(late->fd(), EPOLLIN, [&](uint32_t) {
    (void)late->Read();
    ++late_runs;
  }).ok());
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(late_runs, 0);
  (*loop)->Release();
  for (int i = 0; i < 200 && late_runs == 0; ++i) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(late_runs, 1);
  (*loop)->Stop();
  runner.join();
}

}  // namespace
}  // namespace vmm
