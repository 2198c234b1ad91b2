#include "devices/virtio/block/raw_file_backend.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "devices/virtio/block/virtio_block.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/devices/virtio/block/virtio_block_test_util.h"

namespace vmm::testing {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kSize = 64 * 1024;

std::unique_ptr<RawFileBackend> OpenOrDie(const RawFileOptions& options) {
  auto b = RawFileBackend::Open(options);
  EXPECT_TRUE(b.ok()) << b.status();
  return b.ok() ? std::move(*b) : nullptr;
}

TEST(RawFileBackendTest, MissingImageIsNotFoundNamingThePath) {
  auto b = RawFileBackend::Open({.path = "/nonexistent/disk.img"});
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(b.status().message(), HasSubstr("/nonexistent/disk.img"));
}

TEST(RawFileBackendTest, DirectoryIsInvalidArgument) {
  auto b = RawFileBackend::Open({.path = "/tmp", .read_only = true});
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(b.status().message(), HasSubstr("/tmp"));
}

TEST(RawFileBackendTest, EmptyPathIsInvalidArgument) {
  EXPECT_EQ(RawFileBackend::Open({}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RawFileBackendTest, SecondWritableOpenOfTheSameImageFailsNamingTheFile) {
  TempImage image = TempImage::WithPattern(kSize);
  auto first = OpenOrDie({.path = image.path()});
  auto second = RawFileBackend::Open({.path = image.path()});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr(image.path()));
  EXPECT_THAT(second.status().message(), HasSubstr("in use"));
  // Readers are kept out while it is written, too.
  EXPECT_FALSE(RawFileBackend::Open({.path = image.path(), .read_only = true}).ok());
}

TEST(RawFileBackendTest, WriterIsKeptOutWhileTheImageIsOpenReadOnly) {
  TempImage image = TempImage::WithPattern(kSize);
  auto reader = OpenOrDie({.path = image.path(), .read_only = true});
  EXPECT_FALSE(RawFileBackend::Open({.path = image.path()}).ok());
}

TEST(RawFileBackendTest, TwoReadOnlyOpensShareTheImage) {
  TempImage image = TempImage::WithPattern(kSize);
  auto a = OpenOrDie({.path = image.path(), .read_only = true});
  auto b = OpenOrDie({.path = image.path(), .read_only = true});
  EXPECT_NE(a, nullptr);
  EXPECT_NE(b, nullptr);
}

TEST(RawFileBackendTest, TheLockIsReleasedWhenTheBackendIsDestroyed) {
  TempImage image = TempImage::WithPattern(kSize);
  OpenOrDie({.path = image.path()}).reset();
  EXPECT_NE(OpenOrDie({.path = image.path()}), nullptr);
}

TEST(RawFileBackendTest, SizeIsRoundedDownToWholeSectorsAndTheTailReported) {
  TempImage image = TempImage::WithPattern(1000);
  auto b = OpenOrDie({.path = image.path(), .read_only = true});
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->size_bytes(), 512u);
  EXPECT_EQ(b->ignored_tail_bytes(), 488u);
  EXPECT_EQ(b->block_size(), 512u);
  EXPECT_TRUE(b->read_only());
}

TEST(RawFileBackendTest, VirtioBlockOpenWarnsAboutAnUnaddressableTail) {
  TempImage image = TempImage::WithPattern(1000);
  std::string warning;
  auto dev = VirtioBlock::Open({.path = image.path()}, &warning);
  ASSERT_TRUE(dev.ok()) << dev.status();
  EXPECT_EQ((*dev)->capacity_sectors(), 1u);
  EXPECT_THAT(warning, HasSubstr(image.path()));
  EXPECT_THAT(warning, HasSubstr("488"));

  TempImage whole = TempImage::WithPattern(1024);
  auto dev2 = VirtioBlock::Open({.path = whole.path()}, &warning);
  ASSERT_TRUE(dev2.ok());
  EXPECT_EQ(warning, "");
}

TEST(RawFileBackendTest, ReadVAndWriteVMoveEveryByteEvenBeyondIovMax) {
  TempImage image = TempImage::WithPattern(2 * IOV_MAX * 32);
  auto b = OpenOrDie({.path = image.path()});
  ASSERT_NE(b, nullptr);
  // 2 * IOV_MAX iovecs of 32 bytes: more than one preadv can take.
  std::vector<uint8_t> buf(2 * IOV_MAX * 32);
  std::vector<iovec> iov;
  for (size_t i = 0; i < 2 * IOV_MAX; ++i) iov.push_back({buf.data() + 32 * i, 32});
  ASSERT_TRUE(b->ReadV(iov, 0).ok());
  for (size_t i = 0; i < buf.size(); ++i) ASSERT_EQ(buf[i], Pattern(i)) << i;

  for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<uint8_t>(~Pattern(i));
  ASSERT_TRUE(b->WriteV(iov, 0).ok());
  std::vector<uint8_t> file = image.Contents();
  for (size_t i = 0; i < file.size(); ++i) ASSERT_EQ(file[i], static_cast<uint8_t>(~Pattern(i)));
}

TEST(RawFileBackendTest, ReadingPastTheEndOfAShrunkFileIsAnError) {
  TempImage image = TempImage::WithPattern(kSize);
  auto b = OpenOrDie({.path = image.path()});
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(truncate(image.path().c_str(), 512), 0);
  std::vector<uint8_t> buf(1024);
  iovec v{buf.data(), buf.size()};
  absl::Status s = b->ReadV(absl::MakeConstSpan(&v, 1), 0);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr(image.path()));
}

