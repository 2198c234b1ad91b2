#include "vmm/machine.h"

#include <sys/timerfd.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "arch/x86_64/boot_cpu_state.h"
#include "arch/x86_64/cpuid.h"
#include "arch/x86_64/gdt.h"
#include "arch/x86_64/lapic.h"
#include "arch/x86_64/layout.h"
#include "arch/x86_64/loader/boot_info.h"
#include "arch/x86_64/loader/boot_params.h"
#include "arch/x86_64/loader/cmdline.h"
#include "arch/x86_64/loader/initrd.h"
#include "arch/x86_64/loader/kernel_loader.h"
#include "arch/x86_64/loader/pvh_start_info.h"
#include "arch/x86_64/loader/ram_ranges.h"
#include "arch/x86_64/msrs.h"
#include "arch/x86_64/page_tables.h"
#include "base/status_macros.h"
#include "devices/legacy/acpi_pm.h"
#include "devices/legacy/cmos_rtc.h"
#include "devices/legacy/debug_exit.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/pvpanic.h"
#include "devices/legacy/serial.h"
#include "firmware/acpi/acpi_tables.h"
#include "firmware/e820.h"
#include "firmware/mp_table.h"
#include "firmware/reset_vector.h"
#include "vmm/interrupts.h"

namespace vmm {
namespace {

namespace x86 = ::vmm::x86_64;

// LINT0 delivers the PIC's ExtINT and LINT1 NMIs, as a BIOS leaves them and
// as the MP table says.
absl::Status ConfigureLapic(KvmVcpu& vcpu) {
  ASSIGN_OR_RETURN(kvm_lapic_state lapic, vcpu.GetLapic());
  x86::SetLintDeliveryLikeFirmware(lapic);
  return vcpu.SetLapic(lapic);
}

// The guest-physical address width the host's KVM supports.
uint32_t PhysicalAddressBits(absl::Span<const kvm_cpuid_entry2> cpuid) {
  for (const kvm_cpuid_entry2& e : cpuid) {
    if (e.function == 0x8000'0008) return e.eax & 0xff;
  }
  return 36;  // the architectural minimum when the leaf is missing
}

std::string HumanSize(uint64_t bytes) {
  if (bytes >= (1ull << 30) && bytes % (1ull << 30) == 0) return absl::StrFormat("%dG", bytes >> 30);
  if (bytes >= (1ull << 20) && bytes % (1ull << 20) == 0) return absl::StrFormat("%dM", bytes >> 20);
  return absl::StrFormat("%d bytes", bytes);
}

}  // namespace

Machine::Machine(KvmSystem kvm, KvmVm vm, GuestMemory memory, MachineHooks hooks)
    : kvm_(std::move(kvm)), vm_(std::move(vm)), memory_(std::move(memory)),
      hooks_(std::move(hooks)) {}

Machine::~Machine() {
  if (rtc_loop_ != nullptr) (void)rtc_loop_->Remove(rtc_timer_.get());
}

absl::StatusOr<std::unique_ptr<Machine>> Machine::Create(const VmConfig& config,
                                                         MachineHooks hooks, EventLoop* loop,
                                                         MachineStart start) {
  // User input first, so mistakes are reported even on a host without KVM.
  if (config.kernel_path.empty() && start == MachineStart::kBoot) {
    return absl::InvalidArgumentError("no kernel given");
  }
  if (config.cpus < 1) {
    return absl::InvalidArgumentError(absl::StrFormat("--cpus %d: need at least 1", config.cpus));
  }
  ASSIGN_OR_RETURN(std::vector<RamRange> ram, x86::RamRangesFor(config.memory_bytes));

  ASSIGN_OR_RETURN(KvmSystem kvm, KvmSystem::Open());
  // The MP table is how guests learn their CPUs until ACPI describes them.
  static_assert(kMaxVcpus == static_cast<int>(firmware::kMpTableMaxCpus) &&
                    kMaxVcpus <= static_cast<int>(firmware::acpi::kAcpiMaxCpus),
                "vmm.h's kMaxVcpus is the MP table's limit");
  if (config.cpus > kMaxVcpus) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--cpus %d is more than vmm supports (%d)", config.cpus, kMaxVcpus));
  }
  if (config.cpus > kvm.MaxVcpus()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--cpus %d is more than this host's KVM allows (%d)", config.cpus, kvm.MaxVcpus()));
  }
  ASSIGN_OR_RETURN(std::vector<kvm_cpuid_entry2> supported, kvm.GetSupportedCpuid());
  uint32_t phys_bits = PhysicalAddressBits(supported);
  if (phys_bits < 64 && ram.back().start.value() + ram.back().size > (1ull << phys_bits)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--memory %s is more than this host can address (%d physical address bits)",
        HumanSize(config.memory_bytes), phys_bits));
  }

  ASSIGN_OR_RETURN(KvmVm vm, KvmVm::Create(kvm));
  // A vhost-user back-end maps guest RAM itself: it must be a memfd.
  const bool shared = config.memfd_backed ||
                      absl::c_any_of(config.devices, [](const DeviceConfig& d) {
                        return d->needs_shared_memory();
                      });
  absl::StatusOr<GuestMemory> memory =
      GuestMemory::Create(ram, GuestMemoryOptions{.memfd = shared});
  if (!memory.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "cannot reserve --memory %s: %s", HumanSize(config.memory_bytes),
        memory.status().message()));
  }
  std::unique_ptr<Machine> machine(
      new Machine(std::move(kvm), std::move(vm), std::move(*memory), std::move(hooks)));
  const Cancellation* cancel = std::exchange(machine->hooks_.cancel, nullptr);
  // The PIT only for a guest told about the machine by the MP table alone
  // (--acpi off): Linux then ticks on it until its LAPIC timer is
  // calibrated. vmm's ACPI is hardware-reduced, which tells Linux there is
  // no PIT or PIC to use (acpi_reduced_hw_init: no timer_init, a null
  // legacy PIC), and a KVM guest skips the IOAPIC timer check
  // (no_timer_check). Creating it costs start-up and teardown a kernel
  // worker thread: 15 ms of 25 on PVM KVM, 26 of 77 in the nested lane
  // (bench/run's KVM floor). A snapshot that had one gets one back
  // (snapshot::RestoreVm). Port 0x40-0x43 accesses without it reach vmm's
  // PIO bus, which ignores them (reads: all ones).
  RETURN_IF_ERROR(machine->RegisterMemory(/*pit=*/!config.acpi));
  RETURN_IF_ERROR(machine->CreateDevices(config, loop, cancel));
  RETURN_IF_ERROR(CancellationStatus(cancel));
  if (start == MachineStart::kBoot) {
    RETURN_IF_ERROR(machine->LoadAndDescribe(config));
    RETURN_IF_ERROR(CancellationStatus(cancel));
  }
  RETURN_IF_ERROR(machine->CreateVcpus(start, config, supported));
  return machine;
}

