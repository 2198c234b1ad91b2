#include "firmware/reset_vector.h"

#include "absl/strings/str_cat.h"
#include "arch/x86_64/layout.h"

namespace vmm::firmware {

static_assert(x86_64::kResetVectorStart + kResetVectorCode.size() <= x86_64::kHighMemStart);
static_assert(x86_64::kAcpiStart + x86_64::kAcpiSize <= x86_64::kResetVectorStart);

absl::Status WriteResetVector(const GuestMemory& memory) {
  absl::Status written =
      memory.WriteBytes(GuestAddress(x86_64::kResetVectorStart), kResetVectorCode);
  if (!written.ok()) return absl::Status(written.code(), absl::StrCat("reset vector: ", written.message()));
  return absl::OkStatus();
}

}  // namespace vmm::firmware
