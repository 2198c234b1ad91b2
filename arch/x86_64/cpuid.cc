#include "arch/x86_64/cpuid.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"

namespace vmm::x86_64 {
namespace {

constexpr uint32_t kLeafBasic = 0x0;
constexpr uint32_t kLeafFeatures = 0x1;
constexpr uint32_t kLeafCacheParams = 0x4;
constexpr uint32_t kLeafTopology = 0xb;
constexpr uint32_t kLeafTopologyV2 = 0x1f;
constexpr uint32_t kLeafHypervisorBase = 0x4000'0000;
constexpr uint32_t kLeafHypervisorLast = 0x4000'00ff;
constexpr uint32_t kLeafKvmFeatures = 0x4000'0001;
constexpr uint32_t kKvmFeaturePvUnhalt = 1u << 7;
constexpr uint32_t kKvmFeaturePvSendIpi = 1u << 11;
constexpr uint32_t kKvmFeaturePvSchedYield = 1u << 13;
constexpr uint32_t kLeafAddressSizes = 0x8000'0008;
constexpr uint32_t kLeafAmdCacheTopology = 0x8000'001d;
constexpr uint32_t kLeafAmdExtendedApicId = 0x8000'001e;

constexpr uint32_t kLeaf1EcxMonitor = 1u << 3;
constexpr uint32_t kLeaf1EcxCx16 = 1u << 13;
constexpr uint32_t kLeaf1EcxTscDeadline = 1u << 24;
constexpr uint32_t kLeaf1EcxHypervisor = 1u << 31;
constexpr uint32_t kLeaf1EdxHtt = 1u << 28;

// Extended topology level types (leaf 0xB/0x1F ECX[15:8]).
constexpr uint32_t kLevelInvalid = 0;
constexpr uint32_t kLevelSmt = 1;
constexpr uint32_t kLevelCore = 2;

// Bits an ID field needs to number `count` items: ceil(log2(count)).
uint32_t IdBits(uint32_t count) {
  return count <= 1 ? 0 : 32 - static_cast<uint32_t>(__builtin_clz(count - 1));
}

uint32_t SetField(uint32_t value, int low, int width, uint32_t field) {
  const uint32_t mask = ((width == 32 ? 0 : (1u << width)) - 1) << low;
  return (value & ~mask) | ((field << low) & mask);
}

kvm_cpuid_entry2 Entry(uint32_t function, uint32_t index, uint32_t flags) {
  kvm_cpuid_entry2 entry = {};
  entry.function = function;
  entry.index = index;
  entry.flags = flags;
  return entry;
}

// Leaf 0xB / 0x1F: SMT level (one thread), core level (the whole package),
// then the invalid level that ends the enumeration.
void AppendTopologyLeaf(uint32_t function, const CpuidOptions& options,
                        std::vector<kvm_cpuid_entry2>& out) {
  const uint32_t apic_id = options.vcpu_index;
  kvm_cpuid_entry2 smt = Entry(function, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
  smt.eax = 0;  // no SMT bits in the x2APIC ID
  smt.ebx = 1;
  smt.ecx = (kLevelSmt << 8) | 0;
  smt.edx = apic_id;
  out.push_back(smt);

  kvm_cpuid_entry2 core = Entry(function, 1, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
  core.eax = IdBits(options.vcpu_count);  // shift to the package ID
  core.ebx = options.vcpu_count;
  core.ecx = (kLevelCore << 8) | 1;
  core.edx = apic_id;
  out.push_back(core);

  kvm_cpuid_entry2 end = Entry(function, 2, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
  end.ecx = (kLevelInvalid << 8) | 2;
  end.edx = apic_id;
  out.push_back(end);
}

kvm_cpuid_entry2 KvmSignatureLeaf(uint32_t highest_leaf) {
  static constexpr char kSignature[12] = {'K', 'V', 'M', 'K', 'V', 'M', 'K', 'V', 'M', 0, 0, 0};
  kvm_cpuid_entry2 entry = Entry(kLeafHypervisorBase, 0, 0);
  entry.eax = highest_leaf;
  std::memcpy(&entry.ebx, kSignature, 4);
  std::memcpy(&entry.ecx, kSignature + 4, 4);
  std::memcpy(&entry.edx, kSignature + 8, 4);
  return entry;
}

// Threads sharing a cache - 1 for cache `level` (EAX[7:5] of leaf 4 and
// 0x8000001D): private per core for L1/L2, shared by the package beyond.
uint32_t CacheSharingMinusOne(uint32_t eax, uint32_t vcpu_count) {
  const uint32_t level = (eax >> 5) & 0x7;
  return level >= 3 ? vcpu_count - 1 : 0;
}

bool IsCacheDescriptor(uint32_t eax) { return (eax & 0x1f) != 0; }

}  // namespace

absl::StatusOr<std::vector<kvm_cpuid_entry2>> ShapeCpuid(
    absl::Span<const kvm_cpuid_entry2> supported, const CpuidOptions& options) {
  const uint32_t n = options.vcpu_count;
  const uint32_t id = options.vcpu_index;
  if (n == 0 || n > kMaxCpuidVcpus) {
    return absl::InvalidArgumentError(
        absl::StrFormat("CPUID: %u vCPUs requested, supported 1..%u", n, kMaxCpuidVcpus));
  }
  if (id >= n) {
    return absl::InvalidArgumentError(
        absl::StrFormat("CPUID: vCPU index %u out of range for %u vCPUs", id, n));
  }

  uint32_t max_basic_leaf = 0;
  uint32_t highest_hypervisor_leaf = kLeafHypervisorBase;
  for (const kvm_cpuid_entry2& e : supported) {
    if (e.function == kLeafBasic) max_basic_leaf = e.eax;
    if (e.function > kLeafHypervisorBase && e.function <= kLeafHypervisorLast) {
      highest_hypervisor_leaf = std::max(highest_hypervisor_leaf, e.function);
    }
  }

  std::vector<kvm_cpuid_entry2> out;
  out.reserve(supported.size() + 4);
  bool wrote_topology = false;
  bool wrote_topology_v2 = false;
  bool wrote_signature = false;

  for (kvm_cpuid_entry2 e : supported) {
    switch (e.function) {
      case kLeafFeatures:
        e.ebx = SetField(e.ebx, 24, 8, id);
        e.ebx = SetField(e.ebx, 16, 8, n);
        e.edx = n > 1 ? (e.edx | kLeaf1EdxHtt) : (e.edx & ~kLeaf1EdxHtt);
        e.ecx |= kLeaf1EcxHypervisor;
        e.ecx &= ~kLeaf1EcxMonitor;
        if (options.clear_cx16) e.ecx &= ~kLeaf1EcxCx16;
        if (options.tsc_deadline_timer) e.ecx |= kLeaf1EcxTscDeadline;
        break;
      case kLeafCacheParams:
        if (IsCacheDescriptor(e.eax)) {
          e.eax = SetField(e.eax, 26, 6, std::min(n - 1, 63u));
          e.eax = SetField(e.eax, 14, 12, CacheSharingMinusOne(e.eax, n));
        }
        break;
      case kLeafTopology:
        if (!wrote_topology) AppendTopologyLeaf(kLeafTopology, options, out);
        wrote_topology = true;
        continue;
      case kLeafTopologyV2:
        if (!wrote_topology_v2) AppendTopologyLeaf(kLeafTopologyV2, options, out);
        wrote_topology_v2 = true;
        continue;
      case kLeafHypervisorBase:
        if (!wrote_signature) out.push_back(KvmSignatureLeaf(highest_hypervisor_leaf));
        wrote_signature = true;
        continue;
      case kLeafKvmFeatures:
        if (options.disable_kvm_pv_ipi) {
          e.eax &= ~(kKvmFeaturePvUnhalt | kKvmFeaturePvSendIpi | kKvmFeaturePvSchedYield);
        }
        break;
      case kLeafAddressSizes:
        e.ecx = SetField(e.ecx, 0, 8, n - 1);
        e.ecx = SetField(e.ecx, 12, 4, IdBits(n));
        break;
      case kLeafAmdCacheTopology:
        if (IsCacheDescriptor(e.eax)) e.eax = SetField(e.eax, 14, 12, CacheSharingMinusOne(e.eax, n));
        break;
      case kLeafAmdExtendedApicId:
        e.eax = id;
        e.ebx = SetField(e.ebx, 0, 16, id & 0xff);  // core ID; threads per core - 1 = 0
        e.ecx = SetField(e.ecx, 0, 11, 0);           // node 0, one node per package
        break;
      default:
        break;
    }
    out.push_back(e);
  }

  if (!wrote_topology && max_basic_leaf >= kLeafTopology) {
    AppendTopologyLeaf(kLeafTopology, options, out);
  }
  if (!wrote_signature) out.push_back(KvmSignatureLeaf(highest_hypervisor_leaf));
  return out;
}

}  // namespace vmm::x86_64
