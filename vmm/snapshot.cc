#include "vmm/snapshot.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "base/unique_fd.h"

namespace vmm::snapshot {
namespace {

constexpr uint32_t kIrqchips[] = {KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE,
                                  KVM_IRQCHIP_IOAPIC};
constexpr uint32_t kMaxMsrs = 4096;
constexpr uint64_t kPage = 4096;
constexpr uint32_t kMsrTscDeadline = 0x6e0;  // IA32_TSC_DEADLINE

std::string VcpuSection(uint32_t id) { return absl::StrCat("vcpu", id); }

// A section holding one fixed-size value.
template <typename T>
absl::Status AddValue(StateFile* file, absl::string_view name, const T& value) {
  StateWriter writer;
  writer.Put(value);
  return file->Add(name, writer.Take());
}

template <typename T>
absl::StatusOr<T> GetValue(const StateFile& file, absl::string_view name) {
  ASSIGN_OR_RETURN(absl::string_view payload, file.Get(name));
  StateReader reader(name, payload);
  T value{};
  RETURN_IF_ERROR(reader.Get("value", &value));
  RETURN_IF_ERROR(reader.Finish());
  return value;
}

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::ErrnoToStatus(errno, absl::StrCat(what, " ", path));
}

}  // namespace

absl::Status SaveShape(const MachineShape& shape, StateFile* file) {
  StateWriter writer;
  writer.Put(shape.memory_bytes);
  writer.Put(shape.cpus);
  return file->Add("machine", writer.Take());
}

absl::Status CheckShape(const StateFile& file, const MachineShape& want) {
  ASSIGN_OR_RETURN(absl::string_view payload, file.Get("machine"));
  StateReader reader("machine", payload);
  MachineShape have;
  RETURN_IF_ERROR(reader.Get("memory", &have.memory_bytes));
  RETURN_IF_ERROR(reader.Get("cpus", &have.cpus));
  RETURN_IF_ERROR(reader.Finish());
  if (have.memory_bytes != want.memory_bytes || have.cpus != want.cpus) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the snapshot is of a machine with %d vCPUs and %d MiB of RAM; this one has %d and %d "
        "MiB (--cpus and --memory must match)",
        have.cpus, have.memory_bytes >> 20, want.cpus, want.memory_bytes >> 20));
  }
  return absl::OkStatus();
}

absl::Status SaveVm(const KvmVm& vm, uint64_t clock, StateFile* file) {
  RETURN_IF_ERROR(AddValue(file, "clock", clock));
  for (uint32_t chip : kIrqchips) {
    ASSIGN_OR_RETURN(kvm_irqchip state, vm.GetIrqchip(chip));
    RETURN_IF_ERROR(AddValue(file, absl::StrCat("irqchip/", chip), state));
  }
  if (!vm.has_pit()) return absl::OkStatus();
  ASSIGN_OR_RETURN(kvm_pit_state2 pit, vm.GetPit2());
  return AddValue(file, "pit", pit);
}

absl::Status RestoreVm(KvmVm& vm, const StateFile& file) {
  for (uint32_t chip : kIrqchips) {
    ASSIGN_OR_RETURN(kvm_irqchip state,
                     GetValue<kvm_irqchip>(file, absl::StrCat("irqchip/", chip)));
    if (state.chip_id != chip) {
      return absl::DataLossError(absl::StrFormat("state 'irqchip/%d' is chip %d", chip,
                                                 state.chip_id));
    }
    RETURN_IF_ERROR(vm.SetIrqchip(state));
  }
  // A PIT comes back if the snapshot had one, whatever this VM's --acpi.
  if (file.Has("pit")) {
    ASSIGN_OR_RETURN(kvm_pit_state2 pit, GetValue<kvm_pit_state2>(file, "pit"));
    if (!vm.has_pit()) RETURN_IF_ERROR(vm.CreatePit2());
    RETURN_IF_ERROR(vm.SetPit2(pit));
  }
  ASSIGN_OR_RETURN(uint64_t clock, GetValue<uint64_t>(file, "clock"));
  return vm.SetClock(clock);
}

