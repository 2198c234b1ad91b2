#include "arch/x86_64/emulation_assist.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/strings/str_format.h"
#include "base/status_macros.h"

namespace vmm::x86_64 {
namespace {

constexpr uint64_t kCr0Pe = 1u << 0;
constexpr uint64_t kCr0Em = 1u << 2;
constexpr uint64_t kCr0Ts = 1u << 3;
constexpr uint64_t kCr4Osfxsr = 1u << 9;
constexpr uint64_t kCr4La57 = 1u << 12;
constexpr uint64_t kCr4Osxsave = 1u << 18;
constexpr uint64_t kEferLma = 1u << 10;
constexpr uint64_t kRflagsZf = 1u << 6;
constexpr uint64_t kRflagsTf = 1u << 8;
constexpr uint64_t kRflagsRf = 1u << 16;
constexpr uint64_t kRflagsAc = 1u << 18;
constexpr uint8_t kVectorBp = 3;
constexpr uint8_t kVectorUd = 6;
constexpr uint8_t kVectorNm = 7;
constexpr uint8_t kVectorGp = 13;
constexpr uint64_t kPageSize = 4096;
constexpr size_t kMaxInsnLength = 15;

absl::Status Refuse(absl::string_view why) { return absl::FailedPreconditionError(why); }

// The MXCSR bits a guest may set: the CPU's MXCSR_MASK, which the guest sees
// through FXSAVE (KVM's emulator runs FXSAVE on the host). 0 means the
// pre-DAZ default 0xFFBF.
uint32_t HostMxcsrMask() {
  alignas(16) uint8_t area[512] = {};
  asm volatile("fxsave %0" : "=m"(area));
  uint32_t mask;
  std::memcpy(&mask, area + 28, sizeof(mask));
  return mask != 0 ? mask : 0xFFBF;
}

uint64_t Gpr(const kvm_regs& r, uint8_t n) {
  switch (n) {
    case 0: return r.rax;
    case 1: return r.rcx;
    case 2: return r.rdx;
    case 3: return r.rbx;
    case 4: return r.rsp;
    case 5: return r.rbp;
    case 6: return r.rsi;
    case 7: return r.rdi;
    case 8: return r.r8;
    case 9: return r.r9;
    case 10: return r.r10;
    case 11: return r.r11;
    case 12: return r.r12;
    case 13: return r.r13;
    case 14: return r.r14;
    default: return r.r15;
  }
}

void SetGpr(kvm_regs& r, uint8_t n, uint64_t value) {
  __u64* regs[16] = {&r.rax, &r.rcx, &r.rdx, &r.rbx, &r.rsp, &r.rbp, &r.rsi, &r.rdi,
                     &r.r8,  &r.r9,  &r.r10, &r.r11, &r.r12, &r.r13, &r.r14, &r.r15};
  *regs[n & 15] = value;
}

const kvm_segment& Segment(const kvm_sregs& s, SegmentReg reg) {
  switch (reg) {
    case SegmentReg::kEs: return s.es;
    case SegmentReg::kCs: return s.cs;
    case SegmentReg::kSs: return s.ss;
    case SegmentReg::kDs: return s.ds;
    case SegmentReg::kFs: return s.fs;
    case SegmentReg::kGs: return s.gs;
  }
  return s.ds;
}

int32_t Le32(absl::Span<const uint8_t> b, size_t at) {
  uint32_t v = uint32_t{b[at]} | uint32_t{b[at + 1]} << 8 | uint32_t{b[at + 2]} << 16 |
               uint32_t{b[at + 3]} << 24;
  return static_cast<int32_t>(v);
}

// Decodes ModRM (+ SIB + displacement) at insn[i] for a memory operand with
// 32- or 64-bit addressing; advances i. nullopt for a register operand or
// truncated bytes.
std::optional<MemoryOperand> DecodeMemoryModrm(absl::Span<const uint8_t> insn, size_t& i,
                                               uint8_t rex, CpuMode mode, uint8_t address_bits) {
  if (i >= insn.size()) return std::nullopt;
  const uint8_t modrm = insn[i++];
  const uint8_t mod = modrm >> 6, rm = modrm & 7;
  if (mod == 3) return std::nullopt;
  MemoryOperand op;
  op.address_bits = address_bits;
  size_t disp_bytes = mod == 1 ? 1 : mod == 2 ? 4 : 0;
  uint8_t base_low = rm;  // the base's ModRM/SIB field, for the default segment
  if (rm == 4) {
    if (i >= insn.size()) return std::nullopt;
    const uint8_t sib = insn[i++];
    const uint8_t index = ((sib >> 3) & 7) | ((rex & 0x2) << 2);
    if (index != 4) {  // rSP cannot be an index (r12 can)
      op.index = index;
      op.scale = static_cast<uint8_t>(1u << (sib >> 6));
    }
    base_low = sib & 7;
    if (base_low == 5 && mod == 0) {
      disp_bytes = 4;  // no base register
    } else {
      op.base = base_low | ((rex & 0x1) << 3);
    }
  } else if (rm == 5 && mod == 0) {
    disp_bytes = 4;
    op.rip_relative = mode == CpuMode::kLong64;
  } else {
    op.base = rm | ((rex & 0x1) << 3);
  }
  if (insn.size() - i < disp_bytes) return std::nullopt;
  if (disp_bytes == 1) op.disp = static_cast<int8_t>(insn[i]);
  if (disp_bytes == 4) op.disp = Le32(insn, i);
  i += disp_bytes;
  // rSP/rBP-based addressing defaults to SS (only matters outside 64-bit mode).
  if (op.base != MemoryOperand::kNoReg && (base_low == 4 || base_low == 5)) {
    op.segment = SegmentReg::kSs;
  }
  return op;
}

bool IsCanonical(uint64_t la, bool la57) {
  const int bits = la57 ? 57 : 48;
  const int64_t extended = static_cast<int64_t>(la << (64 - bits)) >> (64 - bits);
  return static_cast<uint64_t>(extended) == la;
}

// The CPL as KVM computes it (SS.DPL); 0 in real mode.
uint8_t Cpl(const kvm_sregs& s, CpuMode mode) { return mode == CpuMode::kReal ? 0 : s.ss.dpl; }

kvm_regs Advanced(kvm_regs regs, uint8_t length, CpuMode mode) {
  regs.rip += length;
  if (mode == CpuMode::kProtected32) regs.rip &= 0xffffffffu;
  if (mode == CpuMode::kReal || mode == CpuMode::kProtected16) regs.rip &= 0xffffu;
  regs.rflags &= ~kRflagsRf;  // cleared when an instruction completes
  return regs;
}

absl::Status CheckNoEventInFlight(const kvm_vcpu_events& e) {
  if (e.exception.injected || e.exception.pending || e.interrupt.injected || e.nmi.injected) {
    return Refuse("an event is already being delivered");
  }
  return absl::OkStatus();
}

// Queues exception `vector` for delivery at the next entry, keeping the rest
// of the event state as read (KVM_SET_VCPU_EVENTS applies only the fields
// its flags mark valid, and we pass back what KVM_GET_VCPU_EVENTS gave).
absl::Status InjectException(AssistVcpu& vcpu, kvm_vcpu_events events, uint8_t vector,
                             std::optional<uint32_t> error_code) {
  events.exception.injected = 1;
  events.exception.pending = 0;
  events.exception.nr = vector;
  events.exception.has_error_code = error_code.has_value();
  events.exception.error_code = error_code.value_or(0);
  events.exception_has_payload = 0;
  events.exception_payload = 0;
  return vcpu.SetVcpuEvents(events);
}

}  // namespace

CpuMode CpuModeFromSregs(const kvm_sregs& sregs) {
  if (!(sregs.cr0 & kCr0Pe)) return CpuMode::kReal;
  if ((sregs.efer & kEferLma) && sregs.cs.l) return CpuMode::kLong64;
  return sregs.cs.db ? CpuMode::kProtected32 : CpuMode::kProtected16;
}

absl::string_view CpuModeName(CpuMode mode) {
  switch (mode) {
    case CpuMode::kReal: return "real";
    case CpuMode::kProtected16: return "16-bit protected";
    case CpuMode::kProtected32: return "32-bit protected";
    case CpuMode::kLong64: return "64-bit";
  }
  return "unknown";
}

absl::string_view AssistKindName(AssistKind kind) {
  switch (kind) {
    case AssistKind::kInt3: return "int3";
    case AssistKind::kFwait: return "fwait";
    case AssistKind::kClac: return "clac";
    case AssistKind::kStac: return "stac";
    case AssistKind::kLdmxcsr: return "ldmxcsr";
    case AssistKind::kStmxcsr: return "stmxcsr";
    case AssistKind::kLsl: return "lsl";
  }
  return "unknown";
}

std::optional<Assist> DecodeEmulationFailure(absl::Span<const uint8_t> insn, CpuMode mode) {
  if (insn.size() > kMaxInsnLength) insn = insn.subspan(0, kMaxInsnLength);
  size_t i = 0;
  std::optional<SegmentReg> segment;
  bool address_size = false;
  bool other_prefix = false;  // 66, F2, F3, F0: each turns our opcodes into others or #UD
  for (; i < insn.size(); ++i) {
    const uint8_t b = insn[i];
    if (b == 0x26) segment = SegmentReg::kEs;
    else if (b == 0x2e) segment = SegmentReg::kCs;
    else if (b == 0x36) segment = SegmentReg::kSs;
    else if (b == 0x3e) segment = SegmentReg::kDs;
    else if (b == 0x64) segment = SegmentReg::kFs;
    else if (b == 0x65) segment = SegmentReg::kGs;
    else if (b == 0x67) address_size = true;
    else if (b == 0x66 || b == 0xf0 || b == 0xf2 || b == 0xf3) other_prefix = true;
    else break;
  }
  const bool any_prefix = i > 0;
  uint8_t rex = 0;
  if (mode == CpuMode::kLong64 && i < insn.size() && (insn[i] & 0xf0) == 0x40) rex = insn[i++];
  if (i >= insn.size()) return std::nullopt;

  const uint8_t address_bits =
      mode == CpuMode::kLong64 ? (address_size ? 32 : 64)
      : (mode == CpuMode::kProtected32) != address_size ? 32
                                                         : 16;
  auto memory_form = [&](AssistKind ld, AssistKind st, uint8_t reg_field,
                         size_t modrm_at) -> std::optional<Assist> {
    if (reg_field != 2 && reg_field != 3) return std::nullopt;
    if (address_bits == 16) return std::nullopt;  // 16-bit ModRM: not needed so far
    size_t j = modrm_at;
    std::optional<MemoryOperand> op = DecodeMemoryModrm(insn, j, rex, mode, address_bits);
    if (!op) return std::nullopt;
    if (segment) op->segment = *segment;
    if (j > kMaxInsnLength) return std::nullopt;
    return Assist{reg_field == 2 ? ld : st, static_cast<uint8_t>(j), op};
  };

  const uint8_t op = insn[i];
  // One-byte forms: a prefix would make them something we do not know.
  if (op == 0xcc || op == 0x9b) {
    if (any_prefix || rex) return std::nullopt;
    return Assist{op == 0xcc ? AssistKind::kInt3 : AssistKind::kFwait, 1, std::nullopt};
  }
  // VEX-encoded VLDMXCSR/VSTMXCSR: VEX.L0.0F.WIG AE /2, /3 with vvvv = 1111.
  // Outside 64-bit mode C4/C5 are LES/LDS unless the next byte's top bits are 11.
  if ((op == 0xc5 || op == 0xc4) && mode != CpuMode::kReal && mode != CpuMode::kProtected16) {
    if (other_prefix || rex) return std::nullopt;
    const size_t vex_len = op == 0xc5 ? 2 : 3;
    if (insn.size() < i + vex_len + 2) return std::nullopt;
    const uint8_t p1 = insn[i + 1];
    uint8_t vex_rex = 0;
    if (op == 0xc5) {
      if (p1 != 0xf8) return std::nullopt;  // R̄=1, vvvv=1111, L=0, pp=00
    } else {
      const uint8_t p2 = insn[i + 2];
      if ((p1 & 0x1f) != 0x01 || (p2 & 0x7f) != 0x78) return std::nullopt;  // map 0F; vvvv, L, pp
      if (mode != CpuMode::kLong64 && (p1 & 0xc0) != 0xc0) return std::nullopt;  // LES
      if (mode == CpuMode::kLong64) vex_rex = static_cast<uint8_t>(((~p1 >> 5) & 0x3));  // X, B
    }
    if (insn[i + vex_len] != 0xae) return std::nullopt;
    const size_t modrm_at = i + vex_len + 1;
    rex = vex_rex;
    std::optional<Assist> a = memory_form(AssistKind::kLdmxcsr, AssistKind::kStmxcsr,
                                          (insn[modrm_at] >> 3) & 7, modrm_at);
    if (a) a->vex = true;
    return a;
  }
  if (op != 0x0f || i + 2 >= insn.size()) return std::nullopt;
  const uint8_t op2 = insn[i + 1];
  const uint8_t modrm = insn[i + 2];
  if (op2 == 0x01 && (modrm == 0xca || modrm == 0xcb)) {
    if (any_prefix || rex) return std::nullopt;
    return Assist{modrm == 0xca ? AssistKind::kClac : AssistKind::kStac, 3, std::nullopt};
  }
  if (op2 == 0x03) {
    // LSL r, r/m16: the register form only (what Linux uses). 66 selects a
    // 16-bit destination; F2/F3/LOCK make it #UD or something else. Real
    // mode has no descriptors (#UD there).
    if (mode == CpuMode::kReal || (modrm >> 6) != 3) return std::nullopt;
    bool operand16 = false;
    for (size_t p = 0; p < i; ++p) {
      if (insn[p] == 0xf0 || insn[p] == 0xf2 || insn[p] == 0xf3) return std::nullopt;
      if (insn[p] == 0x66) operand16 = true;
    }
    Assist a{AssistKind::kLsl, static_cast<uint8_t>(i + 3), std::nullopt};
    a.dest_reg = static_cast<uint8_t>(((modrm >> 3) & 7) | ((rex & 4) << 1));
    a.src_reg = static_cast<uint8_t>((modrm & 7) | ((rex & 1) << 3));
    const bool default16 = mode == CpuMode::kProtected16;
    a.operand_bits = (rex & 8) ? 64 : (default16 != operand16) ? 16 : 32;
    return a;
  }
  if (op2 == 0xae) {
    // NP 0F AE /2 and /3: with 66/F2/F3 these encodings are other
    // instructions (e.g. F3 0F AE /2 is WRFSBASE), with LOCK #UD.
    if (other_prefix) return std::nullopt;
    return memory_form(AssistKind::kLdmxcsr, AssistKind::kStmxcsr, (modrm >> 3) & 7, i + 2);
  }
  return std::nullopt;
}

absl::StatusOr<uint64_t> OperandLinearAddress(const MemoryOperand& operand, const kvm_regs& regs,
                                              const kvm_sregs& sregs, uint64_t next_rip,
                                              CpuMode mode, uint32_t size) {
  uint64_t ea = static_cast<uint64_t>(operand.disp);
  if (operand.base != MemoryOperand::kNoReg) ea += Gpr(regs, operand.base);
  if (operand.index != MemoryOperand::kNoReg) ea += Gpr(regs, operand.index) * operand.scale;
  if (operand.rip_relative) ea += next_rip;
  if (operand.address_bits == 32) ea &= 0xffffffffu;

  const kvm_segment& seg = Segment(sregs, operand.segment);
  if (mode == CpuMode::kLong64) {
    // Only FS and GS have a base in 64-bit mode; no limits.
    uint64_t base = operand.segment == SegmentReg::kFs   ? sregs.fs.base
                    : operand.segment == SegmentReg::kGs ? sregs.gs.base
                                                         : 0;
    uint64_t la = base + ea;
    bool la57 = sregs.cr4 & kCr4La57;
    if (!IsCanonical(la, la57) || !IsCanonical(la + size - 1, la57)) {
      return Refuse(absl::StrFormat("operand address 0x%x is not canonical", la));
    }
    return la;
  }
  if (mode != CpuMode::kReal && (seg.unusable || !seg.present)) {
    return Refuse("operand segment is not usable");
  }
  // Expand-down data segments invert the limit check; none seen so far.
  if (!(seg.type & 0x8) && (seg.type & 0x4)) return Refuse("operand segment is expand-down");
  if (ea + size - 1 > seg.limit) {
    return Refuse(absl::StrFormat("operand offset 0x%x exceeds the segment limit 0x%x", ea,
                                  seg.limit));
  }
  return (seg.base + ea) & 0xffffffffu;
}

EmulationAssists::EmulationAssists(const GuestMemory* memory,
                                   std::function<void(absl::string_view)> notice)
    : memory_(memory), notice_(std::move(notice)), mxcsr_mask_(HostMxcsrMask()) {}

void EmulationAssists::Count(AssistKind kind) {
  std::atomic<uint64_t>* c = nullptr;
  switch (kind) {
    case AssistKind::kInt3: c = &counts_.int3; break;
    case AssistKind::kFwait: c = &counts_.fwait; break;
    case AssistKind::kClac: c = &counts_.clac; break;
    case AssistKind::kStac: c = &counts_.stac; break;
    case AssistKind::kLdmxcsr: c = &counts_.ldmxcsr; break;
    case AssistKind::kStmxcsr: c = &counts_.stmxcsr; break;
    case AssistKind::kLsl: c = &counts_.lsl; break;
  }
  c->fetch_add(1, std::memory_order_relaxed);
  if (!noticed_.exchange(true) && notice_) {
    notice_(absl::StrFormat(
        "this KVM is PVM-backed: its instruction emulator stopped on %s, which vmm "
        "finishes itself (as it does int3, fwait, clac/stac, ldmxcsr/stmxcsr)",
        AssistKindName(kind)));
  }
}

absl::Status EmulationAssists::Apply(AssistVcpu& vcpu, absl::Span<const uint8_t> insn) {
  absl::Status status = [&]() -> absl::Status {
    absl::StatusOr<kvm_sregs> sregs = vcpu.GetSregs();
    if (!sregs.ok()) return sregs.status();
    const CpuMode mode = CpuModeFromSregs(*sregs);
    std::optional<Assist> assist = DecodeEmulationFailure(insn, mode);
    absl::Status applied =
        assist ? ApplyDecoded(vcpu, *assist, *sregs)
               : Refuse("not one of int3, fwait, clac, stac, ldmxcsr, stmxcsr, lsl");
    if (applied.ok() || Cpl(*sregs, mode) == 0) return applied;
    return RaiseUdOutsideRingZero(vcpu, applied);
  }();
  if (!status.ok()) counts_.refused.fetch_add(1, std::memory_order_relaxed);
  return status;
}

// What KVM itself does with an emulation failure outside ring 0 when
// KVM_CAP_EXIT_ON_EMULATION_FAILURE is off: the guest gets #UD. vmm turns
// that capability on so ring-0 failures reach it for any guest; a guest
// program must still not be able to end the VM with one.
absl::Status EmulationAssists::RaiseUdOutsideRingZero(AssistVcpu& vcpu,
                                                      const absl::Status& refusal) {
  ASSIGN_OR_RETURN(kvm_vcpu_events events, vcpu.GetVcpuEvents());
  if (!CheckNoEventInFlight(events).ok()) return refusal;
  RETURN_IF_ERROR(InjectException(vcpu, events, kVectorUd, std::nullopt));
  counts_.user_ud.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status EmulationAssists::ApplyDecoded(AssistVcpu& vcpu, const Assist& assist,
                                            const kvm_sregs& sregs) {
  const CpuMode mode = CpuModeFromSregs(sregs);
  ASSIGN_OR_RETURN(kvm_regs regs, vcpu.GetRegs());
  // Single-stepping would owe the guest a #DB after the instruction.
  if (regs.rflags & kRflagsTf) return Refuse("the guest is single-stepping (RFLAGS.TF)");
  ASSIGN_OR_RETURN(kvm_vcpu_events events, vcpu.GetVcpuEvents());
  RETURN_IF_ERROR(CheckNoEventInFlight(events));
  // The instruction faults instead of completing: RIP stays on it.
  auto fault = [&](uint8_t vector, std::optional<uint32_t> error_code) -> absl::Status {
    RETURN_IF_ERROR(InjectException(vcpu, events, vector, error_code));
    counts_.faults_injected.fetch_add(1, std::memory_order_relaxed);
    return absl::OkStatus();
  };

  switch (assist.kind) {
    case AssistKind::kInt3:
      // A trap: the handler sees RIP after the 0xCC. KVM_SET_REGS drops a
      // pending exception, so the registers go first.
      RETURN_IF_ERROR(vcpu.SetRegs(Advanced(regs, assist.length, mode)));
      if (events.flags & KVM_VCPUEVENT_VALID_SHADOW) events.interrupt.shadow = 0;
      RETURN_IF_ERROR(InjectException(vcpu, events, kVectorBp, std::nullopt));
      break;
    case AssistKind::kFwait:
      // Waits for pending unmasked x87 exceptions; the emulator never leaves
      // one pending, so it completes as a no-op.
      RETURN_IF_ERROR(vcpu.SetRegs(Advanced(regs, assist.length, mode)));
      break;
    case AssistKind::kClac:
    case AssistKind::kStac: {
      if (Cpl(sregs, mode) != 0) return fault(kVectorUd, std::nullopt);
      kvm_regs next = Advanced(regs, assist.length, mode);
      if (assist.kind == AssistKind::kStac) {
        next.rflags |= kRflagsAc;
      } else {
        next.rflags &= ~kRflagsAc;
      }
      RETURN_IF_ERROR(vcpu.SetRegs(next));
      break;
    }
    case AssistKind::kLsl: {
      const uint16_t selector = static_cast<uint16_t>(Gpr(regs, assist.src_reg));
      ASSIGN_OR_RETURN(std::optional<uint32_t> limit, SegmentLimit(vcpu, selector, sregs, mode));
      kvm_regs next = Advanced(regs, assist.length, mode);
      if (limit) {
        uint64_t value = *limit;
        if (assist.operand_bits == 16) {
          value = (Gpr(regs, assist.dest_reg) & ~uint64_t{0xffff}) | (*limit & 0xffff);
        }
        SetGpr(next, assist.dest_reg, value);
        next.rflags |= kRflagsZf;
      } else {
        next.rflags &= ~kRflagsZf;
      }
      RETURN_IF_ERROR(vcpu.SetRegs(next));
      break;
    }
    case AssistKind::kLdmxcsr:
    case AssistKind::kStmxcsr: {
      if (assist.vex) {
        if (!(sregs.cr4 & kCr4Osxsave)) return fault(kVectorUd, std::nullopt);
        // Whether XCR0 enables AVX state decides #UD; this vCPU interface
        // cannot read XCR0.
        return Refuse("VEX-encoded MXCSR access with CR4.OSXSAVE set");
      }
      if ((sregs.cr0 & kCr0Em) || !(sregs.cr4 & kCr4Osfxsr)) return fault(kVectorUd, std::nullopt);
      if (sregs.cr0 & kCr0Ts) return fault(kVectorNm, std::nullopt);
      std::optional<uint8_t> vector;
      RETURN_IF_ERROR(MxcsrAccess(vcpu, assist, regs, sregs, mode, vector));
      if (vector) return fault(*vector, 0);
      RETURN_IF_ERROR(vcpu.SetRegs(Advanced(regs, assist.length, mode)));
      break;
    }
  }
  Count(assist.kind);
  return absl::OkStatus();
}

absl::StatusOr<std::optional<uint32_t>> EmulationAssists::SegmentLimit(AssistVcpu& vcpu,
                                                                       uint16_t selector,
                                                                       const kvm_sregs& sregs,
                                                                       CpuMode mode) {
  const bool in_ldt = selector & 4;
  if (!in_ldt && (selector & ~3u) == 0) return std::nullopt;  // null selector
  uint64_t table_base = sregs.gdt.base;
  uint32_t table_limit = sregs.gdt.limit;
  if (in_ldt) {
    if (sregs.ldt.unusable || sregs.ldt.selector == 0) return std::nullopt;
    table_base = sregs.ldt.base;
    table_limit = sregs.ldt.limit;
  }
  const uint32_t offset = selector & ~7u;
  if (uint64_t{offset} + 7 > table_limit) return std::nullopt;
  if (memory_ == nullptr) return Refuse("no guest memory to read the descriptor");
  // The descriptor read is the CPU's own (supervisor) access, whatever the
  // CPL; a descriptor is 8-byte aligned, so it lies in one page.
  uint64_t la = table_base + offset;
  if (mode != CpuMode::kLong64) la &= 0xffffffffu;
  ASSIGN_OR_RETURN(kvm_translation tr, vcpu.Translate(la));
  if (!tr.valid) return Refuse(absl::StrFormat("descriptor table at 0x%x is not mapped", la));
  ASSIGN_OR_RETURN(uint64_t d, memory_->Read<uint64_t>(GuestAddress(tr.physical_address)));

  const uint32_t type = (d >> 40) & 0xf;
  const bool code_or_data = (d >> 44) & 1;
  const uint32_t dpl = (d >> 45) & 3;
  if (code_or_data) {
    const bool conforming_code = (type & 0xc) == 0xc;
    const uint32_t cpl = Cpl(sregs, mode);
    const uint32_t rpl = selector & 3;
    if (!conforming_code && (dpl < cpl || dpl < rpl)) return std::nullopt;
  } else {
    // System descriptors LSL accepts: LDT and available/busy TSS; in long
    // mode only the 64-bit forms (2, 9, 11), in legacy mode also the 16-bit
    // TSSs (1, 3). Privilege rules apply to them too.
    const bool ok = type == 2 || type == 9 || type == 11 ||
                    (mode != CpuMode::kLong64 && (type == 1 || type == 3));
    if (!ok) return std::nullopt;
    if (dpl < Cpl(sregs, mode) || dpl < (selector & 3u)) return std::nullopt;
  }
  uint32_t limit = static_cast<uint32_t>((d & 0xffff) | ((d >> 32) & 0xf0000));
  if ((d >> 55) & 1) limit = (limit << 12) | 0xfff;  // 4 KiB granularity
  return limit;
}

absl::Status EmulationAssists::MxcsrAccess(AssistVcpu& vcpu, const Assist& assist,
                                           const kvm_regs& regs, const kvm_sregs& sregs,
                                           CpuMode mode, std::optional<uint8_t>& fault_vector) {
  if (memory_ == nullptr) return Refuse("no guest memory to reach the operand");
  // KVM_TRANSLATE walks the page tables as the supervisor and reports no
  // permissions, so only the kernel's own accesses are done here: a user
  // program must not read or write kernel memory through us.
  if (Cpl(sregs, mode) != 0) return Refuse("MXCSR memory access outside ring 0");
  constexpr uint32_t kSize = sizeof(uint32_t);
  ASSIGN_OR_RETURN(uint64_t la, OperandLinearAddress(*assist.memory, regs, sregs,
                                                     regs.rip + assist.length, mode, kSize));
  // The operand may straddle a page: one translation per page.
  struct Piece {
    GuestAddress gpa;
    uint32_t offset, size;
  };
  Piece pieces[2];
  int n = 0;
  for (uint32_t done = 0; done < kSize; ++n) {
    const uint64_t at = mode == CpuMode::kLong64 ? la + done : (la + done) & 0xffffffffu;
    const uint32_t size =
        static_cast<uint32_t>(std::min<uint64_t>(kSize - done, kPageSize - (at % kPageSize)));
    ASSIGN_OR_RETURN(kvm_translation tr, vcpu.Translate(at));
    if (!tr.valid) {
      return Refuse(absl::StrFormat("operand at 0x%x is not mapped (the guest expects #PF)", at));
    }
    GuestAddress gpa(tr.physical_address);
    if (!memory_->Contains(gpa, size)) {
      return Refuse(absl::StrFormat("operand at guest-physical 0x%x is not RAM", gpa.value()));
    }
    pieces[n] = {gpa, done, size};
    done += size;
  }

  uint8_t bytes[kSize];
  if (assist.kind == AssistKind::kLdmxcsr) {
    for (int k = 0; k < n; ++k) {
      RETURN_IF_ERROR(memory_->ReadBytes(
          pieces[k].gpa, absl::Span<uint8_t>(bytes + pieces[k].offset, pieces[k].size)));
    }
    uint32_t value;
    std::memcpy(&value, bytes, kSize);
    if (value & ~mxcsr_mask_) {
      fault_vector = kVectorGp;
      return absl::OkStatus();
    }
    return vcpu.SetMxcsr(value);
  }
  ASSIGN_OR_RETURN(uint32_t mxcsr, vcpu.GetMxcsr());
  std::memcpy(bytes, &mxcsr, kSize);
  for (int k = 0; k < n; ++k) {
    RETURN_IF_ERROR(memory_->WriteBytes(
        pieces[k].gpa, absl::Span<const uint8_t>(bytes + pieces[k].offset, pieces[k].size)));
  }
  return absl::OkStatus();
}

}  // namespace vmm::x86_64
