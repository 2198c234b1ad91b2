// The `vmm` command line: turns argv into a VmConfig (or a request for help or
// the version) and maps errors to exit codes. Kept apart from main() so every
// rule here is unit-tested without a VM.
//
//   vmm --kernel PATH [--initrd PATH] [--cmdline STR] [--memory 512M]
//       [--cpus N] [--serial stdio|file=PATH|off] [--timeout SECONDS] [--memfd]
//       [--stats] [--disk OPTIONS]... [--device NAME,OPTIONS]...
//
// One registry of flags: a table in cli.cc (name, value form, help, default
// read from VmConfig, parser) for the machine's flags, and the device
// registry (devices/virtio/registry.h) for the devices. --help is generated
// from both. Not absl flags: they are process-global state (a library parses
// for any number of VMs), and their errors are multi-line with exit 1 where
// vmm's usage errors are one line with exit 2.
#ifndef VMM_VMM_CLI_H_
#define VMM_VMM_CLI_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "vmm/host_root/options.h"
#include "vmm/vmm.h"

namespace vmm::cli {

// The program's name, as its messages start ("vmm: ...").
inline constexpr absl::string_view kProgram = "vmm";

// Exit codes of the `vmm` command that are not about how the guest ended.
inline constexpr int kExitVmmFailure = 1;  // the VMM itself failed at runtime
inline constexpr int kExitUsage = 2;       // bad flags or bad user input
inline constexpr int kExitInterrupted = 130;  // a stop signal during start-up (as a stopped run)

// What the user asked for.
struct CliRequest {
  enum class Action {
    kRun,          // boot `config`
    kPrintHelp,    // print HelpText() to stdout, exit 0
    kPrintVersion,    // print VersionText() to stdout, exit 0
    kPrintDeviceHelp  // print device_help to stdout, exit 0
  };
  Action action = Action::kRun;
  VmConfig config;  // meaningful for kRun only
  bool print_stats = false;  // --stats: StatsLine() on stderr after the run
  // --device help (every device kind) or --device NAME,help (one kind's
  // options), for kPrintDeviceHelp.
  std::string device_help;
  // --host-root and its flags, with the command after -- (kRun).
  host_root::HostRootOptions host_root;
};

// Parses argv (argv[0] is the program name). Flags take `--name=value` or
// `--name value`; a single leading dash works too; `--memfd`/`--nomemfd`/
// `--memfd=false` for the boolean; `--` ends flags. Every call starts from the
// flags' defaults, so it may be called repeatedly. On bad usage returns
// InvalidArgumentError whose message says what is wrong in one line (without
// "vmm: " and "; see --help"; UsageErrorLine adds those).
absl::StatusOr<CliRequest> ParseCommandLine(int argc, char** argv);

// "<program> - ..." usage text listing every flag with its help and default.
std::string HelpText();
// "vmm <version>\n".
std::string VersionText();

// Value parsers behind the flags, exposed for tests.
// Bytes with an optional binary suffix: 4096, 64K, 512M, 2G, 1T; the suffix
// may be lower case and followed by "iB" or "B" (512MiB, 512MB: both 2^20).
// Rejects zero, signs, spaces, fractions and values that overflow 64 bits.
absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text);
// "stdio", "off" or "file=PATH" (PATH non-empty).
absl::StatusOr<SerialConfig> ParseSerialSpec(absl::string_view text);
// Seconds as a decimal number ("30", "0.5") or an absl duration with a unit
// ("90s", "2m", "1h30m"); must be finite and greater than zero.
absl::StatusOr<absl::Duration> ParseTimeout(absl::string_view text);

// The status's message on one line (line breaks become "; "; an empty
// message is the code's name), without any prefix.
std::string OneLine(const absl::Status& status);

// The exit code for a failed Vm::Create: kExitUsage (2) when the status says
// the user's input is wrong (kInvalidArgument, kNotFound, kFailedPrecondition,
// kOutOfRange, kAlreadyExists, kPermissionDenied: a file the user named that
// vmm may not open), kExitInterrupted (130) for kCancelled (a stop signal
// cut start-up short), kExitVmmFailure (1) for everything else (kUnavailable:
// the host, /dev/kvm included; kInternal, ...). Never 0.
int ExitCodeForError(const absl::Status& status);

// "vmm: stats: ..." — start-up latency, RSS at the first KVM_RUN and the
// user-space exit counts, for --stats.
std::string StatsLine(const VmStats& stats);
// "vmm: stats: virtio-net (pci 0000:00:02.0): notify_exits=... rx_frames=...":
// one device's counters (Vm::devices()), a line per device after StatsLine.
std::string DeviceStatsLine(const DeviceInfo& device);

// The single stderr line for a usage error: "vmm: <message>; see --help".
std::string UsageErrorLine(const absl::Status& status);
// The single stderr line for any other error: "vmm: <message>".
std::string ErrorLine(const absl::Status& status);

}  // namespace vmm::cli

#endif  // VMM_VMM_CLI_H_
