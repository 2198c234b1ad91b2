// What every ACPI system description table shares (ACPI 6.5 section 5.2.6):
// the 36-byte header, the checksum rule, and a byte buffer to build into.
#ifndef VMM_FIRMWARE_ACPI_SDT_H_
#define VMM_FIRMWARE_ACPI_SDT_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace vmm::firmware::acpi {

// Who made the tables, as the headers (and the RSDP) say.
inline constexpr char kOemId[] = "VMM   ";  // 6 characters
inline constexpr char kCreatorId[] = "VMM ";  // 4 characters
inline constexpr uint32_t kOemRevision = 1;
inline constexpr uint32_t kCreatorRevision = 1;

struct [[gnu::packed]] SdtHeader {
  char signature[4];
  uint32_t length;  // of the whole table, header included
  uint8_t revision;
  uint8_t checksum;  // makes the whole table sum to 0
  char oem_id[6];
  char oem_table_id[8];
  uint32_t oem_revision;
  char creator_id[4];
  uint32_t creator_revision;
};
inline constexpr size_t kSdtHeaderSize = 36;
static_assert(sizeof(SdtHeader) == kSdtHeaderSize);

// Generic Address Structure (section 5.2.3.2).
struct [[gnu::packed]] GenericAddress {
  uint8_t address_space;  // kAddressSpaceSystemIo ...
  uint8_t bit_width;
  uint8_t bit_offset;
  uint8_t access_size;  // kAccessSizeByte ...
  uint64_t address;
};
static_assert(sizeof(GenericAddress) == 12);
inline constexpr uint8_t kAddressSpaceSystemIo = 1;
inline constexpr uint8_t kAccessSizeByte = 1;

// A one-byte register at I/O port `port`.
constexpr GenericAddress IoByteRegister(uint16_t port) {
  return {kAddressSpaceSystemIo, 8, 0, kAccessSizeByte, port};
}

// The byte that, stored in a checksum field that is currently 0, makes
// `bytes` sum to 0 modulo 256.
uint8_t ChecksumByte(absl::Span<const uint8_t> bytes);

// Appends the raw bytes of a packed structure.
template <typename T>
void AppendStruct(std::vector<uint8_t>& out, const T& value) {
  static_assert(std::is_trivially_copyable_v<T>);
  // resize + memcpy: g++ 12 misreports vector::insert of a struct's bytes
  // as an overflow (-Wstringop-overflow).
  const size_t offset = out.size();
  out.resize(offset + sizeof(T));
  std::memcpy(out.data() + offset, &value, sizeof(T));
}

// A table's bytes: the header up front, then whatever the builder appends.
// Finish() fills in the length and the checksum.
class SdtBuilder {
 public:
  // `signature` is 4 characters; the OEM table ID is "VMM" + signature.
  SdtBuilder(absl::string_view signature, uint8_t revision);

  std::vector<uint8_t>& bytes() { return bytes_; }
  template <typename T>
  void Append(const T& value) {
    AppendStruct(bytes_, value);
  }
  void AppendBytes(absl::Span<const uint8_t> data) { bytes_.insert(bytes_.end(), data.begin(), data.end()); }

  std::vector<uint8_t> Finish() &&;

 private:
  std::vector<uint8_t> bytes_;
};

}  // namespace vmm::firmware::acpi

#endif  // VMM_FIRMWARE_ACPI_SDT_H_