TEST(RawFileBackendTest, ReadOnlyBackendRefusesWrites) {
  TempImage image = TempImage::WithPattern(kSize);
  auto b = OpenOrDie({.path = image.path(), .read_only = true});
  ASSERT_NE(b, nullptr);
  std::vector<uint8_t> buf(512, 0);
  iovec v{buf.data(), buf.size()};
  EXPECT_FALSE(b->WriteV(absl::MakeConstSpan(&v, 1), 0).ok());
  EXPECT_FALSE(b->WriteZeroes(0, 512, false).ok());
  EXPECT_FALSE(b->Discard(0, 512).ok());
  EXPECT_EQ(image.Contents()[0], Pattern(0));
}

TEST(RawFileBackendTest, DirectImagesUse4KiBBlocks) {
  TempImage image = TempImage::WithPattern(kSize + 1000);
  auto b = OpenOrDie({.path = image.path(), .direct = true});
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->block_size(), 4096u);
  EXPECT_EQ(b->size_bytes(), kSize);
  EXPECT_EQ(b->ignored_tail_bytes(), 1000u);
}

TEST(RawFileBackendTest, DirectIoBouncesBuffersThatAreNotAligned) {
  TempImage image = TempImage::WithPattern(4 * RawFileBackend::kBounceSize);
  auto b = OpenOrDie({.path = image.path(), .direct = true});
  ASSERT_NE(b, nullptr);
  // 2.5 bounce buffers' worth, split into odd pieces at odd addresses.
  const size_t len = 2 * RawFileBackend::kBounceSize + RawFileBackend::kBounceSize / 2;
  std::vector<uint8_t> storage(len + 64);
  uint8_t* base = storage.data() + 3;
  std::vector<iovec> iov{{base, 1000}, {base + 1000, len - 1000}};
  ASSERT_TRUE(b->ReadV(iov, 4096).ok());
  for (size_t i = 0; i < len; ++i) ASSERT_EQ(base[i], Pattern(4096 + i)) << i;

  for (size_t i = 0; i < len; ++i) base[i] = static_cast<uint8_t>(i % 251);
  ASSERT_TRUE(b->WriteV(iov, 8192).ok());
  std::vector<uint8_t> file = image.Contents();
  EXPECT_EQ(file[8191], Pattern(8191));
  for (size_t i = 0; i < len; ++i) ASSERT_EQ(file[8192 + i], i % 251) << i;
  EXPECT_EQ(file[8192 + len], Pattern(8192 + len));
}

TEST(RawFileBackendTest, DirectIoWithAlignedBuffersGoesStraightThrough) {
  TempImage image = TempImage::WithPattern(kSize);
  auto b = OpenOrDie({.path = image.path(), .direct = true});
  ASSERT_NE(b, nullptr);
  void* p = nullptr;
  ASSERT_EQ(posix_memalign(&p, 4096, 8192), 0);
  std::unique_ptr<uint8_t, decltype(&free)> buf(static_cast<uint8_t*>(p), &free);
  iovec v{buf.get(), 8192};
  ASSERT_TRUE(b->ReadV(absl::MakeConstSpan(&v, 1), 4096).ok());
  EXPECT_EQ(buf.get()[0], Pattern(4096));
  EXPECT_EQ(buf.get()[8191], Pattern(4096 + 8191));
}

