// Finishing, in the VMM, the few instructions KVM's instruction emulator
// cannot execute on a PVM-backed /dev/kvm (see shared/PLATFORM.md): INT3,
// FWAIT, CLAC/STAC, LDMXCSR/STMXCSR, LSL. Each is decoded from the bytes in the
// KVM_INTERNAL_ERROR_EMULATION exit and carried out exactly as the CPU
// would; anything not fully understood is refused, and the VM then ends with
// the usual one-line error.
//
// No KVM ioctls here: the decoder is pure, and the applier works through
// AssistVcpu, which KvmVcpu satisfies (AssistVcpuAdapter) and tests fake.
#ifndef VMM_ARCH_X86_64_EMULATION_ASSIST_H_
#define VMM_ARCH_X86_64_EMULATION_ASSIST_H_

#include <linux/kvm.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "base/guest_memory.h"

namespace vmm::x86_64 {

// The code size the instruction was fetched in.
enum class CpuMode {
  kReal,         // CR0.PE = 0: 16-bit
  kProtected16,  // protected mode, CS.D = 0
  kProtected32,  // protected or compatibility mode, CS.D = 1
  kLong64,       // EFER.LMA and CS.L
};
CpuMode CpuModeFromSregs(const kvm_sregs& sregs);
absl::string_view CpuModeName(CpuMode mode);

enum class SegmentReg { kEs, kCs, kSs, kDs, kFs, kGs };

// A decoded memory operand: linear address = segment base +
// (base + index * scale + disp), truncated to `address_bits`.
struct MemoryOperand {
  static constexpr uint8_t kNoReg = 0xff;
  uint8_t base = kNoReg;   // GPR number (0 = rAX ... 15 = r15) or kNoReg
  uint8_t index = kNoReg;  // GPR number or kNoReg
  uint8_t scale = 1;       // 1, 2, 4 or 8
  int64_t disp = 0;
  bool rip_relative = false;  // disp is relative to the next instruction
  SegmentReg segment = SegmentReg::kDs;
  uint8_t address_bits = 64;  // 64 or 32
};

enum class AssistKind { kInt3, kFwait, kClac, kStac, kLdmxcsr, kStmxcsr, kLsl };
absl::string_view AssistKindName(AssistKind kind);

struct Assist {
  AssistKind kind = AssistKind::kInt3;
  uint8_t length = 0;  // bytes, prefixes included
  // LDMXCSR/STMXCSR only: the 4-byte operand.
  std::optional<MemoryOperand> memory;
  bool vex = false;  // VLDMXCSR/VSTMXCSR
  // LSL (register form) only: destination and selector GPRs (0 = rAX ...
  // 15 = r15) and the operand size. Linux's paranoid entry (NMI, #MC, #DB)
  // reads the CPU number this way when FSGSBASE is on, and so does the vDSO's
  // getcpu().
  uint8_t dest_reg = 0;
  uint8_t src_reg = 0;
  uint8_t operand_bits = 32;  // 16, 32 or 64
};

// Decodes the instruction at the start of `insn` (the bytes of a
// KVM_INTERNAL_ERROR_EMULATION exit). nullopt for anything not fully
// understood: unknown opcodes, truncated bytes, prefixes that change the
// instruction, 16-bit addressing.
std::optional<Assist> DecodeEmulationFailure(absl::Span<const uint8_t> insn, CpuMode mode);

// The linear address of `operand` for an instruction ending at `next_rip`,
// or an error when it is not canonical or falls outside a 32-bit segment's
// limit (the CPU would fault; the VMM refuses rather than guess which way).
absl::StatusOr<uint64_t> OperandLinearAddress(const MemoryOperand& operand, const kvm_regs& regs,
                                              const kvm_sregs& sregs, uint64_t next_rip,
                                              CpuMode mode, uint32_t size);

// The vCPU state the applier needs; KvmVcpu has these members.
class AssistVcpu {
 public:
  virtual ~AssistVcpu() = default;
  virtual absl::StatusOr<kvm_regs> GetRegs() const = 0;
  virtual absl::Status SetRegs(const kvm_regs& regs) = 0;
  virtual absl::StatusOr<kvm_sregs> GetSregs() const = 0;
  // MXCSR lives in the XSAVE legacy area (KVM_GET_XSAVE/KVM_SET_XSAVE):
  // KVM_GET_FPU/KVM_SET_FPU ignore kvm_fpu.mxcsr (measured on this host).
  virtual absl::StatusOr<uint32_t> GetMxcsr() const = 0;
  virtual absl::Status SetMxcsr(uint32_t mxcsr) = 0;
  virtual absl::StatusOr<kvm_vcpu_events> GetVcpuEvents() const = 0;
  virtual absl::Status SetVcpuEvents(const kvm_vcpu_events& events) = 0;
  virtual absl::StatusOr<kvm_translation> Translate(uint64_t linear_address) const = 0;
};

// Wraps anything with AssistVcpu's member functions (KvmVcpu) by reference.
// GetMxcsr/SetMxcsr are optional on V: without them the MXCSR assists refuse.
template <typename V>
class AssistVcpuAdapter final : public AssistVcpu {
 public:
  explicit AssistVcpuAdapter(V& vcpu) : v_(vcpu) {}
  absl::StatusOr<kvm_regs> GetRegs() const override { return v_.GetRegs(); }
  absl::Status SetRegs(const kvm_regs& r) override { return v_.SetRegs(r); }
  absl::StatusOr<kvm_sregs> GetSregs() const override { return v_.GetSregs(); }
  // Until V can reach MXCSR, the MXCSR assists refuse (the VM ends as before).
  absl::StatusOr<uint32_t> GetMxcsr() const override {
    if constexpr (requires(const V& v) { v.GetMxcsr(); }) {
      return v_.GetMxcsr();
    } else {
      return absl::UnimplementedError("this vCPU cannot read MXCSR");
    }
  }
  absl::Status SetMxcsr(uint32_t m) override {
    if constexpr (requires(V& v) { v.SetMxcsr(m); }) {
      return v_.SetMxcsr(m);
    } else {
      return absl::UnimplementedError("this vCPU cannot write MXCSR");
    }
  }
  absl::StatusOr<kvm_vcpu_events> GetVcpuEvents() const override { return v_.GetVcpuEvents(); }
  absl::Status SetVcpuEvents(const kvm_vcpu_events& e) override { return v_.SetVcpuEvents(e); }
  absl::StatusOr<kvm_translation> Translate(uint64_t la) const override { return v_.Translate(la); }

