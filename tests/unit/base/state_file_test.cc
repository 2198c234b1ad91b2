// The snapshot state file's container: what is written reads back, and a
// file that is truncated anywhere, has any byte changed, is another format
// version or is not a state file at all is refused with one line — never
// read out of bounds.
#include "base/state_file.h"

#include <zlib.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vmm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

StateFile TwoSections() {
  StateFile file;
  StateWriter vcpu;
  vcpu.Put<uint64_t>(0x1234'5678'9abc'def0);
  vcpu.PutBytes("xsave area");
  EXPECT_TRUE(file.Add("vcpu0", vcpu.Take()).ok());
  EXPECT_TRUE(file.Add("device/virtio-blk@0000:00:01.0", std::string(300, '\x5a')).ok());
  return file;
}

// Replaces the trailing CRC so that a deliberately changed file is
// checksummed right (testing what comes after the checksum check).
std::string Rechecksum(std::string bytes) {
  bytes.resize(bytes.size() - 4);
  uint32_t crc = static_cast<uint32_t>(
      crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(bytes.data()), bytes.size()));
  bytes.append(reinterpret_cast<const char*>(&crc), 4);
  return bytes;
}

TEST(StateFileTest, WhatIsWrittenReadsBack) {
  const std::string bytes = TwoSections().Serialize();
  absl::StatusOr<StateFile> parsed = StateFile::Parse(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(parsed->Names(), ElementsAre("device/virtio-blk@0000:00:01.0", "vcpu0"));
  absl::StatusOr<absl::string_view> vcpu = parsed->Get("vcpu0");
  ASSERT_TRUE(vcpu.ok());
  StateReader reader("vcpu0", *vcpu);
  uint64_t rip = 0;
  std::string xsave;
  ASSERT_TRUE(reader.Get("rip", &rip).ok());
  ASSERT_TRUE(reader.GetBytes("xsave", 64, &xsave).ok());
  EXPECT_EQ(rip, 0x1234'5678'9abc'def0u);
  EXPECT_EQ(xsave, "xsave area");
  EXPECT_TRUE(reader.Finish().ok());
  EXPECT_EQ(parsed->Serialize(), bytes) << "the same contents give the same file";
  EXPECT_EQ(parsed->Get("vcpu1").status().code(), absl::StatusCode::kNotFound);
}

TEST(StateFileTest, EveryTruncationIsRefused) {
  const std::string bytes = TwoSections().Serialize();
  for (size_t length = 0; length < bytes.size(); ++length) {
    absl::StatusOr<StateFile> parsed = StateFile::Parse(bytes.substr(0, length));
    ASSERT_FALSE(parsed.ok()) << "a file cut to " << length << " bytes was accepted";
    EXPECT_EQ(std::string(parsed.status().message()).find('\n'), std::string::npos);
  }
}

TEST(StateFileTest, EveryChangedByteIsRefused) {
  const std::string bytes = TwoSections().Serialize();
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string changed = bytes;
    changed[i] = static_cast<char>(changed[i] ^ 0x01);
    EXPECT_FALSE(StateFile::Parse(changed).ok()) << "byte " << i << " changed went unnoticed";
  }
}

TEST(StateFileTest, AnotherVersionOrNotAStateFileIsSaidSo) {
  std::string other = TwoSections().Serialize();
  other[8] = 2;  // the version's low byte
  absl::StatusOr<StateFile> parsed = StateFile::Parse(Rechecksum(other));
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(parsed.status().message(), HasSubstr("version 2"));
  parsed = StateFile::Parse("\x7f" "ELF and the rest of a kernel");
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(parsed.status().message(), HasSubstr("not a vmm state file"));
}

TEST(StateFileTest, LengthsThatClaimTooMuchAreRefusedNotFollowed) {
  std::string bytes = TwoSections().Serialize();
  // The first section's payload length (after magic, version, count, name
  // length and the 30-byte name) made huge.
  const size_t at = 8 + 4 + 4 + 2 + 30;
  const uint64_t huge = ~0ull;
  bytes.replace(at, 8, reinterpret_cast<const char*>(&huge), 8);
  absl::StatusOr<StateFile> parsed = StateFile::Parse(Rechecksum(bytes));
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(parsed.status().message(), HasSubstr("section 1 of 2"));
  // A count beyond the limit.
  std::string counted = TwoSections().Serialize();
  const uint32_t many = 1u << 30;
  counted.replace(12, 4, reinterpret_cast<const char*>(&many), 4);
  EXPECT_EQ(StateFile::Parse(Rechecksum(counted)).status().code(), absl::StatusCode::kDataLoss);
}

TEST(StateFileTest, SectionNamesAreBoundedAndUnique) {
  StateFile file;
  EXPECT_FALSE(file.Add("", "x").ok());
  EXPECT_FALSE(file.Add(std::string(StateFile::kMaxNameBytes + 1, 'n'), "x").ok());
  EXPECT_TRUE(file.Add("vcpu0", "a").ok());
  absl::Status again = file.Add("vcpu0", "b");
  EXPECT_EQ(again.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(again.message(), HasSubstr("twice"));
  EXPECT_EQ(*file.Get("vcpu0"), "a");
}

TEST(StateReaderTest, AShortPayloadNamesTheSectionAndField) {
  StateWriter writer;
  writer.Put<uint32_t>(7);
  const std::string payload = writer.Take();
  StateReader reader("vcpu3", payload);
  uint64_t too_wide = 0;
  absl::Status status = reader.Get("cr3", &too_wide);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("'vcpu3' is truncated at cr3"));
}

TEST(StateReaderTest, ByteStringsAreBoundedAndLeftoversNoticed) {
  StateWriter writer;
  writer.PutBytes(std::string(100, 'b'));
  writer.Put<uint8_t>(1);
  const std::string payload = writer.Take();
  std::string bytes;
  StateReader strict("rng", payload);
  EXPECT_EQ(strict.GetBytes("pool", 50, &bytes).code(), absl::StatusCode::kDataLoss);
  StateReader reader("rng", payload);
  ASSERT_TRUE(reader.GetBytes("pool", 100, &bytes).ok());
  EXPECT_EQ(bytes.size(), 100u);
  absl::Status finish = reader.Finish();
  EXPECT_EQ(finish.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(finish.message(), HasSubstr("1 bytes left over"));
}

}  // namespace
}  // namespace vmm