bool Machine::PressPowerButton() const {
  return power_button_.has_value() && power_button_->Write(1).ok();
}

absl::Status Machine::RegisterMemory(bool pit) {
  // KVM needs these before the first vCPU runs; both sit in the MMIO hole.
  RETURN_IF_ERROR(vm_.SetTssAddr(x86::kTssStart));
  RETURN_IF_ERROR(vm_.SetIdentityMapAddr(x86::kIdentityMapStart));
  RETURN_IF_ERROR(vm_.CreateIrqchip());
  gsi_router_ = std::make_unique<GsiRouter>(&vm_);
  RETURN_IF_ERROR(gsi_router_->Init());
  if (pit) RETURN_IF_ERROR(vm_.CreatePit2());
  // Emulation failures outside ring 0 come to vmm too (see VcpuRunner): on
  // PVM hosts a guest's user space enters the emulator for INT n.
  RETURN_IF_ERROR(vm_.EnableExitOnEmulationFailure());
  uint32_t slot = 0;
  for (const GuestMemory::Region& region : memory_.regions()) {
    RETURN_IF_ERROR(vm_.SetUserMemoryRegion(slot++, region.start, region.size, region.host));
  }
  return absl::OkStatus();
}

absl::Status Machine::CreateDevices(const VmConfig& config, EventLoop* loop,
                                    const Cancellation* cancel) {
  auto serial_irq = std::make_shared<KvmIrqLine>(&vm_, x86::kSerialIrq);
  serial_ = std::make_shared<Serial>(serial_irq, hooks_.serial);
  RETURN_IF_ERROR(pio_bus_.Insert(serial_, x86::kSerialPort, Serial::kRegisterCount));

  auto i8042 = i8042_ = std::make_shared<I8042>([this] {
    ExitStatus status;
    status.reason = ExitStatus::Reason::kReset;
    status.message = "i8042 reset, port 0x64";
    hooks_.on_exit(status);
  });
  RETURN_IF_ERROR(pio_bus_.Insert(i8042, x86::kI8042DataPort, I8042::kSize));

  auto debug_exit = std::make_shared<DebugExit>([this](uint32_t value) {
    ExitStatus status;
    status.reason = ExitStatus::Reason::kDebugExit;
    status.debug_code = value;
    hooks_.on_exit(status);
  });
  RETURN_IF_ERROR(pio_bus_.Insert(debug_exit, x86::kDebugExitPort, DebugExit::kSize));

  auto pvpanic = std::make_shared<Pvpanic>([this] {
    ExitStatus status;
    status.reason = ExitStatus::Reason::kGuestPanic;
    status.message = "the guest kernel panicked";
    hooks_.on_exit(status);
  });
  RETURN_IF_ERROR(pio_bus_.Insert(pvpanic, x86::kPvpanicPort, Pvpanic::kSize));

  auto acpi_pm = std::make_shared<AcpiPm>(
      [this] {
        ExitStatus status;
        status.reason = ExitStatus::Reason::kPowerOff;
        hooks_.on_exit(status);
      },
      [this] {
        ExitStatus status;
        status.reason = ExitStatus::Reason::kReset;
        status.message = "ACPI reset register";
        hooks_.on_exit(status);
      });
  RETURN_IF_ERROR(pio_bus_.Insert(acpi_pm, x86::kAcpiSleepControlPort, AcpiPm::kSize));
  RETURN_IF_ERROR(CreateRtc(loop));
  if (config.acpi) {
    // The power button's GED interrupt: an irqfd, so a press is one
    // eventfd write from whatever thread asks (the signal thread too).
    ASSIGN_OR_RETURN(EventFd button, EventFd::Create());
    RETURN_IF_ERROR(vm_.AddIrqfd(button.fd(), x86::kPowerButtonGsi));
    power_button_ = std::move(button);
  }

  DeviceManagerDeps deps;
  deps.vm = &vm_;
  deps.gsi_router = gsi_router_.get();
  deps.pio_bus = &pio_bus_;
  deps.mmio_bus = &mmio_bus_;
  deps.memory = &memory_;
  deps.loop = loop;
  deps.notice = hooks_.notice;
  deps.on_needs_reset = hooks_.on_device_needs_reset;
  ASSIGN_OR_RETURN(device_manager_, DeviceManager::Create(std::move(deps), memory_.end().value()));
  RETURN_IF_ERROR(device_manager_->AddDevices(config.devices, cancel));
  return absl::OkStatus();
}

