// The public, embeddable API of vmm. A program that wants to run a microVM
// includes this header and links libvmm; the `vmm` command is a thin front end
// over it. There is no global state: any number of Vm objects may exist and
// run in one process.
//
//   vmm::VmConfig config;
//   config.kernel_path = "guest.elf";
//   config.serial.mode = vmm::SerialConfig::Mode::kCallback;
//   config.serial.sink = [](std::string_view bytes) { ... };
//   auto vm = vmm::Vm::Create(std::move(config));
//   if (!vm.ok()) { ... }
//   vmm::ExitStatus status = (*vm)->Run();  // blocks until the guest ends
//
// Devices: add a device kind's config to VmConfig::devices, e.g.
//   #include "devices/virtio/block/block_config.h"
//   vmm::DiskConfig disk;
//   disk.path = "root.img";
//   config.devices.push_back(disk);
#ifndef VMM_VMM_VMM_H_
#define VMM_VMM_VMM_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/cancellation.h"
#include "devices/virtio/device_spec.h"
#include "devices/virtio/registry.h"

namespace vmm {

// Where the guest's serial console (COM1) goes (devices/chardev/).
struct SerialConfig {
  enum class Mode {
    kStdio,     // output to stdout, input from stdin (raw mode on a TTY)
    kFile,      // output appended to `path`, no input
    kOff,       // UART present, output discarded
    kCallback,  // output handed to `sink`, input from Vm::SendConsoleInput
    kSocket,    // a Unix socket at `path` vmm listens on, one client at a time, both ways
    kPty,       // a new pseudo-terminal, both ways; its /dev/pts/N is given as a notice
  };
  Mode mode = Mode::kStdio;
  std::string path;                              // for kFile and kSocket
  std::function<void(std::string_view)> sink;    // for kCallback; called from vCPU threads
};

// seccomp-bpf confinement of the VM's threads (vmm/seccomp_filter.h): each may make
// only the system calls its job needs once the guest runs.
enum class SeccompMode {
  kOff,
  kEnforce,  // a disallowed call kills the process (SIGSYS)
  kLog,      // a disallowed call is allowed and logged by the kernel
};

// The most vCPUs a VM can have: what the MP table has room for below 640 KiB
// (firmware/mp_table.h; vmm/machine.cc checks the two agree). A host's KVM
// may allow fewer (Vm::Create then says so).
inline constexpr int kMaxVcpus = 37;

struct VmEvent;

struct VmConfig {
  std::string kernel_path;   // bzImage, ELF vmlinux, or ELF with a PVH note
  std::string initrd_path;   // optional
  std::string cmdline;       // kernel command line
  uint64_t memory_bytes = 512ull << 20;
  int cpus = 1;  // 1..kMaxVcpus
  SerialConfig serial;
  // The virtio devices, each a device kind's config (DiskConfig,
  // NetConfig, ConsoleConfig, RngConfig, VsockConfig: their headers are in
  // devices/virtio/<kind>/). It starts with the kinds present by default (an
  // RngConfig): replace or remove that entry to change it. Devices are
  // created in registry order (devices/virtio/registry.h), yours in the
  // order given within a kind.
  std::vector<DeviceConfig> devices = DefaultVirtioDevices();
  // Stop the guest after this long; the exit status says kTimeout.
  absl::Duration timeout = absl::InfiniteDuration();
  // How long Vm::RequestShutdown waits for the guest to power off after
  // pressing its power button before it stops the guest (kTimeout). Zero:
  // RequestShutdown stops at once, as RequestStop.
  absl::Duration shutdown_grace = absl::Seconds(10);
  // Back guest RAM with a memfd so it can be shared with another process
  // (always so when a device needs it: a vhost-user back-end).
  bool memfd_backed = false;
  // Who decompresses a bzImage's kernel. kGuest runs the kernel's own
  // decompressor, as on a PC. kVmm unpacks the (xz or gzip) payload in the
  // VMM and enters the vmlinux directly: a stock kernel's decompressor takes
  // tens of minutes under an instruction emulator. kAuto is kVmm on PVM
  // hosts (see PLATFORM.md) and kGuest elsewhere.
  enum class KernelDecompression { kAuto, kVmm, kGuest };
  KernelDecompression kernel_decompression = KernelDecompression::kAuto;
  // Describe the platform with ACPI tables (RSDP, XSDT, FADT, MADT, MCFG,
  // DSDT). Off: the MP table alone, and virtio-mmio devices are announced on
  // the kernel command line.
  bool acpi = true;
  // What a guest reboot (ACPI reset register, i8042 reset, triple fault)
  // does: end Run() with ExitStatus::Reason::kReset, or boot the guest again
  // from the same kernel, initrd and disks in a fresh machine (the timeout
  // keeps counting across restarts).
  enum class RebootAction { kExit, kRestart };
  RebootAction on_reboot = RebootAction::kExit;
  // The vCPU threads are confined from their first KVM_RUN; the thread that
  // calls Run() only if it asks (Vm::ConfineRunThread). Callbacks the VM
  // makes on a vCPU thread (SerialConfig::sink) run under the vCPU filter.
  // Sanitizer builds turn kEnforce into kLog: their runtimes make calls no
  // allow-list should carry.
  SeccompMode seccomp = SeccompMode::kEnforce;
  // Serve the API socket (HTTP/1.1 + JSON; README.md, "API socket") at
  // this path from Create() until the Vm is destroyed. Empty: none.
  std::string api_socket_path;
  // Told of what happens to the VM while it runs: state changes (running
  // at Run(), paused, running again, ended with how), a guest panic, a
  // device that needs a reset. Called on the thread that caused the event
  // (the one in Run(), or the caller of Pause/Resume), one event at a time,
  // without any of the VM's locks held: it may call the Vm's methods, but
  // must not block for long. Empty: none.
  std::function<void(const VmEvent&)> on_event;
  // Start from the snapshot Vm::SaveSnapshot wrote in this directory
  // instead of booting: the machine is built from this config as usual (the
  // same memory size and vCPU count as the snapshot's, or Create fails
  // saying so), then guest RAM, the vCPUs, the interrupt controllers and the
  // clock are set from the snapshot, and Run() continues the guest where it
  // was paused. Empty: boot.
  std::string restore_from;
  // One-line notices about what the VMM did on the user's behalf. Empty:
  // "vmm: <notice>" on stderr.
  std::function<void(std::string_view)> notice;
};

// What a VM is doing (Vm::state).
enum class VmState {
  kCreated,  // built; Run() not called yet
  kRunning,  // in Run(), the guest running
  kPaused,   // in Run(), paused (Vm::Pause)
  kEnded,    // the guest has ended (Run() returns or has returned)
};
// "created", "running", "paused", "ended".
std::string_view VmStateName(VmState state);

// Something that happened to a running VM (VmConfig::on_event).
struct VmEvent {
  enum class Kind {
    kStateChanged,      // `state` is the new state: running, paused, ended
    kGuestPanic,        // the guest kernel reported a panic (pvpanic); the VM ends
    kDeviceNeedsReset,  // `device` entered DEVICE_NEEDS_RESET; the VM runs on
  };
  Kind kind = Kind::kStateChanged;
  VmState state = VmState::kCreated;  // the VM's state after the event
  std::string device;  // kDeviceNeedsReset: "<kind> at <address>" (virtio-blk at 0000:00:01.0)
  std::string detail;  // in words: how it ended, why the device needs a reset
};
// "state-changed", "guest-panic", "device-needs-reset".
std::string_view VmEventKindName(VmEvent::Kind kind);

// How a VM ended.
struct ExitStatus {
  enum class Reason {
    kPowerOff,   // guest powered off
    kReset,      // guest asked for a reset (i8042, triple fault)
    kDebugExit,  // guest wrote `debug_code` to the debug-exit port
    kGuestPanic, // the guest kernel reported a panic (pvpanic)
    kTimeout,    // VmConfig::timeout elapsed
    kStopped,    // Vm::RequestStop was called
    kError,      // the VMM failed; `message` says why
  };
  Reason reason = Reason::kError;
  uint32_t debug_code = 0;  // the value written to the debug-exit port
  // kReset only: the reset came from a triple fault (KVM_EXIT_SHUTDOWN), not
  // from a device the guest asked; hardware resets, but it is usually a crash.
  bool triple_fault = false;
  std::string message;  // what happened, in words (which reset, which error)

