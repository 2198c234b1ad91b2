#include "arch/x86_64/cpuid.h"

#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace vmm::x86_64 {
namespace {

kvm_cpuid_entry2 Leaf(uint32_t function, uint32_t index, uint32_t eax, uint32_t ebx, uint32_t ecx,
                      uint32_t edx) {
  kvm_cpuid_entry2 e = {};
  e.function = function;
  e.index = index;
  e.eax = eax;
  e.ebx = ebx;
  e.ecx = ecx;
  e.edx = edx;
  if (function == 0x4 || function == 0xb || function == 0x1f || function == 0x8000'001d) {
    e.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
  }
  return e;
}

// Roughly what KVM_GET_SUPPORTED_CPUID reports on a big SMT host: host
// topology (APIC ID 0x3f, 64 threads sharing L3, 2 threads per core) that
// must not reach the guest.
std::vector<kvm_cpuid_entry2> HostCpuid() {
  return {
      Leaf(0x0, 0, 0x1f, 0x756e6547, 0x6c65746e, 0x49656e69),
      // EBX: APIC ID 0x3f, 64 logical, CLFLUSH 8. ECX: CX16 | MONITOR | SSE3.
      Leaf(0x1, 0, 0x000806f8, 0x3f400800, (1u << 13) | (1u << 3) | 1u, 0x178bfbff),
      Leaf(0x4, 0, 0xfc004121, 0x01c0003f, 0x3f, 0),  // L1d, 2 threads, 64 cores
      Leaf(0x4, 1, 0xfc004122, 0x01c0003f, 0x3f, 0),  // L1i
      Leaf(0x4, 2, 0xfc004143, 0x03c0003f, 0x7ff, 0),  // L2
      Leaf(0x4, 3, 0xfc07c163, 0x03c0003f, 0xbfff, 4),  // L3, 32 sharing
      Leaf(0x4, 4, 0, 0, 0, 0),                         // end of list
      Leaf(0x6, 0, 0x4, 0, 0, 0),
      Leaf(0x7, 0, 0, 0xd19f4fbb, 0x1bc05f4e, 0xac18c10),
      Leaf(0xa, 0, 0x07300805, 0, 0, 0x603),
      Leaf(0xb, 0, 1, 2, 0x100, 0x3f),
      Leaf(0xb, 1, 7, 64, 0x201, 0x3f),
      Leaf(0x4000'0000, 0, 0x4000'0001, 0x4b4d564b, 0x564b4d56, 0x4d),
      Leaf(0x4000'0001, 0, 0x01007afb, 0, 0, 0),
      Leaf(0x8000'0000, 0, 0x8000'0008, 0, 0, 0),
      Leaf(0x8000'0008, 0, 0x3030, 0, 0x0003'703f, 0),  // PerfTscSize 3, ApicIdSize 7, NC 63
  };
}

std::vector<kvm_cpuid_entry2> AmdHostCpuid() {
  return {
      Leaf(0x0, 0, 0x10, 0x68747541, 0x444d4163, 0x69746e65),
      Leaf(0x1, 0, 0x00a00f11, 0x3f400800, 1u << 13, 0x178bfbff),
      Leaf(0x8000'0000, 0, 0x8000'001e, 0, 0, 0),
      Leaf(0x8000'0001, 0, 0, 0, 1u << 22, 0),  // TOPOEXT
      Leaf(0x8000'0008, 0, 0x3030, 0, 0x0000'703f, 0),
      Leaf(0x8000'001d, 0, 0x00004121, 0x01c0003f, 0x3f, 0),  // L1d shared by 2
      Leaf(0x8000'001d, 1, 0x00004122, 0x01c0003f, 0x3f, 0),
      Leaf(0x8000'001d, 2, 0x00004143, 0x01c0003f, 0x3ff, 0),
      Leaf(0x8000'001d, 3, 0x0003c163, 0x03c0003f, 0x7fff, 1),  // L3 shared by 16
      Leaf(0x8000'001d, 4, 0, 0, 0, 0),
      Leaf(0x8000'001e, 0, 0x3f, 0x0100, 0x0300, 0),  // host: 2 threads/core, node 3
  };
}

std::vector<kvm_cpuid_entry2> Shape(const std::vector<kvm_cpuid_entry2>& host, uint32_t index,
                                    uint32_t count, bool clear_cx16 = false,
                                    bool tsc_deadline = false) {
  CpuidOptions options;
  options.vcpu_index = index;
  options.vcpu_count = count;
  options.clear_cx16 = clear_cx16;
  options.tsc_deadline_timer = tsc_deadline;
  auto shaped = ShapeCpuid(host, options);
  EXPECT_TRUE(shaped.ok()) << shaped.status();
  return shaped.ok() ? *shaped : std::vector<kvm_cpuid_entry2>{};
}

std::optional<kvm_cpuid_entry2> Find(const std::vector<kvm_cpuid_entry2>& entries,
                                     uint32_t function, uint32_t index = 0) {
  for (const kvm_cpuid_entry2& e : entries) {
    if (e.function == function && e.index == index) return e;
  }
  return std::nullopt;
}

TEST(CpuidTest, PvIpiFeaturesAreHiddenOnlyWhenAsked) {
  constexpr uint32_t kPvIpiBits = (1u << 7) | (1u << 11) | (1u << 13);
  CpuidOptions options;
  auto kept = ShapeCpuid(HostCpuid(), options);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(Find(*kept, 0x4000'0001)->eax & kPvIpiBits, 0x01007afbu & kPvIpiBits);
  options.disable_kvm_pv_ipi = true;
  auto hidden = ShapeCpuid(HostCpuid(), options);
  ASSERT_TRUE(hidden.ok());
  EXPECT_EQ(Find(*hidden, 0x4000'0001)->eax & kPvIpiBits, 0u);
  // Everything else KVM offers (kvm-clock among it) stays.
  EXPECT_EQ(Find(*hidden, 0x4000'0001)->eax | kPvIpiBits, 0x01007afbu | kPvIpiBits);
}

TEST(CpuidTest, EachVcpuSeesItsOwnApicIdEverywhere) {
  for (uint32_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    auto cpuid = Shape(HostCpuid(), i, 4);
    EXPECT_EQ(Find(cpuid, 0x1)->ebx >> 24, i) << "initial APIC ID";
    EXPECT_EQ(Find(cpuid, 0x1)->ebx & 0xffff, 0x0800u) << "CLFLUSH size and brand kept";
    for (uint32_t sub = 0; sub < 3; ++sub) {
      ASSERT_TRUE(Find(cpuid, 0xb, sub).has_value()) << "subleaf " << sub;
      EXPECT_EQ(Find(cpuid, 0xb, sub)->edx, i) << "x2APIC ID in subleaf " << sub;
    }
  }
}

TEST(CpuidTest, Leaf1CountsLogicalProcessorsAndSetsHttOnlyForSmp) {
  auto up = Shape(HostCpuid(), 0, 1);
  EXPECT_EQ((Find(up, 0x1)->ebx >> 16) & 0xff, 1u);
  EXPECT_EQ(Find(up, 0x1)->edx & (1u << 28), 0u);
  auto smp = Shape(HostCpuid(), 2, 3);
  EXPECT_EQ((Find(smp, 0x1)->ebx >> 16) & 0xff, 3u);
  EXPECT_NE(Find(smp, 0x1)->edx & (1u << 28), 0u);
}

TEST(CpuidTest, HypervisorBitIsSetAndMonitorHidden) {
  auto cpuid = Shape(HostCpuid(), 0, 1);
  EXPECT_NE(Find(cpuid, 0x1)->ecx & (1u << 31), 0u);
  EXPECT_EQ(Find(cpuid, 0x1)->ecx & (1u << 3), 0u);
  EXPECT_NE(Find(cpuid, 0x1)->ecx & 1u, 0u) << "SSE3 untouched";
}

TEST(CpuidTest, Cx16IsClearedOnlyWhenAsked) {
  EXPECT_NE(Find(Shape(HostCpuid(), 0, 1), 0x1)->ecx & (1u << 13), 0u);
  EXPECT_EQ(Find(Shape(HostCpuid(), 0, 1, /*clear_cx16=*/true), 0x1)->ecx & (1u << 13), 0u);
}

TEST(CpuidTest, TscDeadlineIsAdvertisedOnlyWhenAsked) {
  EXPECT_EQ(Find(Shape(HostCpuid(), 0, 1), 0x1)->ecx & (1u << 24), 0u);
  EXPECT_NE(Find(Shape(HostCpuid(), 0, 1, false, /*tsc_deadline=*/true), 0x1)->ecx & (1u << 24),
            0u);
}

TEST(CpuidTest, ExtendedTopologyIsOneThreadPerCoreInOnePackage) {
  auto cpuid = Shape(HostCpuid(), 1, 5);
  auto smt = *Find(cpuid, 0xb, 0);
  EXPECT_EQ(smt.eax & 0x1f, 0u) << "no SMT bits";
  EXPECT_EQ(smt.ebx & 0xffff, 1u) << "one thread per core";
  EXPECT_EQ(smt.ecx, 0x100u) << "level 0, type SMT";
  auto core = *Find(cpuid, 0xb, 1);
  EXPECT_EQ(core.eax & 0x1f, 3u) << "5 cores need 3 ID bits";
  EXPECT_EQ(core.ebx & 0xffff, 5u);
  EXPECT_EQ(core.ecx, 0x201u) << "level 1, type core";
  auto end = *Find(cpuid, 0xb, 2);
  EXPECT_EQ(end.ebx, 0u);
  EXPECT_EQ((end.ecx >> 8) & 0xff, 0u) << "invalid level ends the enumeration";
  EXPECT_EQ(smt.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
}

TEST(CpuidTest, CoreIdBitsRoundUpToPowersOfTwo) {
  const std::pair<uint32_t, uint32_t> cases[] = {{1, 0}, {2, 1}, {3, 2}, {4, 2}, {8, 3}, {9, 4}};
  for (auto [count, bits] : cases) {
    EXPECT_EQ(Find(Shape(HostCpuid(), 0, count), 0xb, 1)->eax, bits) << count << " vCPUs";
  }
}

TEST(CpuidTest, Leaf1FIsRewrittenOnlyWhenKvmReportsIt) {
  EXPECT_FALSE(Find(Shape(HostCpuid(), 0, 2), 0x1f).has_value());
  auto host = HostCpuid();
  host.push_back(Leaf(0x1f, 0, 1, 2, 0x100, 0x3f));
  host.push_back(Leaf(0x1f, 1, 4, 16, 0x201, 0x3f));
  host.push_back(Leaf(0x1f, 2, 7, 64, 0x502, 0x3f));  // a die level
  auto cpuid = Shape(host, 1, 2);
  EXPECT_EQ(Find(cpuid, 0x1f, 1)->ebx, 2u);
  EXPECT_EQ(Find(cpuid, 0x1f, 1)->edx, 1u);
  EXPECT_EQ((Find(cpuid, 0x1f, 2)->ecx >> 8) & 0xff, 0u) << "host die level dropped";
}

TEST(CpuidTest, TopologyLeafIsAddedOnlyWhenTheMaximumBasicLeafCoversIt) {
  auto host = HostCpuid();
  std::erase_if(host, [](const kvm_cpuid_entry2& e) { return e.function == 0xb; });
  EXPECT_EQ(Find(Shape(host, 1, 2), 0xb, 1)->edx, 1u);

  auto old_host = AmdHostCpuid();
  old_host[0].eax = 0xa;
  EXPECT_FALSE(Find(Shape(old_host, 0, 2), 0xb).has_value());
}

TEST(CpuidTest, CacheLeafReportsCoresAndWhoSharesEachCache) {
  auto cpuid = Shape(HostCpuid(), 0, 4);
  for (uint32_t sub = 0; sub < 3; ++sub) {
    auto cache = *Find(cpuid, 0x4, sub);
    EXPECT_EQ(cache.eax >> 26, 3u) << "4 cores, subleaf " << sub;
    EXPECT_EQ((cache.eax >> 14) & 0xfff, 0u) << "L1/L2 private, subleaf " << sub;
    EXPECT_EQ(cache.eax & 0x3fff, HostCpuid()[2 + sub].eax & 0x3fff) << "cache type/level kept";
  }
  EXPECT_EQ((Find(cpuid, 0x4, 3)->eax >> 14) & 0xfff, 3u) << "L3 shared by all 4";
  EXPECT_EQ(Find(cpuid, 0x4, 4)->eax, 0u) << "terminator untouched";
}

TEST(CpuidTest, AmdLeavesCarryTheCoreCount) {
  auto cpuid = Shape(AmdHostCpuid(), 2, 3);
  auto sizes = *Find(cpuid, 0x8000'0008);
  EXPECT_EQ(sizes.ecx & 0xff, 2u) << "NC = cores - 1";
  EXPECT_EQ((sizes.ecx >> 12) & 0xf, 2u) << "ApicIdSize";
  EXPECT_EQ(sizes.eax, 0x3030u) << "address sizes kept";

  auto ext = *Find(cpuid, 0x8000'001e);
  EXPECT_EQ(ext.eax, 2u) << "extended APIC ID";
  EXPECT_EQ(ext.ebx & 0xff, 2u) << "core ID";
  EXPECT_EQ((ext.ebx >> 8) & 0xff, 0u) << "one thread per core";
  EXPECT_EQ(ext.ecx & 0x7ff, 0u) << "node 0 of 1";

  EXPECT_EQ((Find(cpuid, 0x8000'001d, 0)->eax >> 14) & 0xfff, 0u) << "L1d private";
  EXPECT_EQ((Find(cpuid, 0x8000'001d, 3)->eax >> 14) & 0xfff, 2u) << "L3 shared by 3";
}

TEST(CpuidTest, KvmSignatureLeafNamesKvmAndItsHighestLeaf) {
  auto host = HostCpuid();
  host[12].ebx = 0x12345678;  // a different signature must not survive
  auto cpuid = Shape(host, 0, 1);
  auto sig = *Find(cpuid, 0x4000'0000);
  char name[13] = {};
  std::memcpy(name, &sig.ebx, 4);
  std::memcpy(name + 4, &sig.ecx, 4);
  std::memcpy(name + 8, &sig.edx, 4);
  EXPECT_EQ(std::string(name, 12), std::string("KVMKVMKVM\0\0\0", 12));
  EXPECT_EQ(sig.eax, 0x4000'0001u);
  EXPECT_EQ(Find(cpuid, 0x4000'0001)->eax, 0x01007afbu) << "KVM features kept as supplied";

  host.push_back(Leaf(0x4000'0010, 0, 2'000'000, 1'000'000, 0, 0));
  EXPECT_EQ(Find(Shape(host, 0, 1), 0x4000'0000)->eax, 0x4000'0010u);
}

TEST(CpuidTest, KvmSignatureLeafIsAddedWhenMissing) {
  auto cpuid = Shape(AmdHostCpuid(), 0, 1);
  auto sig = Find(cpuid, 0x4000'0000);
  ASSERT_TRUE(sig.has_value());
  EXPECT_EQ(sig->ebx, 0x4b4d564bu) << "\"KVMK\"";
}

TEST(CpuidTest, UnrelatedLeavesPassThroughUnchanged) {
  auto host = HostCpuid();
  auto cpuid = Shape(host, 1, 2);
  for (uint32_t function : {0x0u, 0x6u, 0x7u, 0xau, 0x8000'0000u}) {
    auto in = *Find(host, function);
    auto out = *Find(cpuid, function);
    EXPECT_EQ(std::memcmp(&in, &out, sizeof(in)), 0) << std::hex << function;
  }
}

TEST(CpuidTest, NoLeafAppearsTwiceAndTheResultIsDeterministic) {
  auto first = Shape(HostCpuid(), 1, 2);
  auto second = Shape(HostCpuid(), 1, 2);
  ASSERT_EQ(first.size(), second.size());
  EXPECT_EQ(std::memcmp(first.data(), second.data(), first.size() * sizeof(first[0])), 0);
  std::set<std::pair<uint32_t, uint32_t>> seen;
  for (const auto& e : first) {
    EXPECT_TRUE(seen.insert({e.function, e.index}).second)
        << std::hex << e.function << "/" << e.index;
  }
}

TEST(CpuidTest, BadOptionsAreRejected) {
  CpuidOptions none;
  none.vcpu_count = 0;
  EXPECT_EQ(ShapeCpuid(HostCpuid(), none).status().code(), absl::StatusCode::kInvalidArgument);
  CpuidOptions out_of_range;
  out_of_range.vcpu_index = 2;
  out_of_range.vcpu_count = 2;
  EXPECT_EQ(ShapeCpuid(HostCpuid(), out_of_range).status().code(),
            absl::StatusCode::kInvalidArgument);
  CpuidOptions too_many;
  too_many.vcpu_count = kMaxCpuidVcpus + 1;
  EXPECT_FALSE(ShapeCpuid(HostCpuid(), too_many).ok());
  too_many.vcpu_count = kMaxCpuidVcpus;
  too_many.vcpu_index = kMaxCpuidVcpus - 1;
  auto max = ShapeCpuid(HostCpuid(), too_many);
  ASSERT_TRUE(max.ok());
  EXPECT_EQ(Find(*max, 0x1)->ebx >> 24, 253u);
}

}  // namespace
}  // namespace vmm::x86_64
