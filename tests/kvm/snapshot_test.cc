// Issue 15 (first part): a paused guest's CPU state, interrupt controllers,
// clock and RAM saved by Vm::SaveSnapshot and restored into new VMs
// (VmConfig::restore_from), which go on from where it was paused. count.elf
// counts in memory and on COM1: a restored VM continues the count instead
// of starting again. Two VMs restored from one snapshot run side by side.
// Mismatched or damaged snapshots are one-line errors.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "devices/virtio/block/block_config.h"
#include "devices/virtio/rng/rng_config.h"
#include "tests/kvm/durability_image.h"
#include "tests/kvm/guest_console.h"
#include "tests/kvm/subprocess.h"
#include "vmm/vmm.h"

namespace vmm::testing {
namespace {

using ::testing::HasSubstr;

// The numbers of the complete "count N" lines count.elf printed, in order.
std::vector<uint64_t> Counts(Console& console) {
  std::vector<uint64_t> counts;
  const std::string text = console.Get();
  // Only complete lines: whatever follows the last newline is still
  // being printed. (No std::regex: GCC 12's <regex> trips
  // -Wmaybe-uninitialized in the sanitizer builds.)
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  lines.pop_back();
  for (absl::string_view l : lines) {
    const size_t at = l.find("count ");
    if (at == absl::string_view::npos) continue;
    uint64_t n;
    if (absl::SimpleAtoi(l.substr(at + 6), &n)) counts.push_back(n);
  }
  return counts;
}

bool WaitForCounts(Console& console, size_t n) {
  return WaitUntil([&] { return Counts(console).size() >= n; });
}

VmConfig CountConfig(Console& console) {
  VmConfig config;
  config.kernel_path = GuestPath("count.elf");
  config.memory_bytes = 64 << 20;
  config.serial = console.Config();
  config.timeout = absl::Seconds(120);
  return config;
}

std::string SnapshotDir(const std::string& name) {
  return ::testing::TempDir() + "/snapshot-" + name;
}

// Runs count.elf until it has counted a little, snapshots it paused into
// `dir`, stops it; returns the last count it printed.
uint64_t CountThenSnapshot(const std::string& dir) {
  Console console;
  auto vm = Vm::Create(CountConfig(console));
  EXPECT_TRUE(vm.ok()) << vm.status();
  if (!vm.ok()) return 0;
  std::thread runner([&] { (*vm)->Run(); });
  EXPECT_TRUE(WaitForCounts(console, 5));
  EXPECT_EQ((*vm)->SaveSnapshot(dir).code(), absl::StatusCode::kFailedPrecondition)
      << "a running VM is refused";
  EXPECT_TRUE((*vm)->Pause().ok());
  const absl::Status saved = (*vm)->SaveSnapshot(dir);
  EXPECT_TRUE(saved.ok()) << saved;
  const std::vector<uint64_t> counts = Counts(console);
  (*vm)->RequestStop();
  runner.join();
  return counts.empty() ? 0 : counts.back();
}

TEST(SnapshotTest, ARestoredGuestContinuesWhereItWasPaused) {
  REQUIRE_KVM();
  const std::string dir = SnapshotDir("continue");
  const uint64_t last = CountThenSnapshot(dir);
  ASSERT_GE(last, 5u);
  struct stat st;
  ASSERT_EQ(::stat((dir + "/memory").c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), 64ull << 20);
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, 16ull << 20)
      << "guest RAM never written is a hole in the memory file";

