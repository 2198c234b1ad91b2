// Durability: no write the guest saw flushed is lost when the VMM dies.
//
// blk.elf (durability=G) writes generation after generation of data and
// flushes each, printing "durability: flushed <g>" once the FLUSH has
// completed. The host reads the console as it arrives, kills the vmm with
// SIGKILL right after a chosen generation is reported, and then checks the
// image: every generation reported flushed is intact, and no sector holds
// anything but what the guest wrote there or its initial zeros. Many
// iterations, with the kill at varying points, over buffered and O_DIRECT
// images.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/kvm/durability_image.h"
#include "tests/kvm/subprocess.h"

namespace vmm::testing {
namespace {

constexpr int kIterations = 40;
// Generations the guest would write if not killed: far more than it reaches
// before the kill (it must still be writing when SIGKILL arrives).
constexpr uint32_t kGenerations = 500;
// 4 MiB: 1 + 2 * kGenerations blocks of up to 4096 bytes (direct=on).
constexpr uint64_t kImageBytes = 4 << 20;
static_assert((1 + kDurabilityDataBlocks * kGenerations) * 4096 <= kImageBytes);

struct KilledRun {
  bool reached = false;       // the target generation was reported
  uint32_t last_flushed = 0;  // the highest generation reported flushed
  int wait_status = 0;
  std::string out;
  std::string err;
};

// The highest "durability: flushed <g>" among the complete lines of `out`.
uint32_t LastFlushed(const std::string& out) {
  uint32_t last = 0;
  size_t pos = 0;
  static constexpr char kPrefix[] = "durability: flushed ";
  while ((pos = out.find(kPrefix, pos)) != std::string::npos) {
    pos += sizeof(kPrefix) - 1;
    size_t end = out.find('\n', pos);
    if (end == std::string::npos) break;
    uint32_t g = 0;
    if (absl::SimpleAtoi(out.substr(pos, end - pos), &g)) last = std::max(last, g);
  }
  return last;
}

// Runs the vmm on `disk_option` with the console on a pipe and SIGKILLs it
// as soon as generation `kill_after` is reported flushed.
KilledRun RunAndKill(const std::string& disk_option, uint32_t kill_after) {
  KilledRun run;
  std::string err_path = absl::StrCat(::testing::TempDir(), "/durability-", getpid(), ".err");
  int out_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return run;
  }
  std::vector<std::string> args = {VmmBinary(), "--kernel", GuestPath("blk.elf"), "--memory",
                                   "64M",       "--timeout", "60",         "--disk",
                                   disk_option, "--cmdline",
                                   absl::StrCat("disks=1 durability=", kGenerations)};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int null_fd = open("/dev/null", O_RDONLY);
    int err_fd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (null_fd < 0 || err_fd < 0 || dup2(null_fd, 0) < 0 || dup2(out_pipe[1], 1) < 0 ||
        dup2(err_fd, 2) < 0) {
      _exit(127);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out_pipe[1]);
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  char buf[4096];
  bool killed = false;
  while (true) {
    if (!killed) {
      int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
      pollfd p{out_pipe[0], POLLIN, 0};
      if (ms <= 0 || poll(&p, 1, ms) == 0) {
        ADD_FAILURE() << "generation " << kill_after << " not reported within 60 s";
        kill(pid, SIGKILL);
        killed = true;
        continue;
      }
    }
    ssize_t n = read(out_pipe[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the vmm is gone
    run.out.append(buf, static_cast<size_t>(n));
    if (!killed && LastFlushed(run.out) >= kill_after) {
      kill(pid, SIGKILL);  // right after the report: the guest may be mid-write
      killed = true;
      run.reached = true;
    }
  }
  close(out_pipe[0]);
  waitpid(pid, &run.wait_status, 0);
  // What the pipe still held when the vmm died counts too: the guest printed
  // it after a completed FLUSH.
  run.last_flushed = LastFlushed(run.out);
  {
    std::ifstream err(err_path);
    run.err.assign(std::istreambuf_iterator<char>(err), {});
  }
  std::remove(err_path.c_str());
  return run;
}

void ExpectNothingFlushedLost(const std::string& path, uint32_t block, uint32_t last_flushed,
                              const std::string& context) {
  ExpectDurabilityImage(path, kImageBytes, kGenerations, block, last_flushed, context);
}

TEST(DurabilityTest, NoFlushedWriteIsLostWhenTheVmmIsKilled) {
  REQUIRE_KVM();
  // Per process: test runs from several build trees may share /tmp.
  std::string img = absl::StrCat(::testing::TempDir(), "/durability-", getpid(), ".img");
  int checked = 0;
  uint64_t generations_checked = 0;
  for (int i = 0; i < kIterations; ++i) {
    // Alternate the page cache and O_DIRECT; kill after 1 to 12 generations.
    bool direct = i % 2 == 1;
    uint32_t kill_after = 1 + static_cast<uint32_t>(i * 5) % 12;
    {
      std::ofstream zero(img, std::ios::binary | std::ios::trunc);
    }
    ASSERT_EQ(truncate(img.c_str(), kImageBytes), 0);
    std::string context = absl::StrCat("iteration ", i, direct ? " (direct=on)" : "",
                                       ", kill after generation ", kill_after);
    KilledRun run = RunAndKill(absl::StrCat("path=", img, direct ? ",direct=on" : ""), kill_after);
    ASSERT_TRUE(run.reached) << context << "\n" << run.out << run.err;
    ASSERT_TRUE(WIFSIGNALED(run.wait_status) && WTERMSIG(run.wait_status) == SIGKILL)
        << context << ": the vmm ended before the kill\n"
        << run.out << run.err;
    // direct=on makes the disk's block 4096 bytes (O_DIRECT alignment).
    uint32_t block = direct ? 8 : 1;
    ASSERT_NE(run.out.find(absl::StrCat("durability: block ", block * 512, " bytes")),
              std::string::npos)
        << context << "\n"
        << run.out;
    ExpectNothingFlushedLost(img, block, run.last_flushed, context);
    if (HasFailure()) break;
    ++checked;
    generations_checked += run.last_flushed;
  }
  std::remove(img.c_str());
  EXPECT_EQ(checked, kIterations);
  std::printf("durability: %d of %d iterations passed (SIGKILL right after a reported "
              "flush); %lu flushed generations found intact\n",
              checked, kIterations, static_cast<unsigned long>(generations_checked));
  RecordProperty("iterations", checked);
}

}  // namespace
}  // namespace vmm::testing