TEST(RawFileBackendTest, WriteZeroesOfADirectImageZeroesTheRange) {
  TempImage image = TempImage::WithPattern(kSize);
  auto b = OpenOrDie({.path = image.path(), .direct = true});
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(b->WriteZeroes(4096, 8192, /*may_unmap=*/false).ok());
  std::vector<uint8_t> file = image.Contents();
  EXPECT_EQ(file[4095], Pattern(4095));
  for (size_t i = 4096; i < 4096 + 8192; ++i) ASSERT_EQ(file[i], 0) << i;
  EXPECT_EQ(file[4096 + 8192], Pattern(4096 + 8192));
}

TEST(RawFileBackendTest, WriteZeroesFallsBackToWritingZerosWhereZeroRangeIsUnsupported) {
  // tmpfs punches holes but has no FALLOC_FL_ZERO_RANGE.
  struct statfs fs;
  if (statfs("/dev/shm", &fs) != 0 || fs.f_type != TMPFS_MAGIC) {
    GTEST_SKIP() << "no tmpfs at /dev/shm";
  }
  TempImage image = TempImage::WithPattern(3 * RawFileBackend::kBounceSize, "/dev/shm");
  auto b = OpenOrDie({.path = image.path()});
  ASSERT_NE(b, nullptr);
  const uint64_t len = RawFileBackend::kBounceSize + 4096;  // more than one zero buffer
  ASSERT_TRUE(b->WriteZeroes(512, len, /*may_unmap=*/false).ok());
  std::vector<uint8_t> file = image.Contents();
  EXPECT_EQ(file[511], Pattern(511));
  for (size_t i = 512; i < 512 + len; ++i) ASSERT_EQ(file[i], 0) << i;
  EXPECT_EQ(file[512 + len], Pattern(512 + len));
  EXPECT_EQ(image.allocated_bytes(), 3 * RawFileBackend::kBounceSize);  // still allocated
}

TEST(RawFileBackendTest, FlushSucceedsOnAnOpenImage) {
  TempImage image = TempImage::WithPattern(kSize);
  auto b = OpenOrDie({.path = image.path()});
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(b->Flush().ok());
}

// --- Batching through io_uring ---------------------------------------------------

struct Done {
  uint64_t tag;
  absl::Status status;
};

std::vector<Done> CompleteAll(RawFileBackend& b) {
  std::vector<Done> out;
  b.CompleteQueued([&](uint64_t tag, const absl::Status& s) { out.push_back({tag, s}); });
  return out;
}

TEST(RawFileBackendTest, ByDefaultOnlyODirectImagesBatch) {
  TempImage image = TempImage::WithPattern(kSize);
  auto b = OpenOrDie({.path = image.path()});
  EXPECT_FALSE(b->batching());
  uint8_t buf[512];
  iovec v{buf, sizeof(buf)};
  EXPECT_FALSE(b->QueueV(false, absl::MakeConstSpan(&v, 1), 0, 1));
  b.reset();
  EXPECT_FALSE(OpenOrDie({.path = image.path(), .io_uring = RawFileOptions::IoUring::kOff})
                   ->QueueV(false, absl::MakeConstSpan(&v, 1), 0, 1));
}

