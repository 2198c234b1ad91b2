// A snapshot's state file (issue 15): a versioned, checksummed container of
// named sections — one per vCPU, per device, for the interrupt controllers —
// each a byte string its owner encodes with StateWriter and decodes with
// StateReader. The container knows nothing of what the sections mean.
//
// Layout, little-endian:
//   magic "VMMSTATE" (8 bytes), format version (u32), section count (u32)
//   per section: name length (u16), name, payload length (u64), payload
//   CRC-32 (zlib's) of everything before it (u32)
//
// A state file is untrusted input (a user may hand vmm any file): parsing
// checks every length against what is left, bounds names, counts and
// sizes, refuses duplicate names, another version and a wrong checksum, each
// with one line naming what is wrong, and never reads out of bounds.
#ifndef VMM_BASE_STATE_FILE_H_
#define VMM_BASE_STATE_FILE_H_

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace vmm {

class StateFile {
 public:
  static constexpr char kMagic[8] = {'V', 'M', 'M', 'S', 'T', 'A', 'T', 'E'};
  static constexpr uint32_t kVersion = 1;
  static constexpr size_t kMaxNameBytes = 64;
  static constexpr size_t kMaxSections = 4096;

  // Adds a section; InvalidArgument for an empty or over-long name, or one
  // already added.
  absl::Status Add(absl::string_view name, std::string payload);
  // The section's payload, or NotFound naming it.
  absl::StatusOr<absl::string_view> Get(absl::string_view name) const;
  bool Has(absl::string_view name) const { return sections_.contains(std::string(name)); }
  // Section names, sorted.
  std::vector<std::string> Names() const;

  // The file's bytes (sections in name order, so equal contents give equal
  // files).
  std::string Serialize() const;
  // Parses `bytes`; DataLoss for a truncated or corrupted file,
  // FailedPrecondition for another format version, InvalidArgument for a
  // file that is not a state file; each message one line.
  static absl::StatusOr<StateFile> Parse(absl::string_view bytes);

 private:
  std::map<std::string, std::string, std::less<>> sections_;
};

// Encodes a section's payload: fixed-size values in host order (a snapshot
// is restored on the architecture that took it; the file's header says
// which format), byte strings with a u64 length.
class StateWriter {
 public:
  template <typename T>
  void Put(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    out_.append(reinterpret_cast<const char*>(&value), sizeof(value));
  }
  void PutBytes(absl::string_view bytes) {
    Put<uint64_t>(bytes.size());
    out_.append(bytes.data(), bytes.size());
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

// Decodes what StateWriter wrote. Every read checks what is left: a short
// payload is DataLoss naming the section and the field, never a read past
// the end. Finish() says whether the payload had bytes left over.
class StateReader {
 public:
  StateReader(absl::string_view section, absl::string_view payload)
      : section_(section), in_(payload) {}

  template <typename T>
  absl::Status Get(absl::string_view field, T* value) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (in_.size() < sizeof(T)) return Short(field);
    std::memcpy(value, in_.data(), sizeof(T));
    in_.remove_prefix(sizeof(T));
    return absl::OkStatus();
  }
  // A byte string of at most `max_bytes`.
  absl::Status GetBytes(absl::string_view field, size_t max_bytes, std::string* bytes);
  absl::Status Finish() const;

 private:
  absl::Status Short(absl::string_view field) const;
  std::string section_;
  absl::string_view in_;
};

}  // namespace vmm

#endif  // VMM_BASE_STATE_FILE_H_