absl::StatusOr<x86::LoadedKernel> Machine::LoadKernel(const VmConfig& config) {
  using Decompression = VmConfig::KernelDecompression;
  bool in_vmm = config.kernel_decompression == Decompression::kVmm ||
                (config.kernel_decompression == Decompression::kAuto && KvmSystem::IsPvmHost());
  if (in_vmm) {
    absl::StatusOr<x86::LoadedKernel> kernel =
        x86::LoadKernel(memory_, config.kernel_path, {.decompress_bzimage = true});
    // A payload format the VMM cannot unpack: let the guest's decompressor
    // run, unless the user insisted.
    if (kernel.ok() || !absl::IsUnimplemented(kernel.status()) ||
        config.kernel_decompression == Decompression::kVmm) {
      if (kernel.ok() && kernel->decompressed_by_vmm && hooks_.notice) {
        hooks_.notice("the bzImage's kernel was decompressed by vmm and is entered directly");
      }
      return kernel;
    }
  }
  return x86::LoadKernel(memory_, config.kernel_path);
}

absl::Status Machine::CreateRtc(EventLoop* loop) {
  // The RTC's update/alarm interrupts need a wake-up at second boundaries:
  // a timerfd on the event loop.
  int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (fd < 0) return ErrnoStatus("timerfd_create for the RTC");
  rtc_timer_.Reset(fd);
  auto rtc = rtc_ = std::make_shared<CmosRtc>(
      [] { return absl::Now(); }, std::make_shared<KvmIrqLine>(&vm_, x86::kRtcIrq),
      [fd](absl::Duration delay) {
        itimerspec spec{};
        spec.it_value = absl::ToTimespec(delay);
        (void)::timerfd_settime(fd, 0, &spec, nullptr);
      });
  RETURN_IF_ERROR(loop->Add(fd, EPOLLIN, [fd, rtc](uint32_t) {
    uint64_t expirations;
    if (::read(fd, &expirations, sizeof(expirations)) > 0) rtc->OnTimer();
  }));
  rtc_loop_ = loop;
  return pio_bus_.Insert(rtc, x86::kRtcPort, CmosRtc::kSize);
}

