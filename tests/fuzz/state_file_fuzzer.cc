// Fuzzes the snapshot state file's parser (base/state_file.h): the input is
// the file. A file that parses must serialize to one that parses to the
// same sections, and every section is then read as a vCPU-like payload
// (fixed fields, a bounded byte string) without reading out of bounds.
#include <cstdint>
#include <string>

#include "base/state_file.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<vmm::StateFile> parsed = vmm::StateFile::Parse(bytes);
  if (!parsed.ok()) return 0;
  const std::string again = parsed->Serialize();
  absl::StatusOr<vmm::StateFile> reparsed = vmm::StateFile::Parse(again);
  FUZZ_CHECK(reparsed.ok());
  FUZZ_CHECK(reparsed->Names() == parsed->Names());
  for (const std::string& name : parsed->Names()) {
    absl::StatusOr<absl::string_view> payload = parsed->Get(name);
    FUZZ_CHECK(payload.ok());
    FUZZ_CHECK(*reparsed->Get(name) == *payload);
    vmm::StateReader reader(name, *payload);
    uint64_t rip = 0;
    uint32_t flags = 0;
    std::string xsave;
    if (reader.Get("rip", &rip).ok() && reader.Get("flags", &flags).ok() &&
        reader.GetBytes("xsave", 4096, &xsave).ok()) {
      FUZZ_CHECK(xsave.size() <= 4096);
      (void)reader.Finish();
    }
  }
  return 0;
}
