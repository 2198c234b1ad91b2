#include "vmm/kvm/kvm_vcpu.h"

#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "vmm/kvm/kvm_error.h"
#include "vmm/kvm/kvm_uapi.h"

namespace vmm {
namespace {

template <typename T>
absl::StatusOr<T> IoctlGet(int fd, unsigned long request, const char* name) {
  T value{};
  if (::ioctl(fd, request, &value) != 0) return KvmError(name);
  return value;
}

template <typename T>
absl::Status IoctlSet(int fd, unsigned long request, const T& value, const char* name) {
  if (::ioctl(fd, request, &value) != 0) return KvmError(name);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<KvmVcpu> KvmVcpu::Create(UniqueFd fd, uint32_t id, size_t mmap_size) {
  if (mmap_size < sizeof(kvm_run)) {
    return absl::InternalError(absl::StrFormat("vCPU mmap size %d is too small", mmap_size));
  }
  void* run = ::mmap(nullptr, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (run == MAP_FAILED) return KvmError(absl::StrFormat("mmap kvm_run of vCPU %d", id));
  return KvmVcpu(std::move(fd), id, static_cast<kvm_run*>(run), mmap_size);
}

KvmVcpu::KvmVcpu(KvmVcpu&& other) noexcept
    : fd_(std::move(other.fd_)),
      id_(other.id_),
      run_(std::exchange(other.run_, nullptr)),
      mmap_size_(other.mmap_size_) {}

KvmVcpu& KvmVcpu::operator=(KvmVcpu&& other) noexcept {
  if (this != &other) {
    if (run_ != nullptr) ::munmap(run_, mmap_size_);
    fd_ = std::move(other.fd_);
    id_ = other.id_;
    run_ = std::exchange(other.run_, nullptr);
    mmap_size_ = other.mmap_size_;
  }
  return *this;
}

KvmVcpu::~KvmVcpu() {
  if (run_ != nullptr) ::munmap(run_, mmap_size_);
}

absl::StatusOr<kvm_regs> KvmVcpu::GetRegs() const {
  return IoctlGet<kvm_regs>(fd_.get(), KVM_GET_REGS, "KVM_GET_REGS");
}
absl::Status KvmVcpu::SetRegs(const kvm_regs& regs) {
  return IoctlSet(fd_.get(), KVM_SET_REGS, regs, "KVM_SET_REGS");
}
absl::StatusOr<kvm_sregs> KvmVcpu::GetSregs() const {
  return IoctlGet<kvm_sregs>(fd_.get(), KVM_GET_SREGS, "KVM_GET_SREGS");
}
absl::Status KvmVcpu::SetSregs(const kvm_sregs& sregs) {
  return IoctlSet(fd_.get(), KVM_SET_SREGS, sregs, "KVM_SET_SREGS");
}
absl::StatusOr<kvm_fpu> KvmVcpu::GetFpu() const {
  return IoctlGet<kvm_fpu>(fd_.get(), KVM_GET_FPU, "KVM_GET_FPU");
}
absl::Status KvmVcpu::SetFpu(const kvm_fpu& fpu) {
  return IoctlSet(fd_.get(), KVM_SET_FPU, fpu, "KVM_SET_FPU");
}
absl::StatusOr<kvm_lapic_state> KvmVcpu::GetLapic() const {
  return IoctlGet<kvm_lapic_state>(fd_.get(), KVM_GET_LAPIC, "KVM_GET_LAPIC");
}
absl::Status KvmVcpu::SetLapic(const kvm_lapic_state& lapic) {
  return IoctlSet(fd_.get(), KVM_SET_LAPIC, lapic, "KVM_SET_LAPIC");
}
absl::StatusOr<kvm_vcpu_events> KvmVcpu::GetVcpuEvents() const {
  return IoctlGet<kvm_vcpu_events>(fd_.get(), KVM_GET_VCPU_EVENTS, "KVM_GET_VCPU_EVENTS");
}
absl::Status KvmVcpu::SetVcpuEvents(const kvm_vcpu_events& events) {
  return IoctlSet(fd_.get(), KVM_SET_VCPU_EVENTS, events, "KVM_SET_VCPU_EVENTS");
}
absl::StatusOr<kvm_mp_state> KvmVcpu::GetMpState() const {
  return IoctlGet<kvm_mp_state>(fd_.get(), KVM_GET_MP_STATE, "KVM_GET_MP_STATE");
}

absl::Status KvmVcpu::SetMpState(const kvm_mp_state& state) {
  return IoctlSet(fd_.get(), KVM_SET_MP_STATE, state, "KVM_SET_MP_STATE");
}

absl::StatusOr<kvm_xcrs> KvmVcpu::GetXcrs() const {
  return IoctlGet<kvm_xcrs>(fd_.get(), KVM_GET_XCRS, "KVM_GET_XCRS");
}

absl::Status KvmVcpu::SetXcrs(const kvm_xcrs& xcrs) {
  return IoctlSet(fd_.get(), KVM_SET_XCRS, xcrs, "KVM_SET_XCRS");
}

absl::StatusOr<kvm_debugregs> KvmVcpu::GetDebugRegs() const {
  return IoctlGet<kvm_debugregs>(fd_.get(), KVM_GET_DEBUGREGS, "KVM_GET_DEBUGREGS");
}

absl::Status KvmVcpu::SetDebugRegs(const kvm_debugregs& regs) {
  return IoctlSet(fd_.get(), KVM_SET_DEBUGREGS, regs, "KVM_SET_DEBUGREGS");
}

absl::StatusOr<kvm_translation> KvmVcpu::Translate(uint64_t linear_address) const {
  kvm_translation tr{};
  tr.linear_address = linear_address;
  if (::ioctl(fd_.get(), KVM_TRANSLATE, &tr) != 0) {
    return KvmError(absl::StrFormat("KVM_TRANSLATE 0x%x", linear_address));
  }
  return tr;
}

namespace {
using kvm_uapi::kGetXsave;
using kvm_uapi::kSetXsave;
// KVM_SET_XSAVE reads the guest's whole uabi size, which may exceed 4096
// with large features: the buffer is generous.
constexpr size_t kXsaveBuffer = 16384;
constexpr size_t kXsaveLegacySize = 4096;  // struct kvm_xsave's region
constexpr size_t kMxcsrOffset = 24;
constexpr size_t kXstateBvOffset = 512;
}  // namespace

absl::StatusOr<std::vector<uint8_t>> KvmVcpu::GetXsave() const {
  std::vector<uint8_t> area(kXsaveBuffer);
  if (::ioctl(fd_.get(), kGetXsave, area.data()) != 0) return KvmError("KVM_GET_XSAVE");
  area.resize(kXsaveLegacySize);
  return area;
}

absl::Status KvmVcpu::SetXsave(absl::Span<const uint8_t> area) {
  if (area.size() != kXsaveLegacySize) {
    return absl::InvalidArgumentError(
        absl::StrFormat("KVM_SET_XSAVE: %d bytes, not %d", area.size(), kXsaveLegacySize));
  }
  std::vector<uint8_t> buffer(kXsaveBuffer, 0);
  std::memcpy(buffer.data(), area.data(), area.size());
  if (::ioctl(fd_.get(), kSetXsave, buffer.data()) != 0) return KvmError("KVM_SET_XSAVE");
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> KvmVcpu::GetMxcsr() const {
  std::vector<uint8_t> area(kXsaveBuffer);
  if (::ioctl(fd_.get(), kGetXsave, area.data()) != 0) return KvmError("KVM_GET_XSAVE");
  uint32_t mxcsr;
  std::memcpy(&mxcsr, area.data() + kMxcsrOffset, sizeof(mxcsr));
  return mxcsr;
}

absl::Status KvmVcpu::SetMxcsr(uint32_t mxcsr) {
  std::vector<uint8_t> area(kXsaveBuffer);
  if (::ioctl(fd_.get(), kGetXsave, area.data()) != 0) return KvmError("KVM_GET_XSAVE");
  std::memcpy(area.data() + kMxcsrOffset, &mxcsr, sizeof(mxcsr));
  // KVM takes MXCSR from the buffer only when XSTATE_BV has SSE (bit 1).
  area[kXstateBvOffset] |= 0x2;
  if (::ioctl(fd_.get(), kSetXsave, area.data()) != 0) return KvmError("KVM_SET_XSAVE");
  return absl::OkStatus();
}

absl::Status KvmVcpu::SetMsrs(absl::Span<const kvm_msr_entry> msrs) {
  kvm_uapi::FlexBuffer<kvm_uapi::MsrsHeader, kvm_msr_entry> buf(msrs.size());
  buf.header()->nmsrs = static_cast<uint32_t>(msrs.size());
  if (!msrs.empty()) std::memcpy(buf.entries(), msrs.data(), msrs.size() * sizeof(kvm_msr_entry));
  int n = ::ioctl(fd_.get(), kvm_uapi::kSetMsrs, buf.data());
  if (n < 0) return KvmError("KVM_SET_MSRS");
  if (static_cast<size_t>(n) != msrs.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "KVM_SET_MSRS: KVM refused MSR 0x%x (set %d of %d)", msrs[n].index, n, msrs.size()));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> KvmVcpu::GetMsr(uint32_t index) const {
  kvm_uapi::FlexBuffer<kvm_uapi::MsrsHeader, kvm_msr_entry> buf(1);
  buf.header()->nmsrs = 1;
  buf.entries()[0].index = index;
  int n = ::ioctl(fd_.get(), kvm_uapi::kGetMsrs, buf.data());
  if (n != 1) return KvmError(absl::StrFormat("KVM_GET_MSRS 0x%x", index));
  return buf.entries()[0].data;
}

absl::Status KvmVcpu::SetCpuid(absl::Span<const kvm_cpuid_entry2> entries) {
  kvm_uapi::FlexBuffer<kvm_uapi::Cpuid2Header, kvm_cpuid_entry2> buf(entries.size());
  buf.header()->nent = static_cast<uint32_t>(entries.size());
  if (!entries.empty()) {
    std::memcpy(buf.entries(), entries.data(), entries.size() * sizeof(kvm_cpuid_entry2));
  }
  if (::ioctl(fd_.get(), kvm_uapi::kSetCpuid2, buf.data()) != 0) {
    return KvmError(absl::StrFormat("KVM_SET_CPUID2 vcpu=%d entries=%d", id_, entries.size()));
  }
  return absl::OkStatus();
}

void KvmVcpu::SetImmediateExit(bool value) {
  __atomic_store_n(&run_->immediate_exit, value ? 1 : 0, __ATOMIC_SEQ_CST);
}

absl::StatusOr<VcpuExit> KvmVcpu::Run() {
  if (::ioctl(fd_.get(), KVM_RUN, 0) != 0) {
    if (errno == EINTR || errno == EAGAIN) {
      VcpuExit exit;
      exit.kind = VcpuExit::Kind::kInterrupted;
      return exit;
    }
    return KvmError(absl::StrFormat("KVM_RUN vcpu=%d", id_));
  }
  return Decode();
}

VcpuExit KvmVcpu::Decode() {
  VcpuExit exit;
  exit.raw_reason = run_->exit_reason;
  auto* base = reinterpret_cast<uint8_t*>(run_);
  switch (run_->exit_reason) {
    case KVM_EXIT_IO: {
      exit.kind = run_->io.direction == KVM_EXIT_IO_OUT ? VcpuExit::Kind::kIoOut
                                                        : VcpuExit::Kind::kIoIn;
      exit.port = run_->io.port;
      exit.size = run_->io.size;
      exit.count = run_->io.count;
      uint64_t offset = run_->io.data_offset;
      uint64_t len = static_cast<uint64_t>(exit.size) * exit.count;
      // The kernel fills these, but a bad offset must not send us outside the
      // mapping.
      if (offset > mmap_size_ || len > mmap_size_ - offset) {
        exit.kind = VcpuExit::Kind::kOther;
        break;
      }
      exit.data = absl::Span<uint8_t>(base + offset, len);
      break;
    }
    case KVM_EXIT_MMIO: {
      exit.kind = run_->mmio.is_write ? VcpuExit::Kind::kMmioWrite : VcpuExit::Kind::kMmioRead;
      exit.addr = run_->mmio.phys_addr;
      uint32_t len = run_->mmio.len > sizeof(run_->mmio.data) ? sizeof(run_->mmio.data)
                                                               : run_->mmio.len;
      exit.data = absl::Span<uint8_t>(run_->mmio.data, len);
      break;
    }
    case KVM_EXIT_HLT:
      exit.kind = VcpuExit::Kind::kHlt;
      break;
    case KVM_EXIT_SHUTDOWN:
      exit.kind = VcpuExit::Kind::kShutdown;
      break;
    case KVM_EXIT_SYSTEM_EVENT:
      exit.kind = VcpuExit::Kind::kSystemEvent;
      exit.system_event = run_->system_event.type;
      break;
    case KVM_EXIT_INTERNAL_ERROR: {
      exit.kind = VcpuExit::Kind::kInternalError;
      exit.suberror = run_->internal.suberror;
      uint32_t ndata = run_->internal.ndata;
      constexpr uint32_t kMaxData = sizeof(run_->internal.data) / sizeof(run_->internal.data[0]);
      if (ndata > kMaxData) ndata = kMaxData;
      exit.internal_data =
          absl::Span<const uint64_t>(reinterpret_cast<const uint64_t*>(run_->internal.data), ndata);
      const auto& failure = run_->emulation_failure;
      if (exit.suberror == KVM_INTERNAL_ERROR_EMULATION && failure.ndata >= 3 &&
          (failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) != 0) {
        uint32_t n = failure.insn_size;
        if (n > sizeof(failure.insn_bytes)) n = sizeof(failure.insn_bytes);
        exit.insn_bytes = absl::Span<const uint8_t>(failure.insn_bytes, n);
      }
      break;
    }
    case KVM_EXIT_FAIL_ENTRY:
      exit.kind = VcpuExit::Kind::kFailEntry;
      exit.hardware_reason = run_->fail_entry.hardware_entry_failure_reason;
      break;
    case KVM_EXIT_INTR:
      exit.kind = VcpuExit::Kind::kInterrupted;
      break;
    default:
      exit.kind = VcpuExit::Kind::kOther;
      break;
  }
  return exit;
}

}  // namespace vmm
