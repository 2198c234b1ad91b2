#include "vmm/kvm/kvm_vm.h"

#include <sys/ioctl.h>

#include <cstring>
#include <memory>

#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "vmm/kvm/kvm_error.h"
#include "vmm/kvm/kvm_uapi.h"
#include "vmm/kvm/kvm_vcpu.h"

namespace vmm {

absl::StatusOr<KvmVm> KvmVm::Create(const KvmSystem& kvm) {
  int fd;
  do {
    fd = ::ioctl(kvm.fd(), KVM_CREATE_VM, 0);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return KvmError("KVM_CREATE_VM");
  return KvmVm(UniqueFd(fd));
}

absl::Status KvmVm::SetUserMemoryRegion(uint32_t slot, GuestAddress guest, uint64_t size,
                                        void* host, uint32_t flags) {
  kvm_userspace_memory_region region{};
  region.slot = slot;
  region.flags = flags;
  region.guest_phys_addr = guest.value();
  region.memory_size = size;
  region.userspace_addr = reinterpret_cast<uint64_t>(host);
  if (::ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) != 0) {
    return KvmError(absl::StrFormat("KVM_SET_USER_MEMORY_REGION slot=%d gpa=0x%x size=0x%x",
                                       slot, guest.value(), size));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> KvmVm::GetClock() const {
  kvm_clock_data data{};
  if (::ioctl(fd_.get(), KVM_GET_CLOCK, &data) != 0) return KvmError("KVM_GET_CLOCK");
  return static_cast<uint64_t>(data.clock);
}

absl::Status KvmVm::SetClock(uint64_t ns) {
  kvm_clock_data data{};
  data.clock = ns;
  if (::ioctl(fd_.get(), KVM_SET_CLOCK, &data) != 0) return KvmError("KVM_SET_CLOCK");
  return absl::OkStatus();
}

absl::StatusOr<kvm_irqchip> KvmVm::GetIrqchip(uint32_t chip_id) const {
  kvm_irqchip chip{};
  chip.chip_id = chip_id;
  if (::ioctl(fd_.get(), KVM_GET_IRQCHIP, &chip) != 0) {
    return KvmError(absl::StrFormat("KVM_GET_IRQCHIP %d", chip_id));
  }
  return chip;
}

absl::Status KvmVm::SetIrqchip(const kvm_irqchip& chip) {
  if (::ioctl(fd_.get(), KVM_SET_IRQCHIP, &chip) != 0) {
    return KvmError(absl::StrFormat("KVM_SET_IRQCHIP %d", chip.chip_id));
  }
  return absl::OkStatus();
}

absl::StatusOr<kvm_pit_state2> KvmVm::GetPit2() const {
  kvm_pit_state2 state{};
  if (::ioctl(fd_.get(), KVM_GET_PIT2, &state) != 0) return KvmError("KVM_GET_PIT2");
  return state;
}

absl::Status KvmVm::SetPit2(const kvm_pit_state2& state) {
  if (::ioctl(fd_.get(), KVM_SET_PIT2, &state) != 0) return KvmError("KVM_SET_PIT2");
  return absl::OkStatus();
}

absl::Status KvmVm::SetTssAddr(uint64_t addr) {
  if (::ioctl(fd_.get(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(addr)) != 0) {
    return KvmError(absl::StrFormat("KVM_SET_TSS_ADDR 0x%x", addr));
  }
  return absl::OkStatus();
}

absl::Status KvmVm::SetIdentityMapAddr(uint64_t addr) {
  uint64_t a = addr;
  if (::ioctl(fd_.get(), KVM_SET_IDENTITY_MAP_ADDR, &a) != 0) {
    return KvmError(absl::StrFormat("KVM_SET_IDENTITY_MAP_ADDR 0x%x", addr));
  }
  return absl::OkStatus();
}

absl::Status KvmVm::CreateIrqchip() {
  if (::ioctl(fd_.get(), KVM_CREATE_IRQCHIP, 0) != 0) return KvmError("KVM_CREATE_IRQCHIP");
  return absl::OkStatus();
}

absl::Status KvmVm::EnableExitOnEmulationFailure() {
  if (::ioctl(fd_.get(), KVM_CHECK_EXTENSION, KVM_CAP_EXIT_ON_EMULATION_FAILURE) <= 0) {
    return absl::OkStatus();
  }
  kvm_enable_cap cap{};
  cap.cap = KVM_CAP_EXIT_ON_EMULATION_FAILURE;
  cap.args[0] = 1;
  if (::ioctl(fd_.get(), KVM_ENABLE_CAP, &cap) != 0) {
    return KvmError("KVM_ENABLE_CAP(KVM_CAP_EXIT_ON_EMULATION_FAILURE)");
  }
  return absl::OkStatus();
}

absl::Status KvmVm::CreatePit2() {
  kvm_pit_config config{};
  config.flags = KVM_PIT_SPEAKER_DUMMY;
  if (::ioctl(fd_.get(), KVM_CREATE_PIT2, &config) != 0) return KvmError("KVM_CREATE_PIT2");
  has_pit_ = true;
  return absl::OkStatus();
}

absl::Status KvmVm::SetIrqLine(uint32_t gsi, bool level) {
  kvm_irq_level irq{};
  irq.irq = gsi;
  irq.level = level ? 1 : 0;
  if (::ioctl(fd_.get(), KVM_IRQ_LINE, &irq) != 0) {
    return KvmError(absl::StrFormat("KVM_IRQ_LINE gsi=%d level=%d", gsi, irq.level));
  }
  return absl::OkStatus();
}

absl::Status KvmVm::Ioeventfd(int eventfd, IoSpace space, uint64_t addr, uint32_t len,
                              std::optional<uint64_t> datamatch, bool remove) {
  kvm_ioeventfd io{};
  io.addr = addr;
  io.len = len;
  io.fd = eventfd;
  if (space == IoSpace::kPio) io.flags |= KVM_IOEVENTFD_FLAG_PIO;
  if (datamatch) {
    io.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
    io.datamatch = *datamatch;
  }
  if (remove) io.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
  if (::ioctl(fd_.get(), KVM_IOEVENTFD, &io) != 0) {
    return KvmError(absl::StrFormat("KVM_IOEVENTFD %s %s addr=0x%x len=%d",
                                       remove ? "deassign" : "assign",
                                       space == IoSpace::kPio ? "pio" : "mmio", addr, len));
  }
  return absl::OkStatus();
}

absl::Status KvmVm::AddIoeventfd(int eventfd, IoSpace space, uint64_t addr, uint32_t len,
                                 std::optional<uint64_t> datamatch) {
  return Ioeventfd(eventfd, space, addr, len, datamatch, false);
}

absl::Status KvmVm::RemoveIoeventfd(int eventfd, IoSpace space, uint64_t addr, uint32_t len,
                                    std::optional<uint64_t> datamatch) {
  return Ioeventfd(eventfd, space, addr, len, datamatch, true);
}

absl::Status KvmVm::Irqfd(int eventfd, uint32_t gsi, bool remove) {
  kvm_irqfd irqfd{};
  irqfd.fd = static_cast<uint32_t>(eventfd);
  irqfd.gsi = gsi;
  if (remove) irqfd.flags = KVM_IRQFD_FLAG_DEASSIGN;
  if (::ioctl(fd_.get(), KVM_IRQFD, &irqfd) != 0) {
    return KvmError(absl::StrFormat("KVM_IRQFD %s gsi=%d", remove ? "deassign" : "assign", gsi));
  }
  return absl::OkStatus();
}

absl::Status KvmVm::AddIrqfd(int eventfd, uint32_t gsi) { return Irqfd(eventfd, gsi, false); }
absl::Status KvmVm::RemoveIrqfd(int eventfd, uint32_t gsi) { return Irqfd(eventfd, gsi, true); }

absl::Status KvmVm::SetGsiRouting(absl::Span<const kvm_irq_routing_entry> entries) {
  kvm_uapi::FlexBuffer<kvm_uapi::IrqRoutingHeader, kvm_irq_routing_entry> buf(entries.size());
  buf.header()->nr = static_cast<uint32_t>(entries.size());
  if (!entries.empty()) {
    std::memcpy(buf.entries(), entries.data(), entries.size() * sizeof(kvm_irq_routing_entry));
  }
  if (::ioctl(fd_.get(), kvm_uapi::kSetGsiRouting, buf.data()) != 0) {
    return KvmError(absl::StrFormat("KVM_SET_GSI_ROUTING entries=%d", entries.size()));
  }
  return absl::OkStatus();
}

absl::StatusOr<KvmVcpu> KvmVm::CreateVcpu(const KvmSystem& kvm, uint32_t id) {
  int fd = ::ioctl(fd_.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id));
  if (fd < 0) return KvmError(absl::StrFormat("KVM_CREATE_VCPU id=%d", id));
  UniqueFd vcpu_fd(fd);
  ASSIGN_OR_RETURN(int mmap_size, kvm.VcpuMmapSize());
  return KvmVcpu::Create(std::move(vcpu_fd), id, static_cast<size_t>(mmap_size));
}

}  // namespace vmm