TEST(RawFileBackendTest, QueuedWritesAndReadsThroughIoUringMoveTheRightBytes) {
  TempImage image = TempImage::WithPattern(kSize);
  auto b = OpenOrDie({.path = image.path(), .io_uring = RawFileOptions::IoUring::kAlways});
  std::vector<std::vector<uint8_t>> data;
  for (int i = 0; i < 5; ++i) data.push_back(Bytes(512, static_cast<uint8_t>(0x10 + i)));
  for (int i = 0; i < 5; ++i) {
    iovec v[2] = {{data[i].data(), 200}, {data[i].data() + 200, 312}};
    if (!b->QueueV(true, v, 4096ull * i, 100 + i)) GTEST_SKIP() << "io_uring unavailable here";
  }
  std::vector<Done> done = CompleteAll(*b);
  ASSERT_EQ(done.size(), 5u);
  for (const Done& d : done) EXPECT_TRUE(d.status.ok()) << d.tag << ": " << d.status;
  std::vector<uint8_t> file = image.Contents();
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(file[4096 * i], 0x10 + i);
    EXPECT_EQ(file[4096 * i + 511], 0x10 + i);
    EXPECT_EQ(file[4096 * i + 512], Pattern(4096 * i + 512));
  }
  std::vector<std::vector<uint8_t>> in(3, std::vector<uint8_t>(1024));
  for (int i = 0; i < 3; ++i) {
    iovec v{in[i].data(), in[i].size()};
    ASSERT_TRUE(b->QueueV(false, absl::MakeConstSpan(&v, 1), 4096ull * i, i));
  }
  done = CompleteAll(*b);
  ASSERT_EQ(done.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(in[i][0], 0x10 + i);
    EXPECT_EQ(in[i][1000], Pattern(4096 * i + 1000));
  }
}

TEST(RawFileBackendTest, FlushCompletesQueuedWritesBeforeSyncing) {
  TempImage image = TempImage::WithPattern(kSize);
  auto b = OpenOrDie({.path = image.path(), .io_uring = RawFileOptions::IoUring::kAlways});
  std::vector<uint8_t> one = Bytes(512, 1), two = Bytes(512, 2);
  iovec v1{one.data(), one.size()}, v2{two.data(), two.size()};
  if (!b->QueueV(true, absl::MakeConstSpan(&v1, 1), 0, 1)) GTEST_SKIP() << "no io_uring";
  ASSERT_TRUE(b->QueueV(true, absl::MakeConstSpan(&v2, 1), 512, 2));
  EXPECT_EQ(image.Contents()[0], Pattern(0));  // nothing ran yet
  ASSERT_TRUE(b->Flush().ok());
  std::vector<uint8_t> file = image.Contents();
  EXPECT_EQ(file[0], 1);
  EXPECT_EQ(file[512], 2);
  // Their completions are still reported, once.
  std::vector<Done> done = CompleteAll(*b);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_TRUE(done[0].status.ok());
  EXPECT_TRUE(done[1].status.ok());
  EXPECT_TRUE(CompleteAll(*b).empty());
}

TEST(RawFileBackendTest, AQueuedReadPastTheEndOfAShrunkenImageFailsAlone) {
  TempImage image = TempImage::WithPattern(kSize);
  auto b = OpenOrDie({.path = image.path(), .io_uring = RawFileOptions::IoUring::kAlways});
  ASSERT_EQ(truncate(image.path().c_str(), kSize / 2), 0);
  std::vector<uint8_t> a(512), z(512);
  iovec va{a.data(), a.size()}, vz{z.data(), z.size()};
  if (!b->QueueV(false, absl::MakeConstSpan(&va, 1), 0, 7)) GTEST_SKIP() << "no io_uring";
  ASSERT_TRUE(b->QueueV(false, absl::MakeConstSpan(&vz, 1), kSize - 512, 8));
  std::vector<Done> done = CompleteAll(*b);
  ASSERT_EQ(done.size(), 2u);
  for (const Done& d : done) {
    if (d.tag == 7) {
      EXPECT_TRUE(d.status.ok()) << d.status;
    } else {
      EXPECT_EQ(d.status.code(), absl::StatusCode::kOutOfRange) << d.status;
      EXPECT_THAT(d.status.message(), HasSubstr("end of file"));
    }
  }
  EXPECT_EQ(a[0], Pattern(0));
}

TEST(RawFileBackendTest, AReadOnlyImageQueuesNoWrites) {
  TempImage image = TempImage::WithPattern(kSize);
  auto b = OpenOrDie(
      {.path = image.path(), .read_only = true, .io_uring = RawFileOptions::IoUring::kAlways});
  std::vector<uint8_t> d(512);
  iovec v{d.data(), d.size()};
  EXPECT_FALSE(b->QueueV(true, absl::MakeConstSpan(&v, 1), 0, 1));
}

}  // namespace
}  // namespace vmm::testing