absl::Status Machine::SaveLegacyState(StateFile* file) const {
  RETURN_IF_ERROR(file->Add("device/i8042", i8042_->SaveState()));
  if (rtc_) RETURN_IF_ERROR(file->Add("device/rtc", rtc_->SaveState()));
  return absl::OkStatus();
}

absl::Status Machine::RestoreLegacyState(const StateFile& file) {
  ASSIGN_OR_RETURN(absl::string_view i8042, file.Get("device/i8042"));
  RETURN_IF_ERROR(i8042_->RestoreState(i8042));
  if (rtc_) {
    ASSIGN_OR_RETURN(absl::string_view rtc, file.Get("device/rtc"));
    RETURN_IF_ERROR(rtc_->RestoreState(rtc));
  }
  return absl::OkStatus();
}

absl::Status Machine::LoadAndDescribe(const VmConfig& config) {
  ASSIGN_OR_RETURN(x86::LoadedKernel kernel, LoadKernel(config));
  x86::BootInfo info;
  // Without ACPI, guests (Linux) learn the populated virtio-mmio slots from
  // the command line; with ACPI the DSDT describes them (announcing both
  // would register each device twice).
  std::string cmdline = config.cmdline;
  std::string fragments = device_manager_->MmioCmdlineFragments();
  if (!config.acpi && !fragments.empty()) cmdline += (cmdline.empty() ? "" : " ") + fragments;
  if (kernel.kind != x86::KernelKind::kElfPvh && KvmSystem::IsPvmHost()) {
    // A Linux kernel on a PVM host: steer it off what KVM's emulator cannot
    // run (cmdline.h says why each switch).
    std::string added;
    cmdline = x86::WithPvmLinuxSwitches(cmdline, &added);
    static std::atomic<bool> announced{false};  // once per process, not per restart
    if (!added.empty() && hooks_.notice && !announced.exchange(true)) {
      hooks_.notice(absl::StrCat("PVM host: added '", added,
                                 "' to the kernel command line (KVM's instruction emulator "
                                 "cannot run XSAVE, CLAC/STAC, POPCNT or SIMD crypto)"));
    }
  }
  ASSIGN_OR_RETURN(info.cmdline, x86::WriteCmdline(memory_, kernel, cmdline));
  if (!config.initrd_path.empty()) {
    ASSIGN_OR_RETURN(info.initrd, x86::LoadInitrd(memory_, kernel, config.initrd_path));
  }
  std::vector<RamRange> ram;
  for (const GuestMemory::Region& r : memory_.regions()) ram.push_back({r.start, r.size});
  ASSIGN_OR_RETURN(std::vector<x86::E820Entry> e820, firmware::BuildE820Map(ram));
  info.e820 = e820;
  RETURN_IF_ERROR(firmware::WriteMpTable(memory_, static_cast<uint32_t>(config.cpus)));
  RETURN_IF_ERROR(firmware::WriteResetVector(memory_));
  if (config.acpi) {
    firmware::acpi::AcpiPlatform platform;
    platform.cpus = static_cast<uint32_t>(config.cpus);
    platform.ram_end = memory_.end().value();
    platform.pci = true;
    platform.virtio_mmio_slots = device_manager_->MmioSlotIndices();
    platform.pvpanic = true;
    platform.power_button = power_button_.has_value();
    ASSIGN_OR_RETURN(GuestAddress rsdp, firmware::acpi::WriteAcpiTables(memory_, platform));
    info.acpi_rsdp_addr = rsdp.value();
  }
  RETURN_IF_ERROR(x86::WriteBootGdt(memory_));

  if (kernel.pvh_entry) {
    ASSIGN_OR_RETURN(GuestAddress start_info, x86::WritePvhStartInfo(memory_, info));
    boot_ = {.pvh = true, .entry = kernel.pvh_entry->value(), .info = start_info.value()};
  } else {
    ASSIGN_OR_RETURN(GuestAddress zero_page, x86::WriteBootParams(memory_, kernel, info));
    boot_ = {.pvh = false, .entry = kernel.entry64.value(), .info = zero_page.value()};
  }
  return absl::OkStatus();
}

