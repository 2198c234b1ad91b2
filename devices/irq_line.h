// How a device raises an interrupt without knowing about KVM. The VMM hands
// each device an implementation wired to the in-kernel interrupt controller.
#ifndef VMM_DEVICES_IRQ_LINE_H_
#define VMM_DEVICES_IRQ_LINE_H_

namespace vmm {

class IrqLine {
 public:
  virtual ~IrqLine() = default;
  // Drives the line's level: true while the device has an interrupt pending.
  // Edge-triggered controllers (ISA IRQs on the PIC) see the rising edge.
  virtual void SetLevel(bool asserted) = 0;
};

}  // namespace vmm

#endif  // VMM_DEVICES_IRQ_LINE_H_