 private:
  V& v_;
};

// Instructions finished per kind, VM-wide; plus the exceptions the VMM
// raised in the guest instead (e.g. #GP for LDMXCSR with reserved bits) and
// the failures it refused.
struct EmulationAssistCounts {
  std::atomic<uint64_t> int3{0};
  std::atomic<uint64_t> fwait{0};
  std::atomic<uint64_t> clac{0};
  std::atomic<uint64_t> stac{0};
  std::atomic<uint64_t> ldmxcsr{0};
  std::atomic<uint64_t> stmxcsr{0};
  std::atomic<uint64_t> lsl{0};
  std::atomic<uint64_t> faults_injected{0};
  std::atomic<uint64_t> refused{0};
  // Failures outside ring 0 that no assist finishes: #UD for the guest.
  std::atomic<uint64_t> user_ud{0};

  // Instructions finished, each kind together, plus the faults an assist
  // raised instead of finishing one.
  uint64_t Finished() const {
    auto get = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
    return get(int3) + get(fwait) + get(clac) + get(stac) + get(ldmxcsr) + get(stmxcsr) +
           get(lsl) + get(faults_injected);
  }
};

// One per VM, shared by its vCPU threads (Apply is thread-safe: the vCPU is
// the caller's, memory accesses are bounds-checked, counters are atomic).
class EmulationAssists {
 public:
  // `memory` may be null: memory-operand forms are then refused. `notice`
  // (may be empty) gets one line, once, the first time an assist is applied.
  EmulationAssists(const GuestMemory* memory, std::function<void(absl::string_view)> notice);

  // Finishes the instruction in `insn` on `vcpu` (which has stopped on it):
  // on OK the vCPU may re-enter the guest. An error says, in a few words, why
  // the VMM cannot finish it; the vCPU state is then unchanged. Outside ring
  // 0 an instruction vmm cannot finish raises #UD in the guest instead (OK,
  // counted in user_ud), as KVM does without KVM_CAP_EXIT_ON_EMULATION_FAILURE.
  absl::Status Apply(AssistVcpu& vcpu, absl::Span<const uint8_t> insn);

  const EmulationAssistCounts& counts() const { return counts_; }
  uint32_t mxcsr_mask() const { return mxcsr_mask_; }

 private:
  absl::Status ApplyDecoded(AssistVcpu& vcpu, const Assist& assist, const kvm_sregs& sregs);
  absl::Status RaiseUdOutsideRingZero(AssistVcpu& vcpu, const absl::Status& refusal);
  // Moves MXCSR to or from the operand; sets `fault_vector` instead when the
  // CPU would fault (#GP for reserved bits on load).
  absl::Status MxcsrAccess(AssistVcpu& vcpu, const Assist& assist, const kvm_regs& regs,
                           const kvm_sregs& sregs, CpuMode mode,
                           std::optional<uint8_t>& fault_vector);
  void Count(AssistKind kind);
  // LSL: the limit of the descriptor `selector` names, or nullopt where the
  // CPU clears ZF (null or out-of-table selector, a type LSL does not
  // accept, privilege).
  absl::StatusOr<std::optional<uint32_t>> SegmentLimit(AssistVcpu& vcpu, uint16_t selector,
                                                       const kvm_sregs& sregs, CpuMode mode);

  const GuestMemory* memory_;
  std::function<void(absl::string_view)> notice_;
  std::atomic<bool> noticed_{false};
  // MXCSR bits LDMXCSR accepts (the host CPU's MXCSR_MASK, as the guest sees it).
  uint32_t mxcsr_mask_;
  EmulationAssistCounts counts_;
};

}  // namespace vmm::x86_64

#endif  // VMM_ARCH_X86_64_EMULATION_ASSIST_H_