absl::Status SaveVcpu(const KvmVcpu& vcpu, absl::Span<const uint32_t> msrs, StateFile* file) {
  StateWriter writer;
  ASSIGN_OR_RETURN(kvm_mp_state mp_state, vcpu.GetMpState());
  ASSIGN_OR_RETURN(kvm_regs regs, vcpu.GetRegs());
  ASSIGN_OR_RETURN(kvm_sregs sregs, vcpu.GetSregs());
  ASSIGN_OR_RETURN(std::vector<uint8_t> xsave, vcpu.GetXsave());
  ASSIGN_OR_RETURN(kvm_xcrs xcrs, vcpu.GetXcrs());
  ASSIGN_OR_RETURN(kvm_debugregs debugregs, vcpu.GetDebugRegs());
  ASSIGN_OR_RETURN(kvm_lapic_state lapic, vcpu.GetLapic());
  ASSIGN_OR_RETURN(kvm_vcpu_events events, vcpu.GetVcpuEvents());
  writer.Put(mp_state);
  writer.Put(regs);
  writer.Put(sregs);
  writer.PutBytes(absl::string_view(reinterpret_cast<const char*>(xsave.data()), xsave.size()));
  writer.Put(xcrs);
  writer.Put(debugregs);
  writer.Put(lapic);
  writer.Put(events);
  // The MSRs KVM lists that this vCPU can read (some listed ones depend on
  // CPUID features the guest does not have).
  std::vector<kvm_msr_entry> saved;
  for (uint32_t index : msrs) {
    absl::StatusOr<uint64_t> value = vcpu.GetMsr(index);
    if (value.ok()) saved.push_back(kvm_msr_entry{index, 0, *value});
  }
  writer.Put<uint32_t>(static_cast<uint32_t>(saved.size()));
  for (const kvm_msr_entry& entry : saved) writer.Put(entry);
  return file->Add(VcpuSection(vcpu.id()), writer.Take());
}

absl::Status RestoreVcpu(KvmVcpu& vcpu, const StateFile& file, int* refused_msrs) {
  const std::string name = VcpuSection(vcpu.id());
  ASSIGN_OR_RETURN(absl::string_view payload, file.Get(name));
  StateReader reader(name, payload);
  kvm_mp_state mp_state{};
  kvm_regs regs{};
  kvm_sregs sregs{};
  std::string xsave;
  kvm_xcrs xcrs{};
  kvm_debugregs debugregs{};
  kvm_lapic_state lapic{};
  kvm_vcpu_events events{};
  uint32_t msr_count = 0;
  RETURN_IF_ERROR(reader.Get("mp_state", &mp_state));
  RETURN_IF_ERROR(reader.Get("regs", &regs));
  RETURN_IF_ERROR(reader.Get("sregs", &sregs));
  RETURN_IF_ERROR(reader.GetBytes("xsave", 4096, &xsave));
  RETURN_IF_ERROR(reader.Get("xcrs", &xcrs));
  RETURN_IF_ERROR(reader.Get("debugregs", &debugregs));
  RETURN_IF_ERROR(reader.Get("lapic", &lapic));
  RETURN_IF_ERROR(reader.Get("events", &events));
  RETURN_IF_ERROR(reader.Get("msr count", &msr_count));
  if (msr_count > kMaxMsrs) {
    return absl::DataLossError(absl::StrFormat("state '%s' lists %u MSRs", name, msr_count));
  }
  std::vector<kvm_msr_entry> msrs(msr_count);
  for (kvm_msr_entry& entry : msrs) RETURN_IF_ERROR(reader.Get("msr", &entry));
  RETURN_IF_ERROR(reader.Finish());

  // In QEMU's order (kvm_arch_put_registers): registers, extended state,
  // system registers (APIC base among them) before the MSRs and the LAPIC,
  // pending events last.
  RETURN_IF_ERROR(vcpu.SetRegs(regs));
  RETURN_IF_ERROR(vcpu.SetXsave(absl::MakeConstSpan(
      reinterpret_cast<const uint8_t*>(xsave.data()), xsave.size())));
  RETURN_IF_ERROR(vcpu.SetXcrs(xcrs));
  RETURN_IF_ERROR(vcpu.SetSregs(sregs));
  int refused = 0;
  for (const kvm_msr_entry& entry : msrs) {
    // One at a time: KVM stops a batch at the first MSR it refuses (a few
    // it lists are read-only from the host's side).
    if (!vcpu.SetMsrs(absl::MakeConstSpan(&entry, 1)).ok()) ++refused;
  }
  if (refused_msrs != nullptr) *refused_msrs = refused;
  RETURN_IF_ERROR(vcpu.SetMpState(mp_state));
  RETURN_IF_ERROR(vcpu.SetLapic(lapic));
  // KVM drops IA32_TSC_DEADLINE unless the LAPIC is in TSC-deadline mode
  // already: set it again now the LAPIC is (QEMU's kvm_put_tscdeadline_msr).
  for (const kvm_msr_entry& entry : msrs) {
    if (entry.index == kMsrTscDeadline) (void)vcpu.SetMsrs(absl::MakeConstSpan(&entry, 1));
  }
  RETURN_IF_ERROR(vcpu.SetDebugRegs(debugregs));
  return vcpu.SetVcpuEvents(events);
}

