#include "vmm/kvm/kvm_system.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "vmm/kvm/kvm_error.h"
#include "vmm/kvm/kvm_uapi.h"

namespace vmm {

absl::StatusOr<KvmSystem> KvmSystem::Open(absl::string_view path) {
  std::string p(path);
  int fd = ::open(p.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) {
      return absl::UnavailableError(absl::StrFormat(
          "%s does not exist: this host has no KVM (is the kvm module loaded?)", p));
    }
    if (err == EACCES || err == EPERM) {
      // The host's set-up, not the user's input: Unavailable (exit 1).
      return absl::UnavailableError(absl::StrFormat(
          "no permission to open %s: add your user to the 'kvm' group or run as root", p));
    }
    return absl::UnavailableError(absl::StrFormat("cannot open %s: %s", p, std::strerror(err)));
  }
  KvmSystem kvm{UniqueFd(fd)};
  int version = ::ioctl(fd, KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION) {
    return absl::UnavailableError(absl::StrFormat(
        "KVM_GET_API_VERSION returned %d, expected %d", version, KVM_API_VERSION));
  }
  return kvm;
}

int KvmSystem::CheckExtension(int capability) const {
  int r = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, capability);
  return r < 0 ? 0 : r;
}

int KvmSystem::MaxVcpus() const {
  int max = CheckExtension(KVM_CAP_MAX_VCPUS);
  if (max > 0) return max;
  int nr = CheckExtension(KVM_CAP_NR_VCPUS);
  return nr > 0 ? nr : 4;  // api.rst: assume 4 when neither is reported
}

absl::StatusOr<int> KvmSystem::VcpuMmapSize() const {
  int size = ::ioctl(fd_.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (size <= 0) return KvmError("KVM_GET_VCPU_MMAP_SIZE");
  return size;
}

absl::StatusOr<std::vector<uint32_t>> KvmSystem::GetMsrIndexList() const {
  // Grow the buffer until KVM stops answering E2BIG.
  for (uint32_t n = 64; n <= 16384; n *= 2) {
    kvm_uapi::FlexBuffer<kvm_uapi::MsrListHeader, uint32_t> buf(n);
    buf.header()->nmsrs = n;
    if (::ioctl(fd_.get(), kvm_uapi::kGetMsrIndexList, buf.data()) == 0) {
      const uint32_t got = buf.header()->nmsrs < n ? buf.header()->nmsrs : n;
      return std::vector<uint32_t>(buf.entries(), buf.entries() + got);
    }
    if (errno != E2BIG) return KvmError("KVM_GET_MSR_INDEX_LIST");
  }
  return absl::InternalError("KVM_GET_MSR_INDEX_LIST: more than 16384 MSRs");
}

absl::StatusOr<std::vector<kvm_cpuid_entry2>> KvmSystem::GetSupportedCpuid() const {
  // Grow the buffer until KVM stops answering E2BIG.
  for (uint32_t n = 128; n <= 4096; n *= 2) {
    kvm_uapi::FlexBuffer<kvm_uapi::Cpuid2Header, kvm_cpuid_entry2> buf(n);
    buf.header()->nent = n;
    if (::ioctl(fd_.get(), kvm_uapi::kGetSupportedCpuid, buf.data()) == 0) {
      uint32_t got = buf.header()->nent < n ? buf.header()->nent : n;
      return std::vector<kvm_cpuid_entry2>(buf.entries(), buf.entries() + got);
    }
    if (errno != E2BIG) return KvmError("KVM_GET_SUPPORTED_CPUID");
  }
  return absl::InternalError("KVM_GET_SUPPORTED_CPUID: more than 4096 entries");
}

bool KvmSystem::IsPvmHost() {
  struct stat st;
  return ::stat("/sys/module/kvm_pvm", &st) == 0;
}

}  // namespace vmm
