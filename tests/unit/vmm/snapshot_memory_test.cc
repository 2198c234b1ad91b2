// The snapshot's memory file without KVM: guest RAM written sparsely (pages
// never written are holes) and read back — mapped copy-on-write over plain
// RAM, so writes after the restore never reach the file, and copied into
// memfd-backed RAM — and a file of another size refused.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "base/guest_memory.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "vmm/snapshot.h"

namespace vmm {
namespace {

using ::testing::HasSubstr;

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/snapmem-" + std::to_string(getpid()) +
         "-" + name;
}

GuestMemory Ram(uint64_t bytes, bool memfd = false) {
  RamRange range{GuestAddress(0), bytes};
  GuestMemory::Options options;
  options.memfd = memfd;
  auto memory = GuestMemory::Create(absl::Span<const RamRange>(&range, 1), options);
  EXPECT_TRUE(memory.ok()) << memory.status();
  return std::move(memory).value();
}

TEST(SnapshotMemoryTest, PagesNeverWrittenAreHolesAndTheRestReadsBack) {
  const std::string path = TempPath("sparse");
  GuestMemory saved = Ram(16 << 20);
  ASSERT_TRUE(saved.Write(GuestAddress(0x1000), uint64_t{0x1122334455667788}).ok());
  ASSERT_TRUE(saved.Write(GuestAddress(0xf00000), uint32_t{0xdeadbeef}).ok());
  ASSERT_TRUE(snapshot::WriteMemoryFile(saved, path).ok());
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 16 << 20);
  EXPECT_LE(st.st_blocks * 512, 64 * 1024) << "only the two written pages take space";

  GuestMemory restored = Ram(16 << 20);
  ASSERT_TRUE(restored.Write(GuestAddress(0x2000), uint8_t{0x77}).ok());  // to be replaced
  ASSERT_TRUE(snapshot::ReadMemoryFile(restored, path).ok());
  EXPECT_EQ(*restored.Read<uint64_t>(GuestAddress(0x1000)), 0x1122334455667788u);
  EXPECT_EQ(*restored.Read<uint32_t>(GuestAddress(0xf00000)), 0xdeadbeefu);
  EXPECT_EQ(*restored.Read<uint8_t>(GuestAddress(0x2000)), 0u);

  // Copy-on-write: the restored guest's writes stay its own.
  ASSERT_TRUE(restored.Write(GuestAddress(0x1000), uint64_t{42}).ok());
  GuestMemory again = Ram(16 << 20);
  ASSERT_TRUE(snapshot::ReadMemoryFile(again, path).ok());
  EXPECT_EQ(*again.Read<uint64_t>(GuestAddress(0x1000)), 0x1122334455667788u)
      << "a restored VM's write reached the snapshot";
  ::unlink(path.c_str());
}

TEST(SnapshotMemoryTest, SharedRamIsCopiedIn) {
  const std::string path = TempPath("memfd");
  GuestMemory saved = Ram(4 << 20);
  ASSERT_TRUE(saved.Write(GuestAddress(0x3000), uint32_t{7}).ok());
  ASSERT_TRUE(snapshot::WriteMemoryFile(saved, path).ok());
  GuestMemory shared = Ram(4 << 20, /*memfd=*/true);
  ASSERT_TRUE(snapshot::ReadMemoryFile(shared, path).ok());
  EXPECT_EQ(*shared.Read<uint32_t>(GuestAddress(0x3000)), 7u);
  // Still the memfd's pages (what a vhost-user back-end maps).
  uint32_t through_fd = 0;
  const GuestMemory::Region& region = shared.regions()[0];
  ASSERT_EQ(::pread(region.fd, &through_fd, 4, static_cast<off_t>(region.fd_offset + 0x3000)), 4);
  EXPECT_EQ(through_fd, 7u);
  ::unlink(path.c_str());
}

TEST(SnapshotMemoryTest, AFileOfAnotherSizeIsRefused) {
  const std::string path = TempPath("size");
  GuestMemory saved = Ram(8 << 20);
  ASSERT_TRUE(snapshot::WriteMemoryFile(saved, path).ok());
  GuestMemory bigger = Ram(16 << 20);
  const absl::Status status = snapshot::ReadMemoryFile(bigger, path);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("8388608 bytes"));
  EXPECT_FALSE(snapshot::ReadMemoryFile(bigger, TempPath("missing")).ok());
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace vmm
