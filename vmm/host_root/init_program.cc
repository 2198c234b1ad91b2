#include "vmm/host_root/init_program.h"

// Defined in the generated init_program_blob.S.
extern "C" const char vmm_host_root_init[];
extern "C" const char vmm_host_root_init_end[];

namespace vmm::host_root {

absl::string_view InitProgram() {
  return absl::string_view(vmm_host_root_init,
                           static_cast<size_t>(vmm_host_root_init_end - vmm_host_root_init));
}

}  // namespace vmm::host_root