absl::Status WriteMemoryFile(const GuestMemory& memory, const std::string& path) {
  // A new file renamed into place: the one there may be the RAM of VMs
  // restored from it (mapped privately), which must never change under them.
  const std::string temporary = path + ".partial";
  UniqueFd fd(::open(temporary.c_str(),
                     O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) return Errno("cannot create", temporary);
  static const uint8_t kZeros[kPage] = {};
  for (const GuestMemory::Region& region : memory.regions()) {
    for (uint64_t offset = 0; offset < region.size; offset += kPage) {
      const uint64_t length = std::min(kPage, region.size - offset);
      const uint8_t* page = region.host + offset;
      if (std::memcmp(page, kZeros, length) == 0) continue;  // a hole
      const off_t at = static_cast<off_t>(region.start.value() + offset);
      if (::pwrite(fd.get(), page, length, at) != static_cast<ssize_t>(length)) {
        return Errno("cannot write guest memory to", temporary);
      }
    }
  }
  // The file's size covers all of RAM, holes included.
  const uint64_t end = memory.regions().empty() ? 0 : memory.regions().back().end().value();
  if (::ftruncate(fd.get(), static_cast<off_t>(end)) != 0 || ::fsync(fd.get()) != 0) {
    return Errno("cannot write guest memory to", temporary);
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) return Errno("cannot rename to", path);
  return absl::OkStatus();
}

absl::Status ReadMemoryFile(const GuestMemory& memory, const std::string& path) {
  // O_NONBLOCK: a FIFO put there must not hang the restore (the size check
  // below then refuses it).
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW));
  if (!fd.valid()) return Errno("cannot open the snapshot's memory", path);
  struct stat st;
  const uint64_t end = memory.regions().empty() ? 0 : memory.regions().back().end().value();
  if (::fstat(fd.get(), &st) != 0) return Errno("cannot stat", path);
  if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != end) {
    return absl::DataLossError(absl::StrFormat(
        "the snapshot's memory %s is %d bytes; this machine's RAM ends at %d", path, st.st_size,
        end));
  }
  for (const GuestMemory::Region& region : memory.regions()) {
    if (region.fd < 0) {
      // Copy-on-write over the region's own mapping, at the same address
      // (so KVM's memory slot still points at it): a restore costs the pages
      // the guest touches, and VMs restored from one snapshot share the
      // rest in the page cache.
      void* mapped = ::mmap(region.host, region.size, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fd.get(),
                            static_cast<off_t>(region.start.value()));
      if (mapped == MAP_FAILED) return Errno("cannot map the snapshot's memory", path);
      continue;
    }
    // Shared (memfd) RAM stays shared with the back-ends: copied in.
    uint64_t done = 0;
    while (done < region.size) {
      const ssize_t n = ::pread(fd.get(), region.host + done, region.size - done,
                                static_cast<off_t>(region.start.value() + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Errno("cannot read the snapshot's memory", path);
      done += static_cast<uint64_t>(n);
    }
  }
  return absl::OkStatus();
}

absl::Status WriteStateFile(const StateFile& file, const std::string& path) {
  const std::string temporary = path + ".partial";
  const std::string bytes = file.Serialize();
  {
    UniqueFd fd(::open(temporary.c_str(),
                       O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd.valid()) return Errno("cannot create", temporary);
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Errno("cannot write", temporary);
      done += static_cast<size_t>(n);
    }
    if (::fsync(fd.get()) != 0) return Errno("cannot write", temporary);
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) return Errno("cannot rename to", path);
  return absl::OkStatus();
}

absl::StatusOr<StateFile> ReadStateFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW));
  if (!fd.valid()) return Errno("cannot open the snapshot's state", path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Errno("cannot stat", path);
  if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) > kMaxStateFileBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a snapshot state file (not a regular file of at most ",
                     kMaxStateFileBytes >> 20, " MiB)"));
  }
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // shorter than it said: the parser calls it truncated
    done += static_cast<size_t>(n);
  }
  bytes.resize(done);
  absl::StatusOr<StateFile> file = StateFile::Parse(bytes);
  if (!file.ok()) {
    return absl::Status(file.status().code(), absl::StrCat(path, ": ", file.status().message()));
  }
  return file;
}

}  // namespace vmm::snapshot
