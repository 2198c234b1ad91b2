#include "arch/x86_64/irq_routing.h"

#include <set>
#include <utility>

#include "arch/x86_64/layout.h"
#include "gtest/gtest.h"

namespace vmm::x86_64 {
namespace {

// (chip, pin) pairs a GSI is routed to.
std::set<std::pair<uint32_t, uint32_t>> Targets(uint32_t gsi) {
  std::set<std::pair<uint32_t, uint32_t>> out;
  for (const kvm_irq_routing_entry& e : LegacyIrqRouting()) {
    EXPECT_EQ(e.type, static_cast<uint32_t>(KVM_IRQ_ROUTING_IRQCHIP));
    if (e.gsi == gsi) out.insert({e.u.irqchip.irqchip, e.u.irqchip.pin});
  }
  return out;
}

TEST(IrqRoutingTest, PitGsiZeroReachesPicPinZeroAndIoapicPinTwo) {
  EXPECT_EQ(Targets(0), (std::set<std::pair<uint32_t, uint32_t>>{
                            {KVM_IRQCHIP_PIC_MASTER, 0}, {KVM_IRQCHIP_IOAPIC, kPitIoapicPin}}));
}

TEST(IrqRoutingTest, CascadeGsiTwoIsNotRouted) { EXPECT_TRUE(Targets(2).empty()); }

TEST(IrqRoutingTest, IsaIrqsReachTheirPicAndIoapicPins) {
  EXPECT_EQ(Targets(kSerialIrq), (std::set<std::pair<uint32_t, uint32_t>>{
                                     {KVM_IRQCHIP_PIC_MASTER, 4}, {KVM_IRQCHIP_IOAPIC, 4}}));
  EXPECT_EQ(Targets(12), (std::set<std::pair<uint32_t, uint32_t>>{{KVM_IRQCHIP_PIC_SLAVE, 4},
                                                                  {KVM_IRQCHIP_IOAPIC, 12}}));
}

TEST(IrqRoutingTest, HighGsisReachOnlyTheIoapic) {
  for (uint32_t gsi = 16; gsi < kIoapicPins; ++gsi) {
    EXPECT_EQ(Targets(gsi), (std::set<std::pair<uint32_t, uint32_t>>{{KVM_IRQCHIP_IOAPIC, gsi}}));
  }
  EXPECT_TRUE(Targets(kIoapicPins).empty());
}

}  // namespace
}  // namespace vmm::x86_64
