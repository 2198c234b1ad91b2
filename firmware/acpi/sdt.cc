#include "firmware/acpi/sdt.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace vmm::firmware::acpi {

uint8_t ChecksumByte(absl::Span<const uint8_t> bytes) {
  uint8_t sum = 0;
  for (uint8_t b : bytes) sum = static_cast<uint8_t>(sum + b);
  return static_cast<uint8_t>(-sum);
}

SdtBuilder::SdtBuilder(absl::string_view signature, uint8_t revision) {
  SdtHeader header = {};
  std::memcpy(header.signature, signature.data(), std::min<size_t>(signature.size(), 4));
  header.revision = revision;
  std::memcpy(header.oem_id, kOemId, 6);
  std::memcpy(header.oem_table_id, "VMM     ", 8);
  std::memcpy(header.oem_table_id + 3, signature.data(), std::min<size_t>(signature.size(), 4));
  header.oem_revision = kOemRevision;
  std::memcpy(header.creator_id, kCreatorId, 4);
  header.creator_revision = kCreatorRevision;
  Append(header);
}

std::vector<uint8_t> SdtBuilder::Finish() && {
  const uint32_t length = static_cast<uint32_t>(bytes_.size());
  std::memcpy(bytes_.data() + offsetof(SdtHeader, length), &length, sizeof(length));
  bytes_[offsetof(SdtHeader, checksum)] = 0;
  bytes_[offsetof(SdtHeader, checksum)] = ChecksumByte(bytes_);
  return std::move(bytes_);
}

}  // namespace vmm::firmware::acpi