  Console console;
  VmConfig config = CountConfig(console);
  config.restore_from = dir;
  config.kernel_path.clear();  // the snapshot's memory holds the guest
  auto vm = Vm::Create(std::move(config));
  ASSERT_TRUE(vm.ok()) << vm.status();
  std::thread runner([&] { (*vm)->Run(); });
  ASSERT_TRUE(WaitForCounts(console, 3)) << console.Get();
  (*vm)->RequestStop();
  runner.join();
  const std::vector<uint64_t> counts = Counts(console);
  EXPECT_GT(counts.front(), last - 1) << "the restored guest counted from the start again:\n"
                                      << console.Get();
  EXPECT_LE(counts.front(), last + 2) << "the restored guest skipped ahead";
  for (size_t i = 1; i < counts.size(); ++i) EXPECT_EQ(counts[i], counts[i - 1] + 1);
  EXPECT_THAT(console.Get(), ::testing::Not(HasSubstr("count 1\n")));
}

// Guest RAM is mapped from the snapshot copy-on-write, not read in: a
// restored 512 MiB guest that touches a few pages costs a few pages.
TEST(SnapshotTest, ARestoreCostsThePagesTheGuestTouchesNotItsRam) {
  REQUIRE_KVM();
  const std::string dir = SnapshotDir("big");
  {
    Console console;
    VmConfig config = CountConfig(console);
    config.memory_bytes = 512ull << 20;
    auto vm = Vm::Create(std::move(config));
    ASSERT_TRUE(vm.ok()) << vm.status();
    std::thread runner([&] { (*vm)->Run(); });
    ASSERT_TRUE(WaitForCounts(console, 3));
    ASSERT_TRUE((*vm)->Pause().ok());
    ASSERT_TRUE((*vm)->SaveSnapshot(dir).ok());
    (*vm)->RequestStop();
    runner.join();
  }
  Console console;
  VmConfig config = CountConfig(console);
  config.memory_bytes = 512ull << 20;
  config.restore_from = dir;
  auto vm = Vm::Create(std::move(config));
  ASSERT_TRUE(vm.ok()) << vm.status();
  std::thread runner([&] { (*vm)->Run(); });
  EXPECT_TRUE(WaitForCounts(console, 2));
  (*vm)->RequestStop();
  runner.join();
  const uint64_t rss = (*vm)->stats().rss_at_first_run_bytes;
  EXPECT_GT(rss, 0u);
  EXPECT_LT(rss, 128ull << 20) << "the restore read all 512 MiB of RAM in";
}

TEST(SnapshotTest, TwoVmsFromOneSnapshotRunSideBySide) {
  REQUIRE_KVM();
  const std::string dir = SnapshotDir("twice");
  const uint64_t last = CountThenSnapshot(dir);
  ASSERT_GE(last, 5u);
  Console first_console, second_console;
  VmConfig first_config = CountConfig(first_console), second_config = CountConfig(second_console);
  first_config.restore_from = second_config.restore_from = dir;
  auto first = Vm::Create(std::move(first_config));
  auto second = Vm::Create(std::move(second_config));
  ASSERT_TRUE(first.ok() && second.ok());
  std::thread a([&] { (*first)->Run(); });
  std::thread b([&] { (*second)->Run(); });
  EXPECT_TRUE(WaitForCounts(first_console, 5));
  EXPECT_TRUE(WaitForCounts(second_console, 5));
  (*first)->RequestStop();
  (*second)->RequestStop();
  a.join();
  b.join();
  for (Console* console : {&first_console, &second_console}) {
    const std::vector<uint64_t> counts = Counts(*console);
    ASSERT_FALSE(counts.empty());
    EXPECT_GE(counts.front(), last) << console->Get();
  }
}

TEST(SnapshotTest, AMismatchedOrDamagedSnapshotIsOneLine) {
  REQUIRE_KVM();
  const std::string dir = SnapshotDir("damaged");
  ASSERT_GE(CountThenSnapshot(dir), 5u);
  {
    Console console;
    VmConfig config = CountConfig(console);
    config.cpus = 2;
    config.restore_from = dir;
    auto vm = Vm::Create(std::move(config));
    ASSERT_FALSE(vm.ok());
    EXPECT_EQ(vm.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(vm.status().message(), HasSubstr("1 vCPUs"));
  }
  {
    // One byte of the state file changed.
    std::fstream state(dir + "/state", std::ios::in | std::ios::out | std::ios::binary);
    state.seekp(40);
    state.put('\x5a');
  }
  Console console;
  VmConfig config = CountConfig(console);
  config.restore_from = dir;
  auto vm = Vm::Create(std::move(config));
  ASSERT_FALSE(vm.ok());
  EXPECT_EQ(vm.status().code(), absl::StatusCode::kDataLoss) << vm.status();
  EXPECT_THAT(vm.status().message(), HasSubstr("corrupted"));
  EXPECT_EQ(std::string(vm.status().message()).find('\n'), std::string::npos);
  config = CountConfig(console);
  config.restore_from = SnapshotDir("never-written");
  vm = Vm::Create(std::move(config));
  ASSERT_FALSE(vm.ok());
  EXPECT_THAT(vm.status().message(), HasSubstr("never-written/state"));
}

// Pauses `vm` (running on `runner`) once `ready` holds, snapshots it into
// `dir` and stops it.
void SnapshotWhen(Vm& vm, std::thread& runner, const std::function<bool()>& ready,
                  const std::string& dir, Console& console) {
  ASSERT_TRUE(WaitUntil(ready)) << console.Get();
  ASSERT_TRUE(vm.Pause().ok()) << "the guest ended too soon:\n" << console.Get();
  const absl::Status saved = vm.SaveSnapshot(dir);
  vm.RequestStop();
  runner.join();
  ASSERT_TRUE(saved.ok()) << saved;
}

// A guest using virtio-rng through MSI-X, paused while the device holds a
// request back for its rate limit: the restored device offers that request
// again and the guest finishes its checks.
TEST(SnapshotTest, AGuestUsingVirtioRngFinishesAfterARestore) {
  REQUIRE_KVM();
  const std::string dir = SnapshotDir("rng");
  auto config_for = [](Console& console) {
    VmConfig config = CountConfig(console);
    config.kernel_path = GuestPath("rng.elf");
    // 4 requests of 256 bytes at 256 bytes/s: the guest waits for its
    // device for seconds.
    config.cmdline = "requests=4 bytes=256 irq=on";
    RngConfig rng;
    rng.rate_limit_bytes_per_second = 256;
    config.devices = {rng};
    return config;
  };
  {
    Console console;
    auto vm = Vm::Create(config_for(console));
    ASSERT_TRUE(vm.ok()) << vm.status();
    std::thread runner([&] { (*vm)->Run(); });
    SnapshotWhen(
        **vm, runner,
        [&] {
          for (const DeviceInfo& device : (*vm)->devices()) {
            if (device.active) return true;
          }
          return false;
        },
        dir, console);
  }
  Console console;
  VmConfig config = config_for(console);
  config.restore_from = dir;
  auto vm = Vm::Create(std::move(config));
  ASSERT_TRUE(vm.ok()) << vm.status();
  const ExitStatus status = (*vm)->Run();
  EXPECT_EQ(status.reason, ExitStatus::Reason::kDebugExit) << status.message << console.Get();
  EXPECT_EQ(status.debug_code, 0u) << console.Get();
  EXPECT_THAT(console.Get(), HasSubstr(" in 4 requests ok"));
  EXPECT_THAT(console.Get(), HasSubstr("rng: 1 devices ok"));
  EXPECT_THAT(console.Get(), ::testing::Not(HasSubstr("rng: cmdline:")))
      << "the restored guest started again";
}

// The generations blk.elf reported flushed ("durability: flushed <g>"), in
// order, from the complete lines of `text`.
std::vector<uint64_t> Flushed(const std::string& text) {
  std::vector<uint64_t> out;
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  lines.pop_back();
  for (absl::string_view l : lines) {
    uint64_t g;
    if (absl::ConsumePrefix(&l, "durability: flushed ") && absl::SimpleAtoi(l, &g)) {
      out.push_back(g);
    }
  }
  return out;
}

struct DiskCase {
  const char* name;
  VirtioTransport transport;
  const char* cmdline;  // blk.elf's: where to look, how interrupts come
};

void PrintTo(const DiskCase& c, std::ostream* os) { *os << c.name; }

class SnapshotDiskTest : public ::testing::TestWithParam<DiskCase> {};

// A guest writing its disk generation after generation (blk.elf
// durability=G: two blocks and a header per generation, each flushed) is
// snapshotted mid-run and restored: it goes on from the generation it had
// reached — its queue, its interrupts (MSI-X, a level INTx, an mmio edge)
// and its driver's idea of the device intact — and the image holds every
// generation exactly as written.
TEST_P(SnapshotDiskTest, ADiskWritingGuestGoesOnAfterARestore) {
  REQUIRE_KVM();
  constexpr uint32_t kGenerations = 40;
  constexpr uint64_t kImageBytes = 1 << 20;
  const std::string dir = SnapshotDir(absl::StrCat("disk-", GetParam().name));
  const std::string image = absl::StrCat(::testing::TempDir(), "/snapshot-disk-",
                                         GetParam().name, "-", ::getpid(), ".img");
  {
    std::ofstream out(image, std::ios::binary | std::ios::trunc);
    out.seekp(kImageBytes - 1);
    out.put('\0');
  }
  auto config_for = [&](Console& console) {
    VmConfig config = CountConfig(console);
    config.kernel_path = GuestPath("blk.elf");
    // A 16-entry queue wraps before the snapshot (three requests per
    // generation): a restored device that lost its place in the ring
    // cannot go on by accident. Waits of 30 s, not the guest's 3 s: in a
    // loaded nested lane the first interrupt after a restore once took
    // longer than 3 s (pci_intx, 1 run in ~50); a lost one still fails.
    config.cmdline = absl::StrCat("durability=", kGenerations, " qsize=16 timeout_ms=30000 ",
                                  GetParam().cmdline);
    DiskConfig disk;
    disk.path = image;
    disk.transport = GetParam().transport;
    config.devices = {disk};
    return config;
  };
  uint64_t reached = 0;
  {
    Console console;
    auto vm = Vm::Create(config_for(console));
    ASSERT_TRUE(vm.ok()) << vm.status();
    std::thread runner([&] { (*vm)->Run(); });
    SnapshotWhen(
        **vm, runner, [&] { return Flushed(console.Get()).size() >= 8; }, dir, console);
    ASSERT_FALSE(Flushed(console.Get()).empty());
    reached = Flushed(console.Get()).back();
    ASSERT_LT(reached, kGenerations) << "the guest finished before the snapshot";
  }
  Console console;
  VmConfig config = config_for(console);
  config.restore_from = dir;
  auto vm = Vm::Create(std::move(config));
  ASSERT_TRUE(vm.ok()) << vm.status();
  const ExitStatus status = (*vm)->Run();
  EXPECT_EQ(status.reason, ExitStatus::Reason::kDebugExit) << status.message << console.Get();
  EXPECT_EQ(status.debug_code, 0u) << console.Get();
  const std::vector<uint64_t> flushed = Flushed(console.Get());
  ASSERT_FALSE(flushed.empty()) << console.Get();
  EXPECT_GE(flushed.front(), reached) << "the restored guest started again:\n" << console.Get();
  EXPECT_LE(flushed.front(), reached + 2) << console.Get();
  EXPECT_EQ(flushed.back(), kGenerations);
  ExpectDurabilityImage(image, kImageBytes, kGenerations, /*block=*/1, kGenerations,
                        GetParam().name);
  std::remove(image.c_str());
}

INSTANTIATE_TEST_SUITE_P(
    Transports, SnapshotDiskTest,
    ::testing::Values(DiskCase{"pci_msix", VirtioTransport::kPci, "mmio=off irq=msix"},
                      DiskCase{"pci_intx", VirtioTransport::kPci, "mmio=off irq=intx"},
                      DiskCase{"mmio", VirtioTransport::kMmio, "pci=off irq=mmio-irq"}),
    [](const ::testing::TestParamInfo<DiskCase>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace vmm::testing
