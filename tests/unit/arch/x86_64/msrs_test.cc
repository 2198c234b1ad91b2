#include "arch/x86_64/msrs.h"

#include <map>

#include "gtest/gtest.h"

namespace vmm::x86_64 {
namespace {

std::map<uint32_t, uint64_t> AsMap(const std::vector<kvm_msr_entry>& msrs) {
  std::map<uint32_t, uint64_t> map;
  for (const kvm_msr_entry& e : msrs) {
    EXPECT_TRUE(map.emplace(e.index, e.data).second) << "duplicate MSR 0x" << std::hex << e.index;
    EXPECT_EQ(e.reserved, 0u);
  }
  return map;
}

TEST(MsrsTest, SyscallAndSysenterMsrsStartZeroed) {
  auto msrs = AsMap(BootMsrs());
  for (uint32_t index : {0x174u, 0x175u, 0x176u, 0xc0000081u, 0xc0000082u, 0xc0000083u,
                         0xc0000084u, 0xc0000102u}) {
    ASSERT_TRUE(msrs.count(index)) << "missing MSR 0x" << std::hex << index;
    EXPECT_EQ(msrs[index], 0u) << "MSR 0x" << std::hex << index;
  }
}

TEST(MsrsTest, MtrrsEnabledWithWriteBackDefaultSoRamIsCacheable) {
  auto msrs = AsMap(BootMsrs());
  ASSERT_TRUE(msrs.count(0x2ff));
  EXPECT_EQ(msrs[0x2ff], 0x806u);
}

TEST(MsrsTest, MiscEnableTurnsOnFastStrings) {
  auto msrs = AsMap(BootMsrs());
  ASSERT_TRUE(msrs.count(0x1a0));
  EXPECT_EQ(msrs[0x1a0], 1u);
}

TEST(MsrsTest, TscIsLeftAlone) {
  auto msrs = AsMap(BootMsrs());
  EXPECT_EQ(msrs.count(0x10), 0u) << "writing IA32_TSC would desynchronise vCPUs";
  EXPECT_EQ(msrs.size(), 10u);
}

}  // namespace
}  // namespace vmm::x86_64
