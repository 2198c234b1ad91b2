// The KVM uapi, with a fix for C++.
//
// Debian 12's linux-libc-dev (6.1) declares flexible array members with
// __DECLARE_FLEX_ARRAY, which wraps them in a struct holding an empty struct.
// In C an empty struct has size 0; in C++ it has size 1, so in C++
// sizeof(kvm_cpuid2) is 12 instead of 8, `entries` sits at offset 12 instead
// of 8, and every ioctl number computed from such a struct is wrong (KVM then
// answers EINVAL). Newer headers special-case C++. Here we use the C layout:
// our own fixed headers, the entries placed right after them, and ioctl
// numbers computed from the C sizes.
#ifndef VMM_VMM_KVM_KVM_UAPI_H_
#define VMM_VMM_KVM_KVM_UAPI_H_

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

namespace vmm::kvm_uapi {

// The fixed part of struct kvm_cpuid2; kvm_cpuid_entry2[nent] follows.
struct Cpuid2Header {
  uint32_t nent;
  uint32_t padding;
};
// The fixed part of struct kvm_msrs; kvm_msr_entry[nmsrs] follows.
struct MsrsHeader {
  uint32_t nmsrs;
  uint32_t pad;
};
// The fixed part of struct kvm_irq_routing; kvm_irq_routing_entry[nr] follows.
struct IrqRoutingHeader {
  uint32_t nr;
  uint32_t flags;
};
// The fixed part of struct kvm_msr_list; uint32_t indices[nmsrs] follow.
struct MsrListHeader {
  uint32_t nmsrs;
};
static_assert(sizeof(MsrListHeader) == 4);
static_assert(sizeof(Cpuid2Header) == 8 && sizeof(MsrsHeader) == 8 &&
              sizeof(IrqRoutingHeader) == 8);
static_assert(sizeof(kvm_cpuid_entry2) == 40 && sizeof(kvm_msr_entry) == 16 &&
              sizeof(kvm_irq_routing_entry) == 48);

inline constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, Cpuid2Header);
inline constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, Cpuid2Header);
inline constexpr unsigned long kGetCpuid2 = _IOWR(KVMIO, 0x91, Cpuid2Header);
inline constexpr unsigned long kGetMsrIndexList = _IOWR(KVMIO, 0x02, MsrListHeader);
inline constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, MsrsHeader);
inline constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);
inline constexpr unsigned long kSetGsiRouting = _IOW(KVMIO, 0x6a, IrqRoutingHeader);
// struct kvm_xsave's region is 4096 bytes; its flexible `extra` member makes
// sizeof() wrong in C++, so these are spelled out.
inline constexpr unsigned long kGetXsave = _IOC(_IOC_READ, KVMIO, 0xa4, 4096);
inline constexpr unsigned long kSetXsave = _IOC(_IOC_WRITE, KVMIO, 0xa5, 4096);

// A header followed by `count` entries, in one 8-byte-aligned buffer, laid
// out as the kernel expects.
template <typename Header, typename Entry>
class FlexBuffer {
 public:
  explicit FlexBuffer(size_t count)
      : words_((sizeof(Header) + count * sizeof(Entry) + 7) / 8, 0) {}
  Header* header() { return reinterpret_cast<Header*>(words_.data()); }
  Entry* entries() {
    return reinterpret_cast<Entry*>(reinterpret_cast<uint8_t*>(words_.data()) + sizeof(Header));
  }
  void* data() { return words_.data(); }

 private:
  std::vector<uint64_t> words_;
};

}  // namespace vmm::kvm_uapi

#endif  // VMM_VMM_KVM_KVM_UAPI_H_
