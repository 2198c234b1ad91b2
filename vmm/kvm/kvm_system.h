// /dev/kvm: API version, capabilities, supported CPUID. vmm/kvm/ is the only
// code in the tree that issues KVM ioctls.
#ifndef VMM_VMM_KVM_KVM_SYSTEM_H_
#define VMM_VMM_KVM_KVM_SYSTEM_H_

#include <linux/kvm.h>

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/unique_fd.h"

namespace vmm {

class KvmSystem {
 public:
  // Opens the KVM device and checks the API version. A missing device or a
  // permission problem is one sentence the user can act on.
  static absl::StatusOr<KvmSystem> Open(absl::string_view path = "/dev/kvm");

  int fd() const { return fd_.get(); }
  // KVM_CHECK_EXTENSION; 0 when unsupported.
  int CheckExtension(int capability) const;
  // The largest number of vCPUs a VM may have.
  int MaxVcpus() const;
  absl::StatusOr<int> VcpuMmapSize() const;
  absl::StatusOr<std::vector<kvm_cpuid_entry2>> GetSupportedCpuid() const;
  // The MSRs KVM saves and restores for a guest (KVM_GET_MSR_INDEX_LIST).
  absl::StatusOr<std::vector<uint32_t>> GetMsrIndexList() const;
  // True when /dev/kvm is backed by PVM (kvm_pvm module): guests that are not
  // PVM guests run under KVM's instruction emulator (see PLATFORM.md).
  static bool IsPvmHost();

 private:
  explicit KvmSystem(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace vmm

#endif  // VMM_VMM_KVM_KVM_SYSTEM_H_