absl::Status Machine::CreateVcpus(MachineStart start, const VmConfig& config,
                                  absl::Span<const kvm_cpuid_entry2> supported) {
  const bool pvm = KvmSystem::IsPvmHost();
  for (int i = 0; i < config.cpus; ++i) {
    uint32_t id = static_cast<uint32_t>(i);
    ASSIGN_OR_RETURN(KvmVcpu vcpu, vm_.CreateVcpu(kvm_, id));
    x86::CpuidOptions options;
    options.vcpu_index = id;
    options.vcpu_count = static_cast<uint32_t>(config.cpus);
    // PVM's emulator cannot run CMPXCHG16B; clearing CX16 is honoured there.
    options.clear_cx16 = pvm;
    options.disable_kvm_pv_ipi = pvm;
    options.tsc_deadline_timer = kvm_.CheckExtension(KVM_CAP_TSC_DEADLINE_TIMER) > 0;
    ASSIGN_OR_RETURN(std::vector<kvm_cpuid_entry2> cpuid, x86::ShapeCpuid(supported, options));
    RETURN_IF_ERROR(vcpu.SetCpuid(cpuid));
    RETURN_IF_ERROR(vcpu.SetMsrs(x86::BootMsrs()));
    RETURN_IF_ERROR(vcpu.SetFpu(x86::BootFpu()));
    RETURN_IF_ERROR(ConfigureLapic(vcpu));
    if (id == 0 && start == MachineStart::kBoot) {
      // Application processors wait for the guest's INIT/SIPI in the
      // in-kernel LAPIC; only the BSP gets an entry state.
      ASSIGN_OR_RETURN(kvm_sregs sregs, vcpu.GetSregs());
      if (boot_.pvh) {
        RETURN_IF_ERROR(vcpu.SetSregs(x86::PvhBootSregs(sregs)));
        RETURN_IF_ERROR(vcpu.SetRegs(
            x86::PvhBootRegs(GuestAddress(boot_.entry), GuestAddress(boot_.info))));
      } else {
        ASSIGN_OR_RETURN(uint64_t cr3, x86::WriteIdentityPageTables(memory_));
        RETURN_IF_ERROR(vcpu.SetSregs(x86::LinuxBootSregs(sregs, cr3)));
        RETURN_IF_ERROR(vcpu.SetRegs(
            x86::LinuxBootRegs(GuestAddress(boot_.entry), GuestAddress(boot_.info))));
      }
    }
    vcpus_.push_back(std::move(vcpu));
  }
  return absl::OkStatus();
}

}  // namespace vmm
