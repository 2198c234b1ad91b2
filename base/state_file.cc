#include "base/state_file.h"

#include <zlib.h>

#include <algorithm>

#include "absl/strings/str_format.h"

namespace vmm {
namespace {

// The CRC of `bytes` (zlib's crc32, fed in chunks its uInt can hold).
uint32_t Crc32(absl::string_view bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (!bytes.empty()) {
    const size_t chunk = std::min<size_t>(bytes.size(), 1u << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(chunk));
    bytes.remove_prefix(chunk);
  }
  return static_cast<uint32_t>(crc);
}

template <typename T>
void Append(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(value));
}

// Reads the file front to back; every read checks what is left.
class Cursor {
 public:
  explicit Cursor(absl::string_view bytes) : bytes_(bytes) {}
  template <typename T>
  bool Read(T* value) {
    if (bytes_.size() - at_ < sizeof(T)) return false;
    std::memcpy(value, bytes_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return true;
  }
  bool ReadBytes(uint64_t length, absl::string_view* out) {
    if (bytes_.size() - at_ < length) return false;
    *out = bytes_.substr(at_, length);
    at_ += length;
    return true;
  }
  size_t at() const { return at_; }

 private:
  absl::string_view bytes_;
  size_t at_ = 0;
};

}  // namespace

absl::Status StateFile::Add(absl::string_view name, std::string payload) {
  if (name.empty() || name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("state section name '", name, "' must be 1 to ", kMaxNameBytes, " bytes"));
  }
  if (sections_.size() >= kMaxSections) {
    return absl::InvalidArgumentError(absl::StrCat("more than ", kMaxSections, " state sections"));
  }
  if (!sections_.emplace(std::string(name), std::move(payload)).second) {
    return absl::InvalidArgumentError(absl::StrCat("state section '", name, "' added twice"));
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::string_view> StateFile::Get(absl::string_view name) const {
  auto it = sections_.find(name);
  if (it == sections_.end()) {
    return absl::NotFoundError(absl::StrCat("the snapshot has no '", name, "' state"));
  }
  return absl::string_view(it->second);
}

std::vector<std::string> StateFile::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, payload] : sections_) names.push_back(name);
  return names;
}

std::string StateFile::Serialize() const {
  std::string out(kMagic, sizeof(kMagic));
  Append<uint32_t>(out, kVersion);
  Append<uint32_t>(out, static_cast<uint32_t>(sections_.size()));
  for (const auto& [name, payload] : sections_) {
    Append<uint16_t>(out, static_cast<uint16_t>(name.size()));
    out += name;
    Append<uint64_t>(out, payload.size());
    out += payload;
  }
  Append<uint32_t>(out, Crc32(out));
  return out;
}

absl::StatusOr<StateFile> StateFile::Parse(absl::string_view bytes) {
  if (bytes.size() < sizeof(kMagic) || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return absl::InvalidArgumentError("not a vmm state file (no VMMSTATE magic)");
  }
  const size_t kHeader = sizeof(kMagic) + 2 * sizeof(uint32_t);
  if (bytes.size() < kHeader + sizeof(uint32_t)) {
    return absl::DataLossError(
        absl::StrFormat("the state file is truncated (%d bytes)", bytes.size()));
  }
  Cursor cursor(bytes.substr(0, bytes.size() - sizeof(uint32_t)));
  absl::string_view magic;
  uint32_t version = 0, count = 0;
  cursor.ReadBytes(sizeof(kMagic), &magic);
  cursor.Read(&version);
  cursor.Read(&count);
  if (version != kVersion) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the state file is format version %u; this vmm reads version %u", version, kVersion));
  }
  uint32_t stored_crc = 0;
  std::memcpy(&stored_crc, bytes.data() + bytes.size() - sizeof(uint32_t), sizeof(uint32_t));
  if (const uint32_t crc = Crc32(bytes.substr(0, bytes.size() - sizeof(uint32_t)));
      crc != stored_crc) {
    return absl::DataLossError(absl::StrFormat(
        "the state file is corrupted or truncated (checksum %08x, expected %08x)", crc,
        stored_crc));
  }
  if (count > kMaxSections) {
    return absl::DataLossError(
        absl::StrFormat("the state file claims %u sections (at most %d)", count, kMaxSections));
  }
  StateFile file;
  for (uint32_t i = 0; i < count; ++i) {
    uint16_t name_length = 0;
    absl::string_view name, payload;
    uint64_t payload_length = 0;
    if (!cursor.Read(&name_length) || name_length == 0 || name_length > kMaxNameBytes ||
        !cursor.ReadBytes(name_length, &name) || !cursor.Read(&payload_length) ||
        !cursor.ReadBytes(payload_length, &payload)) {
      return absl::DataLossError(
          absl::StrFormat("the state file's section %u of %u is malformed (at byte %d)", i + 1,
                          count, cursor.at()));
    }
    if (absl::Status added = file.Add(name, std::string(payload)); !added.ok()) {
      return absl::DataLossError(absl::StrCat("the state file: ", added.message()));
    }
  }
  if (cursor.at() != bytes.size() - sizeof(uint32_t)) {
    return absl::DataLossError(absl::StrFormat(
        "the state file has %d bytes after its last section",
        bytes.size() - sizeof(uint32_t) - cursor.at()));
  }
  return file;
}

absl::Status StateReader::GetBytes(absl::string_view field, size_t max_bytes,
                                   std::string* bytes) {
  uint64_t length = 0;
  if (absl::Status status = Get(field, &length); !status.ok()) return status;
  if (length > max_bytes) {
    return absl::DataLossError(absl::StrFormat("state '%s': %s is %u bytes (at most %u)",
                                               section_, field, length, max_bytes));
  }
  if (in_.size() < length) return Short(field);
  bytes->assign(in_.data(), length);
  in_.remove_prefix(length);
  return absl::OkStatus();
}

absl::Status StateReader::Finish() const {
  if (in_.empty()) return absl::OkStatus();
  return absl::DataLossError(
      absl::StrFormat("state '%s': %d bytes left over (another vmm's layout?)", section_,
                      in_.size()));
}

absl::Status StateReader::Short(absl::string_view field) const {
  return absl::DataLossError(
      absl::StrFormat("state '%s' is truncated at %s", section_, field));
}

}  // namespace vmm