  // The `vmm` command's exit code for this status (README.md, "Exit
  // status"): power-off and reset 0; debug-exit ((code << 1) | 1) & 0xff, as
  // QEMU's isa-debug-exit; guest panic 4; timeout 124; stopped on request
  // 130; error 1.
  int ProcessExitCode() const;
};
// "power-off", "reset", "debug-exit", "guest-panic", "timeout", "stopped",
// "error".
std::string_view ExitReasonName(ExitStatus::Reason reason);

// Figures about a VM, for diagnostics and benchmarks.
struct VmStats {
  // Wall-clock (absl::Now) time when Vm::Create began and when the boot vCPU
  // first entered KVM_RUN (absl::UnixEpoch() if it never did).
  absl::Time create_started;
  absl::Time first_kvm_run = absl::UnixEpoch();
  // The process's resident set size when the boot vCPU first entered KVM_RUN.
  uint64_t rss_at_first_run_bytes = 0;
  // vCPU exits handled in user space, over all vCPUs.
  uint64_t pio_exits = 0;
  uint64_t mmio_exits = 0;
  // virtio queue notifications that reached the VMM through a vCPU exit
  // rather than an ioeventfd (zero on a healthy data path).
  uint64_t virtio_notify_exits = 0;
  // Times a virtio device entered DEVICE_NEEDS_RESET because its driver
  // broke the protocol (malformed rings or chains): zero for a sane guest.
  uint64_t virtio_needs_reset = 0;
  // Times the guest was booted again after a reboot (RebootAction::kRestart).
  uint64_t restarts = 0;
  // Time spent paused (Vm::Pause), the current pause included.
  absl::Duration paused = absl::ZeroDuration();
  // Instructions KVM's emulator stopped on that vmm finished itself (PVM
  // hosts; see arch/x86_64/emulation_assist.h), and emulation failures in guest
  // programs (outside ring 0) answered with #UD.
  uint64_t emulation_assists = 0;
  uint64_t emulation_user_ud = 0;
};


// One virtio device of a VM, for diagnostics and the API socket.
struct DeviceInfo {
  std::string kind;       // the device kind's name (`--device help`): "virtio-blk"
  std::string transport;  // "pci" or "mmio"
  std::string address;    // PCI "0000:00:03.0", or the virtio-mmio window "0xd0000000"
  bool active = false;    // the guest's driver has set it up (DRIVER_OK) and not reset it
  bool needs_reset = false;  // DEVICE_NEEDS_RESET: the driver broke the protocol, or the back-end failed
  // Why it last entered DEVICE_NEEDS_RESET, in words (empty if it never did).
  std::string needs_reset_reason;
  // Counters by name: the transport's (notify_exits, used_interrupts,
  // needs_reset, resets, ...) then the device's own (requests, rx_bytes, ...).
  std::vector<std::pair<std::string, uint64_t>> counters;
};

class Vm {
 public:
  // Loads the kernel and builds the machine. Fails with a one-line message for
  // a bad configuration (missing kernel, too little memory, ...).
  //
  // Start-up can wait on things outside vmm (a vhost-user back-end answers
  // within a timeout of seconds per request). Cancelling `cancel` (from
  // another thread; it may be null) makes Create give up promptly: it tears
  // down what it built (socket files removed, the terminal restored) and
  // returns the Cancelled status. `cancel` is not used after Create returns.
  static absl::StatusOr<std::unique_ptr<Vm>> Create(VmConfig config,
                                                    const Cancellation* cancel = nullptr);
  virtual ~Vm() = default;

