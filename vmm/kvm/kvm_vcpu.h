// A KVM vCPU: register state and KVM_RUN with its exits decoded into a typed
// form.
#ifndef VMM_VMM_KVM_KVM_VCPU_H_
#define VMM_VMM_KVM_KVM_VCPU_H_

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/unique_fd.h"

namespace vmm {

// Why KVM_RUN returned. Spans point into the vCPU's run area and stay valid
// until the next Run(); for kIoIn/kMmioRead the handler fills `data`.
struct VcpuExit {
  enum class Kind {
    kIoIn,
    kIoOut,
    kMmioRead,
    kMmioWrite,
    kHlt,
    kShutdown,       // triple fault
    kSystemEvent,    // `system_event` is KVM_SYSTEM_EVENT_*
    kInternalError,  // `suberror`, `internal_data`
    kFailEntry,      // `hardware_reason`
    kInterrupted,    // a signal or immediate_exit kicked the vCPU out
    kOther,          // `raw_reason` names it
  };
  Kind kind = Kind::kOther;
  uint32_t raw_reason = 0;
  // Port I/O: `count` accesses of `size` bytes each, back to back in `data`.
  uint16_t port = 0;
  uint32_t size = 0;
  uint32_t count = 0;
  // MMIO: one access of data.size() bytes.
  uint64_t addr = 0;
  absl::Span<uint8_t> data;
  uint32_t system_event = 0;
  uint32_t suberror = 0;
  absl::Span<const uint64_t> internal_data;
  // For KVM_INTERNAL_ERROR_EMULATION: the bytes of the instruction KVM's
  // emulator could not execute, when KVM reports them.
  absl::Span<const uint8_t> insn_bytes;
  uint64_t hardware_reason = 0;
};

class KvmVcpu {
 public:
  static absl::StatusOr<KvmVcpu> Create(UniqueFd fd, uint32_t id, size_t mmap_size);
  KvmVcpu(KvmVcpu&& other) noexcept;
  KvmVcpu& operator=(KvmVcpu&& other) noexcept;
  KvmVcpu(const KvmVcpu&) = delete;
  KvmVcpu& operator=(const KvmVcpu&) = delete;
  ~KvmVcpu();

  uint32_t id() const { return id_; }
  int fd() const { return fd_.get(); }

  absl::StatusOr<kvm_regs> GetRegs() const;
  absl::Status SetRegs(const kvm_regs& regs);
  absl::StatusOr<kvm_sregs> GetSregs() const;
  absl::Status SetSregs(const kvm_sregs& sregs);
  absl::StatusOr<kvm_fpu> GetFpu() const;
  absl::Status SetFpu(const kvm_fpu& fpu);
  absl::Status SetMsrs(absl::Span<const kvm_msr_entry> msrs);
  absl::StatusOr<uint64_t> GetMsr(uint32_t index) const;
  absl::Status SetCpuid(absl::Span<const kvm_cpuid_entry2> entries);
  absl::StatusOr<kvm_lapic_state> GetLapic() const;
  absl::Status SetLapic(const kvm_lapic_state& lapic);
  absl::StatusOr<kvm_vcpu_events> GetVcpuEvents() const;
  absl::Status SetVcpuEvents(const kvm_vcpu_events& events);
  absl::StatusOr<kvm_mp_state> GetMpState() const;
  absl::Status SetMpState(const kvm_mp_state& state);
  // The legacy 4 KiB XSAVE area (FPU, SSE, AVX, ...), as KVM_GET_XSAVE
  // gives it.
  absl::StatusOr<std::vector<uint8_t>> GetXsave() const;
  absl::Status SetXsave(absl::Span<const uint8_t> area);
  absl::StatusOr<kvm_xcrs> GetXcrs() const;
  absl::Status SetXcrs(const kvm_xcrs& xcrs);
  absl::StatusOr<kvm_debugregs> GetDebugRegs() const;
  absl::Status SetDebugRegs(const kvm_debugregs& regs);
  absl::StatusOr<kvm_translation> Translate(uint64_t linear_address) const;
  // MXCSR through the XSAVE legacy area (KVM_GET_FPU/KVM_SET_FPU ignore it).
  absl::StatusOr<uint32_t> GetMxcsr() const;
  absl::Status SetMxcsr(uint32_t mxcsr);

  // Enters the guest until the next exit. A signal delivered to the calling
  // thread, or RequestImmediateExit(), yields kInterrupted.
  absl::StatusOr<VcpuExit> Run();
  // Makes the current or next Run() return kInterrupted (the caller must also
  // signal the vCPU thread to interrupt a Run() already in the guest).
  void SetImmediateExit(bool value);

 private:
  KvmVcpu(UniqueFd fd, uint32_t id, kvm_run* run, size_t mmap_size)
      : fd_(std::move(fd)), id_(id), run_(run), mmap_size_(mmap_size) {}
  VcpuExit Decode();

  UniqueFd fd_;
  uint32_t id_ = 0;
  kvm_run* run_ = nullptr;
  size_t mmap_size_ = 0;
};

}  // namespace vmm

#endif  // VMM_VMM_KVM_KVM_VCPU_H_
