#include "base/cancellation.h"

#include <poll.h>

#include <thread>

#include "gtest/gtest.h"

namespace vmm {
namespace {

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

TEST(CancellationTest, UncancelledIsOkAndItsFdIsQuiet) {
  absl::StatusOr<std::unique_ptr<Cancellation>> cancel = Cancellation::Create();
  ASSERT_TRUE(cancel.ok()) << cancel.status();
  EXPECT_FALSE((*cancel)->cancelled());
  EXPECT_TRUE((*cancel)->status().ok());
  EXPECT_FALSE(Readable((*cancel)->fd()));
  EXPECT_TRUE(CancellationStatus(nullptr).ok());
}

TEST(CancellationTest, TheFirstReasonStaysAndTheFdStaysReadable) {
  absl::StatusOr<std::unique_ptr<Cancellation>> cancel = Cancellation::Create();
  ASSERT_TRUE(cancel.ok());
  (*cancel)->Cancel("start-up interrupted by SIGINT");
  (*cancel)->Cancel("start-up interrupted by SIGTERM");
  EXPECT_TRUE((*cancel)->cancelled());
  EXPECT_EQ((*cancel)->status(), absl::CancelledError("start-up interrupted by SIGINT"));
  EXPECT_EQ(CancellationStatus(cancel->get()).code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(Readable((*cancel)->fd()));
  EXPECT_TRUE(Readable((*cancel)->fd())) << "a poll must not consume it";
}

TEST(CancellationTest, AnotherThreadWakesAPollerWaitingOnTheFd) {
  absl::StatusOr<std::unique_ptr<Cancellation>> cancel = Cancellation::Create();
  ASSERT_TRUE(cancel.ok());
  std::thread canceller([&] { (*cancel)->Cancel("stop"); });
  pollfd p{(*cancel)->fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 10000), 1);
  canceller.join();
  EXPECT_FALSE((*cancel)->status().ok());
}

}  // namespace
}  // namespace vmm