  // Runs the guest until it ends; callable once.
  virtual ExitStatus Run() = 0;
  // Asks Run() to confine its calling thread with the event-loop filter in
  // VmConfig::seccomp's mode, right after it has started the vCPU threads:
  // from then on that thread can do only what running and tearing down this
  // VM needs. Irreversible, so meant for a process whose job is this VM (the
  // `vmm` command does it). Ignored with RebootAction::kRestart (a restart
  // opens files and creates a KVM VM again). Call before Run().
  virtual void ConfineRunThread() = 0;
  // Asks a running guest to stop; Run() then returns kStopped. Safe from any
  // thread, including before Run(). It ends a paused guest too.
  virtual void RequestStop() = 0;
  // Asks the guest's OS to shut down: presses the ACPI power button (a GED
  // event on hardware-reduced ACPI; Linux's button driver, systemd-logind
  // or acpid power off), then stops the guest if it has not ended within
  // VmConfig::shutdown_grace (kTimeout, saying so). Without ACPI, or with a
  // zero grace, it stops at once (kStopped). Safe from any thread, also
  // before Run(); a second call presses the button again.
  virtual void RequestShutdown() = 0;
  // Stops the guest where it is without ending the run: every vCPU leaves
  // the guest and waits; the devices vmm runs do no work (what their host
  // side receives waits for Resume); the guest's clock (kvmclock) and
  // VmConfig::timeout stand still. Returns once all of that holds.
  // FailedPrecondition unless the guest runs and is not paused. Device data
  // paths outside vmm (vhost, vhost-user back-ends) are not paused. Safe
  // from any thread.
  virtual absl::Status Pause() = 0;
  // Lets a paused guest run on. FailedPrecondition unless it is paused.
  virtual absl::Status Resume() = 0;
  // Input for the guest's serial console (COM1), as if typed, with
  // SerialConfig::Mode::kCallback (FailedPrecondition otherwise). Returns
  // how many of `bytes` were taken: up to 64 KiB wait for the guest to read
  // them; beyond that fewer are taken (0 when full): send the rest later.
  // Safe from any thread.
  virtual absl::StatusOr<size_t> SendConsoleInput(std::string_view bytes) = 0;
  virtual bool paused() const = 0;
  // Writes a snapshot of the paused VM into directory `dir` (created if
  // missing; files there are replaced): `state` (vCPUs, interrupt
  // controllers, clock; a versioned, checksummed file) and `memory` (guest
  // RAM, a sparse file). VmConfig::restore_from starts a VM from it.
  // FailedPrecondition unless paused. Not yet saved: device state — a VM
  // whose virtio devices the guest has set up is refused (Unimplemented,
  // naming the device), and the RTC and i8042 start afresh (COM1 is
  // saved). Safe from any thread.
  virtual absl::Status SaveSnapshot(const std::string& dir) = 0;
  // Safe from any thread at any time.
  virtual VmStats stats() const = 0;
  virtual VmState state() const = 0;
  // The configuration the VM was created from. Safe from any thread.
  virtual const VmConfig& config() const = 0;
  // The virtio devices: virtio-mmio ones, then PCI functions, each in the
  // order they were created (empty once Run() has torn the machine down).
  // Safe from any thread.
  virtual std::vector<DeviceInfo> devices() const = 0;
};

}  // namespace vmm

#endif  // VMM_VMM_VMM_H_
