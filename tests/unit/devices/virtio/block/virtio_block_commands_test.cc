// virtio-blk: FLUSH, GET_ID, DISCARD and WRITE_ZEROES.
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "devices/virtio/block/virtio_block.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/devices/virtio/block/virtio_block_test_util.h"

namespace vmm::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr uint64_t Bit(unsigned n) { return 1ull << n; }

std::vector<uint8_t> Str(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

// --- FLUSH --------------------------------------------------------------------

TEST_F(VirtioBlockTest, FlushSyncsBeforeTheStatusIsWrittenOrTheChainReturned) {
  StartFake();
  Submitted s = Submit({.type = VIRTIO_BLK_T_FLUSH});
  std::vector<uint8_t> status_at_flush;
  uint16_t used_at_flush = 0xffff;
  fake_->on_flush = [&] {
    status_at_flush = driver_->ReadGuest(s.status.addr, 1);
    used_at_flush = driver_->used_idx();
  };
  dev_->ProcessQueue(0);
  EXPECT_THAT(status_at_flush, ElementsAre(kUnwritten));
  EXPECT_EQ(used_at_flush, 0);
  auto used = driver_->PopUsed();
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(Collect(s, *used).status, VIRTIO_BLK_S_OK);
  EXPECT_THAT(fake_->calls(), ElementsAre("flush"));
}

TEST_F(VirtioBlockTest, FailedFlushIsIoError) {
  StartFake();
  fake_->FailWith(absl::InternalError("EIO"));
  EXPECT_EQ(Status({.type = VIRTIO_BLK_T_FLUSH}), VIRTIO_BLK_S_IOERR);
}

TEST_F(VirtioBlockTest, FlushOnAReadOnlyDiskIsUnsupported) {
  StartFake(kDiskSize, /*read_only=*/true);
  EXPECT_EQ(Status({.type = VIRTIO_BLK_T_FLUSH}), VIRTIO_BLK_S_UNSUPP);
  EXPECT_THAT(fake_->calls(), IsEmpty());
}

TEST_F(VirtioBlockTest, WritesAreNotSyncedWhenTheDriverNegotiatedFlush) {
  StartFake();
  EXPECT_EQ(Status({.type = VIRTIO_BLK_T_OUT, .sector = 0, .out = {Bytes(512, 1)}}),
            VIRTIO_BLK_S_OK);
  EXPECT_THAT(fake_->calls(), ElementsAre("write 0+512"));
}

TEST_F(VirtioBlockTest, WithoutNegotiatedFlushEachWriteIsSyncedBeforeItsStatus) {
  StartFake();
  const uint64_t features = dev_->device_features() & ~Bit(VIRTIO_BLK_F_FLUSH);
  Start(std::move(dev_), features);
  Submitted s = Submit({.type = VIRTIO_BLK_T_OUT, .sector = 0, .out = {Bytes(512, 1)}});
  std::vector<uint8_t> status_at_flush;
  fake_->on_flush = [&] { status_at_flush = driver_->ReadGuest(s.status.addr, 1); };
  dev_->ProcessQueue(0);
  EXPECT_THAT(fake_->calls(), ElementsAre("write 0+512", "flush"));
  EXPECT_THAT(status_at_flush, ElementsAre(kUnwritten));
  EXPECT_EQ(Collect(s, *driver_->PopUsed()).status, VIRTIO_BLK_S_OK);
  // The driver cannot send FLUSH itself then.
  EXPECT_EQ(Status({.type = VIRTIO_BLK_T_FLUSH}), VIRTIO_BLK_S_UNSUPP);
}

TEST_F(VirtioBlockTest, FlushOfARealImageSucceeds) {
  TempImage image = TempImage::WithPattern(kDiskSize);
  auto dev = VirtioBlock::Open({.path = image.path()});
  ASSERT_TRUE(dev.ok()) << dev.status();
  Start(std::move(*dev));
  EXPECT_EQ(Status({.type = VIRTIO_BLK_T_FLUSH}), VIRTIO_BLK_S_OK);
}

// --- GET_ID -------------------------------------------------------------------

TEST_F(VirtioBlockTest, GetIdReturnsTheSerialZeroPadded) {
  StartFake(kDiskSize, false, "vmm-disk-1");
  Reply r = Run({.type = VIRTIO_BLK_T_GET_ID, .in = {VIRTIO_BLK_ID_BYTES}});
  EXPECT_EQ(r.status, VIRTIO_BLK_S_OK);
  EXPECT_EQ(r.used_len, VIRTIO_BLK_ID_BYTES + 1u);
  std::vector<uint8_t> expected = Str("vmm-disk-1");
  expected.resize(VIRTIO_BLK_ID_BYTES, 0);
  EXPECT_EQ(r.data, expected);
}

TEST_F(VirtioBlockTest, GetIdIntoAShortBufferWritesOnlyWhatFits) {
  StartFake(kDiskSize, false, "vmm-disk-1");
  Submitted s = Submit({.type = VIRTIO_BLK_T_GET_ID, .in = {4}});
  dev_->ProcessQueue(0);
  Reply r = Collect(s, *driver_->PopUsed());
  EXPECT_EQ(r.status, VIRTIO_BLK_S_OK);  // not the serial's fifth byte
  EXPECT_EQ(r.used_len, 5u);
  EXPECT_EQ(r.data, Str("vmm-"));
  // Guest memory between the 4-byte buffer and the status buffer is untouched.
  EXPECT_EQ(driver_->ReadGuest(s.data[0].addr + 4, s.status.addr - (s.data[0].addr + 4)),
            Bytes(s.status.addr - (s.data[0].addr + 4), 0));
}

TEST_F(VirtioBlockTest, GetIdWithOnlyAStatusByteWritesNoId) {
  StartFake(kDiskSize, false, "abc");
  Reply r = Run({.type = VIRTIO_BLK_T_GET_ID});
  EXPECT_EQ(r.status, VIRTIO_BLK_S_OK);
  EXPECT_EQ(r.used_len, 1u);
}

TEST_F(VirtioBlockTest, GetIdOfAFullLengthSerialHasNoTerminatorAndStopsAt20Bytes) {
  const std::string serial = "ABCDEFGHIJKLMNOPQRST";  // exactly VIRTIO_BLK_ID_BYTES
  StartFake(kDiskSize, false, serial);
  Reply r = Run({.type = VIRTIO_BLK_T_GET_ID, .in = {64}});
  EXPECT_EQ(r.status, VIRTIO_BLK_S_OK);
  EXPECT_EQ(r.used_len, 21u);
  std::vector<uint8_t> expected = Str(serial);
  expected.resize(64, 0xaa);  // the rest of the buffer as the driver left it
  EXPECT_EQ(r.data, expected);
}

TEST_F(VirtioBlockTest, ASerialLongerThan20BytesIsTruncated) {
  StartFake(kDiskSize, false, "0123456789abcdefghijKLMNOP");
  Reply r = Run({.type = VIRTIO_BLK_T_GET_ID, .in = {VIRTIO_BLK_ID_BYTES}});
  EXPECT_EQ(r.data, Str("0123456789abcdefghij"));
}

TEST_F(VirtioBlockTest, OpenRejectsASerialLongerThan20Bytes) {
  TempImage image = TempImage::WithPattern(kDiskSize);
  auto dev = VirtioBlock::Open({.path = image.path(), .serial = std::string(21, 'x')});
  ASSERT_FALSE(dev.ok());
  EXPECT_EQ(dev.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(dev.status().message(), HasSubstr("serial"));
  EXPECT_THAT(dev.status().message(), HasSubstr(image.path()));
}

// --- DISCARD / WRITE_ZEROES on the fake backend ---------------------------------

TEST_F(VirtioBlockTest, DiscardPassesTheSegmentRangeToTheBackend) {
  StartFake();
  Reply r = Run({.type = VIRTIO_BLK_T_DISCARD, .out = {Segment(8, 16)}});
  EXPECT_EQ(r.status, VIRTIO_BLK_S_OK);
  EXPECT_EQ(r.used_len, 1u);
  EXPECT_THAT(fake_->calls(), ElementsAre("discard 4096+8192"));
}

TEST_F(VirtioBlockTest, WriteZeroesPassesTheUnmapFlag) {
  StartFake();
  EXPECT_EQ(Status({.type = VIRTIO_BLK_T_WRITE_ZEROES, .out = {Segment(1, 2)}}), VIRTIO_BLK_S_OK);
  EXPECT_EQ(Status({.type = VIRTIO_BLK_T_WRITE_ZEROES,
                    .out = {Segment(3, 1, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)}}),
            VIRTIO_BLK_S_OK);
  EXPECT_THAT(fake_->calls(), ElementsAre("zeroes 512+1024", "zeroes 1536+512 unmap"));
  EXPECT_EQ(fake_->disk()[512], 0);
  EXPECT_EQ(fake_->disk()[2047], 0);
  EXPECT_EQ(fake_->disk()[2048], Pattern(2048));
}

TEST_F(VirtioBlockTest, DiscardWithTheUnmapFlagIsUnsupported) {
  StartFake();
  EXPECT_EQ(Status({.type = VIRTIO_BLK_T_DISCARD,
                    .out = {Segment(0, 1, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)}}),
            VIRTIO_BLK_S_UNSUPP);
  EXPECT_THAT(fake_->calls(), IsEmpty());
}

TEST_F(VirtioBlockTest, WriteZeroesWithUnknownFlagsIsUnsupported) {
  StartFake();
  EXPECT_EQ(Status({.type = VIRTIO_BLK_T_WRITE_ZEROES, .out = {Segment(0, 1, 2)}}),
            VIRTIO_BLK_S_UNSUPP);
  EXPECT_EQ(Status({.type = VIRTIO_BLK_T_WRITE_ZEROES, .out = {Segment(0, 1, 0x80000001)}}),
            VIRTIO_BLK_S_UNSUPP);
  EXPECT_THAT(fake_->calls(), IsEmpty());
}

TEST_F(VirtioBlockTest, MoreSegmentsThanAdvertisedAreUnsupportedAndNothingIsDiscarded) {
  StartFake();
  EXPECT_EQ(Status({.type = VIRTIO_BLK_T_DISCARD, .out = {Segment(0, 1), Segment(2, 1)}}),
            VIRTIO_BLK_S_UNSUPP);
  EXPECT_EQ(Status({.type = VIRTIO_BLK_T_WRITE_ZEROES, .out = {Segment(0, 1), Segment(2, 1)}}),
            VIRTIO_BLK_S_UNSUPP);
  EXPECT_THAT(fake_->calls(), IsEmpty());
}

TEST_F(VirtioBlockTest, SegmentsOutsideTheDiskAreIoError) {
  StartFake();
  for (uint32_t type : {VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES}) {
    EXPECT_EQ(Status({.type = type, .out = {Segment(kDiskSectors - 1, 2)}}), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(Status({.type = type, .out = {Segment(kDiskSectors, 1)}}), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(Status({.type = type, .out = {Segment(UINT64_MAX / 512 + 1, 1)}}),
              VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(Status({.type = type, .out = {Segment(UINT64_MAX, 1)}}), VIRTIO_BLK_S_IOERR);
  }
  EXPECT_THAT(fake_->calls(), IsEmpty());
}

TEST_F(VirtioBlockTest, MalformedSegmentPayloadsAreIoError) {
  StartFake();
  std::vector<uint8_t> seg = Segment(0, 1);
  seg.resize(20);
  EXPECT_EQ(Status({.type = VIRTIO_BLK_T_DISCARD, .out = {seg}}), VIRTIO_BLK_S_IOERR);
  seg.resize(8);
  EXPECT_EQ(Status({.type = VIRTIO_BLK_T_WRITE_ZEROES, .out = {seg}}), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(Status({.type = VIRTIO_BLK_T_DISCARD}), VIRTIO_BLK_S_IOERR);  // no segment at all
  EXPECT_THAT(fake_->calls(), IsEmpty());
}

TEST_F(VirtioBlockTest, DiscardAndWriteZeroesOnAReadOnlyDiskAreUnsupported) {
  StartFake(kDiskSize, /*read_only=*/true);
  EXPECT_EQ(Status({.type = VIRTIO_BLK_T_DISCARD, .out = {Segment(0, 1)}}), VIRTIO_BLK_S_UNSUPP);
  EXPECT_EQ(Status({.type = VIRTIO_BLK_T_WRITE_ZEROES, .out = {Segment(0, 1)}}),
            VIRTIO_BLK_S_UNSUPP);
  EXPECT_THAT(fake_->calls(), IsEmpty());
}

TEST_F(VirtioBlockTest, DiscardIsUnsupportedWhenTheDriverDidNotNegotiateIt) {
  StartFake();
  const uint64_t features = dev_->device_features() & ~Bit(VIRTIO_BLK_F_DISCARD);
  Start(std::move(dev_), features);
  EXPECT_EQ(Status({.type = VIRTIO_BLK_T_DISCARD, .out = {Segment(0, 1)}}), VIRTIO_BLK_S_UNSUPP);
  EXPECT_EQ(Status({.type = VIRTIO_BLK_T_WRITE_ZEROES, .out = {Segment(0, 1)}}), VIRTIO_BLK_S_OK);
}

// --- DISCARD / WRITE_ZEROES on a real image --------------------------------------

constexpr uint64_t kImageSize = 64 * 1024;

TEST_F(VirtioBlockTest, DiscardPunchesAHoleAndKeepsTheSize) {
  TempImage image = TempImage::WithPattern(kImageSize);
  auto dev = VirtioBlock::Open({.path = image.path()});
  ASSERT_TRUE(dev.ok()) << dev.status();
  Start(std::move(*dev));
  EXPECT_EQ(Status({.type = VIRTIO_BLK_T_DISCARD, .out = {Segment(16, 32)}}), VIRTIO_BLK_S_OK);

  int fd = open(image.path().c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(lseek(fd, 0, SEEK_HOLE), 16 * 512);
  EXPECT_EQ(lseek(fd, 16 * 512, SEEK_DATA), 48 * 512);
  close(fd);
  std::vector<uint8_t> file = image.Contents();
  ASSERT_EQ(file.size(), kImageSize);
  EXPECT_EQ(file[16 * 512 - 1], Pattern(16 * 512 - 1));
  for (uint64_t i = 16 * 512; i < 48 * 512; ++i) ASSERT_EQ(file[i], 0) << i;
  EXPECT_EQ(file[48 * 512], Pattern(48 * 512));
}

TEST_F(VirtioBlockTest, WriteZeroesWithoutUnmapZeroesButKeepsTheBlocksAllocated) {
  TempImage image = TempImage::WithPattern(kImageSize);
  const uint64_t allocated = image.allocated_bytes();
  auto dev = VirtioBlock::Open({.path = image.path()});
  ASSERT_TRUE(dev.ok()) << dev.status();
  Start(std::move(*dev));
  EXPECT_EQ(Status({.type = VIRTIO_BLK_T_WRITE_ZEROES, .out = {Segment(8, 64)}}), VIRTIO_BLK_S_OK);
  std::vector<uint8_t> file = image.Contents();
  ASSERT_EQ(file.size(), kImageSize);
  for (uint64_t i = 8 * 512; i < 72 * 512; ++i) ASSERT_EQ(file[i], 0) << i;
  EXPECT_EQ(file[72 * 512], Pattern(72 * 512));
  EXPECT_EQ(image.allocated_bytes(), allocated);
  // And the guest reads zeros back.
  Reply r = Run({.type = VIRTIO_BLK_T_IN, .sector = 8, .in = {512}});
  EXPECT_EQ(r.data, Bytes(512, 0));
}

TEST_F(VirtioBlockTest, WriteZeroesWithUnmapMayDeallocate) {
  TempImage image = TempImage::WithPattern(kImageSize);
  const uint64_t allocated = image.allocated_bytes();
  auto dev = VirtioBlock::Open({.path = image.path()});
  ASSERT_TRUE(dev.ok()) << dev.status();
  Start(std::move(*dev));
  EXPECT_EQ(Status({.type = VIRTIO_BLK_T_WRITE_ZEROES,
                    .out = {Segment(8, 64, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)}}),
            VIRTIO_BLK_S_OK);
  std::vector<uint8_t> file = image.Contents();
  for (uint64_t i = 8 * 512; i < 72 * 512; ++i) ASSERT_EQ(file[i], 0) << i;
  EXPECT_LT(image.allocated_bytes(), allocated);
}

TEST_F(VirtioBlockTest, SegmentsLargerThanTheAdvertisedMaximumAreIoError) {
  // A sparse image bigger than one maximal segment costs no disk space.
  TempImage image(std::vector<uint8_t>{});
  ASSERT_EQ(truncate(image.path().c_str(), 4ll << 30), 0);
  auto dev = VirtioBlock::Open({.path = image.path()});
  ASSERT_TRUE(dev.ok()) << dev.status();
  Start(std::move(*dev));
  EXPECT_EQ(Status({.type = VIRTIO_BLK_T_DISCARD,
                    .out = {Segment(0, VirtioBlock::kMaxDiscardSectors + 1)}}),
            VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(Status({.type = VIRTIO_BLK_T_WRITE_ZEROES,
                    .out = {Segment(0, VirtioBlock::kMaxWriteZeroesSectors + 1)}}),
            VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(Status({.type = VIRTIO_BLK_T_DISCARD,
                    .out = {Segment(0, VirtioBlock::kMaxDiscardSectors)}}),
            VIRTIO_BLK_S_OK);
}

}  // namespace
}  // namespace vmm::testing
