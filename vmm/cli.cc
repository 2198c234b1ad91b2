#include "vmm/cli.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/strings/string_view.h"
#include "base/status_macros.h"
#include "devices/virtio/registry.h"

#ifndef VMM_VERSION
#define VMM_VERSION "0.1.0"
#endif

namespace vmm::cli {
namespace {

// One flag of `vmm`: everything about it in one row (the parser, --help,
// its default), applied straight to the request. Not absl flags: those are
// process-global (the library may be parsed for more than one VM, and
// tests parse again and again), and their errors are multi-line dumps with
// exit 1, where vmm's are one line with exit 2. Devices are not here: their
// flags come from the device registry (devices/virtio/registry.h).
struct FlagSpec {
  absl::string_view name;        // "memory" for --memory
  absl::string_view value_name;  // "SIZE" in --help; empty: a boolean (--memfd, --nomemfd)
  std::string help;
  // The default as --help shows it, read from a default VmConfig; null or
  // empty: none shown.
  std::string (*default_text)(const VmConfig& defaults);
  // Parses `value` into the request; the error says what is wrong with it
  // (without the flag's name: the caller adds it).
  absl::Status (*apply)(absl::string_view value, CliRequest& request);
  bool repeatable = false;  // may be given more than once (--rw)
  bool host_root = false;   // only with --host-root
};

absl::StatusOr<bool> ParseBool(absl::string_view text) {
  if (text == "true" || text == "yes" || text == "1" || text == "on") return true;
  if (text == "false" || text == "no" || text == "0" || text == "off") return false;
  return absl::InvalidArgumentError("expected true or false");
}

// The largest binary suffix that divides exactly: "512M".
std::string ByteSizeText(uint64_t bytes) {
  static constexpr struct {
    char suffix;
    int shift;
  } kUnits[] = {{'T', 40}, {'G', 30}, {'M', 20}, {'K', 10}};
  for (const auto& unit : kUnits) {
    const uint64_t mask = (uint64_t{1} << unit.shift) - 1;
    if (bytes != 0 && (bytes & mask) == 0) {
      return absl::StrCat(bytes >> unit.shift, std::string(1, unit.suffix));
    }
  }
  return absl::StrCat(bytes);
}

// A value out of a fixed list: "on|off|log" -> the list's index.
absl::StatusOr<size_t> OneOf(absl::string_view text, std::initializer_list<absl::string_view> words) {
  size_t i = 0;
  for (absl::string_view word : words) {
    if (text == word) return i;
    ++i;
  }
  std::vector<absl::string_view> all(words);
  return absl::InvalidArgumentError(absl::StrCat(
      "expected ", absl::StrJoin(all.begin(), all.end() - 1, ", "), " or ", all.back()));
}

const std::vector<FlagSpec>& Flags() {
  static const std::vector<FlagSpec>* const flags = new std::vector<FlagSpec>{
      {"kernel", "PATH", "Guest kernel: bzImage, ELF vmlinux, or ELF with a PVH note. Required.",
       nullptr,
       [](absl::string_view v, CliRequest& r) {
         r.config.kernel_path = std::string(v);
         return absl::OkStatus();
       }},
      {"initrd", "PATH", "Initial ramdisk to load for the kernel.", nullptr,
       [](absl::string_view v, CliRequest& r) {
         r.config.initrd_path = std::string(v);
         return absl::OkStatus();
       }},
      {"cmdline", "STR", "Kernel command line.", nullptr,
       [](absl::string_view v, CliRequest& r) {
         r.config.cmdline = std::string(v);
         return absl::OkStatus();
       }},
      {"memory", "SIZE", "Guest RAM: bytes or K/M/G/T (binary; 512M = 512MiB).",
       [](const VmConfig& d) { return ByteSizeText(d.memory_bytes); },
       [](absl::string_view v, CliRequest& r) {
         ASSIGN_OR_RETURN(r.config.memory_bytes, ParseByteSize(v));
         return absl::OkStatus();
       }},
      {"cpus", "N",
       absl::StrCat("Number of vCPUs, 1..", kMaxVcpus,
                    " (the MP table's room; a host's KVM may allow fewer)."),
       [](const VmConfig& d) { return absl::StrCat(d.cpus); },
       [](absl::string_view v, CliRequest& r) {
         int cpus = 0;
         if (v.empty() || v.find_first_not_of("0123456789") != absl::string_view::npos) {
           return absl::InvalidArgumentError("expected a whole number of vCPUs");
         }
         if (!absl::SimpleAtoi(v, &cpus) || cpus < 1 || cpus > kMaxVcpus) {
           return absl::InvalidArgumentError(absl::StrCat("must be between 1 and ", kMaxVcpus));
         }
         r.config.cpus = cpus;
         return absl::OkStatus();
       }},
      {"serial", "MODE",
       "Guest console (COM1): stdio, file=PATH (append), socket=PATH (a Unix socket vmm "
       "listens on, both ways), pty (a new /dev/pts/N, named on stderr), or off.",
       [](const VmConfig& d) {
         return d.serial.mode == SerialConfig::Mode::kStdio ? std::string("stdio")
                                                             : std::string();
       },
       [](absl::string_view v, CliRequest& r) {
         ASSIGN_OR_RETURN(r.config.serial, ParseSerialSpec(v));
         return absl::OkStatus();
       }},
      {"timeout", "SECONDS", "Stop the guest after this many seconds (e.g. 30, 0.5, 2m); exit 124.",
       [](const VmConfig& d) {
         return d.timeout == absl::InfiniteDuration() ? std::string("none")
                                                      : absl::FormatDuration(d.timeout);
       },
       [](absl::string_view v, CliRequest& r) {
         ASSIGN_OR_RETURN(r.config.timeout, ParseTimeout(v));
         return absl::OkStatus();
       }},
      {"shutdown-grace", "SECONDS",
       "SIGTERM presses the guest's ACPI power button and stops it (exit 124) if it has not "
       "powered off this long after; 0: SIGTERM stops at once (exit 130). A second SIGTERM, "
       "or Ctrl-C, always stops at once.",
       [](const VmConfig& d) { return absl::FormatDuration(d.shutdown_grace); },
       [](absl::string_view v, CliRequest& r) {
         if (v == "0") {
           r.config.shutdown_grace = absl::ZeroDuration();
           return absl::OkStatus();
         }
         absl::StatusOr<absl::Duration> grace = ParseTimeout(v);
         if (!grace.ok() || *grace == absl::InfiniteDuration()) {
           return absl::InvalidArgumentError("expected seconds, e.g. 10, 0.5 or 1m (0: none)");
         }
         r.config.shutdown_grace = *grace;
         return absl::OkStatus();
       }},
      {"host-root", "",
       "Boot the kernel on this host's own root file system (read-only, through virtiofsd, "
       "writes kept in the guest) and run the command given after --; vmm exits with its "
       "status (125: the guest could not run it).",
       nullptr,
       [](absl::string_view v, CliRequest& r) {
         ASSIGN_OR_RETURN(r.host_root.enabled, ParseBool(v));
         return absl::OkStatus();
       }},
      {"rw", "DIR",
       "With --host-root: share DIR read-write at its own path (default: the current "
       "directory). May be given more than once.",
       nullptr,
       [](absl::string_view v, CliRequest& r) {
         if (v.empty()) return absl::InvalidArgumentError("expected a directory");
         r.host_root.rw_dirs.emplace_back(v);
         return absl::OkStatus();
       },
       /*repeatable=*/true, /*host_root=*/true},
      {"modules", "DIR",
       "With --host-root: the kernel's module tree (a lib/modules/RELEASE directory); "
       "default: beside the kernel, then /lib/modules/RELEASE.",
       nullptr,
       [](absl::string_view v, CliRequest& r) {
         if (v.empty()) return absl::InvalidArgumentError("expected a directory");
         r.host_root.modules_dir = std::string(v);
         return absl::OkStatus();
       },
       false, true},
      {"user", "NAME",
       "With --host-root: run the command as this user (name or uid of this host).",
       nullptr,
       [](absl::string_view v, CliRequest& r) {
         if (v.empty()) return absl::InvalidArgumentError("expected a user name or uid");
         r.host_root.user = std::string(v);
         return absl::OkStatus();
       },
       false, true},
      {"verbose", "",
       "With --host-root: show the guest kernel's boot messages.",
       nullptr,
       [](absl::string_view v, CliRequest& r) {
         ASSIGN_OR_RETURN(r.host_root.verbose, ParseBool(v));
         return absl::OkStatus();
       },
       false, true},
      {"virtiofsd", "PATH",
       "With --host-root: the virtiofsd to run (default: Debian's /usr/libexec/virtiofsd, or "
       "QEMU's /usr/lib/qemu/virtiofsd).",
       nullptr,
       [](absl::string_view v, CliRequest& r) {
         if (v.empty()) return absl::InvalidArgumentError("expected a path");
         r.host_root.virtiofsd = std::string(v);
         return absl::OkStatus();
       },
       false, true},
      {"restore", "DIR",
       "Start from the snapshot in DIR (written by the API's vm.snapshot) instead of booting; "
       "give the same --memory, --cpus and devices as the snapshotted VM (disks and taps by "
       "path and name; --kernel only if the guest may reboot).",
       nullptr,
       [](absl::string_view v, CliRequest& r) {
         if (v.empty()) return absl::InvalidArgumentError("expected a snapshot directory");
         r.config.restore_from = std::string(v);
         return absl::OkStatus();
       }},
      {"api-socket", "PATH",
       "Serve the HTTP/1.1 + JSON API at this Unix socket (created 0600): vm.info, "
       "vm.counters, vm.pause, vm.resume, vm.shutdown, vm.stop, vm.snapshot; see `vmmctl`.",
       nullptr,
       [](absl::string_view v, CliRequest& r) {
         if (v.empty()) return absl::InvalidArgumentError("expected a socket path");
         r.config.api_socket_path = std::string(v);
         return absl::OkStatus();
       }},
      {"memfd", "", "Back guest RAM with a memfd (shareable with another process).", nullptr,
       [](absl::string_view v, CliRequest& r) {
         ASSIGN_OR_RETURN(r.config.memfd_backed, ParseBool(v));
         return absl::OkStatus();
       }},
      {"acpi", "on|off",
       "on: describe the machine with ACPI tables; off: MP table only, virtio-mmio devices "
       "announced on the kernel command line.",
       [](const VmConfig& d) { return std::string(d.acpi ? "on" : "off"); },
       [](absl::string_view v, CliRequest& r) {
         ASSIGN_OR_RETURN(size_t i, OneOf(v, {"on", "off"}));
         r.config.acpi = i == 0;
         return absl::OkStatus();
       }},
      {"on-reboot", "exit|restart",
       "What a guest reboot does: exit (status 0) or restart (boot the guest again in a fresh "
       "machine; --timeout keeps counting).",
       [](const VmConfig& d) {
         return std::string(d.on_reboot == VmConfig::RebootAction::kRestart ? "restart"
                                                                            : "exit");
       },
       [](absl::string_view v, CliRequest& r) {
         ASSIGN_OR_RETURN(size_t i, OneOf(v, {"exit", "restart"}));
         r.config.on_reboot =
             i == 1 ? VmConfig::RebootAction::kRestart : VmConfig::RebootAction::kExit;
         return absl::OkStatus();
       }},
      {"seccomp", "on|off|log",
       "seccomp-bpf confinement of the VMM's threads: on (a disallowed system call kills vmm), "
       "log (allowed, logged by the kernel: for debugging), or off.",
       [](const VmConfig& d) {
         return std::string(d.seccomp == SeccompMode::kOff   ? "off"
                            : d.seccomp == SeccompMode::kLog ? "log"
                                                             : "on");
       },
       [](absl::string_view v, CliRequest& r) {
         ASSIGN_OR_RETURN(size_t i, OneOf(v, {"on", "off", "log"}));
         static constexpr SeccompMode kModes[] = {SeccompMode::kEnforce, SeccompMode::kOff,
                                                  SeccompMode::kLog};
         r.config.seccomp = kModes[i];
         return absl::OkStatus();
       }},
      {"stats", "",
       "After the run, print start-up latency, RSS at the first KVM_RUN and exit counts on "
       "stderr.",
       nullptr,
       [](absl::string_view v, CliRequest& r) {
         ASSIGN_OR_RETURN(r.print_stats, ParseBool(v));
         return absl::OkStatus();
       }},
      {"decompress", "auto|vmm|guest",
       "Who unpacks a bzImage's compressed kernel: guest (its own decompressor, as on a PC), "
       "vmm (unpacked before boot, the vmlinux entered directly; xz and gzip), or auto (vmm on "
       "PVM hosts, where the guest's decompressor crawls; else guest).",
       [](const VmConfig& d) {
         using K = VmConfig::KernelDecompression;
         return std::string(d.kernel_decompression == K::kVmm     ? "vmm"
                            : d.kernel_decompression == K::kGuest ? "guest"
                                                                  : "auto");
       },
       [](absl::string_view v, CliRequest& r) {
         using K = VmConfig::KernelDecompression;
         ASSIGN_OR_RETURN(size_t i, OneOf(v, {"auto", "vmm", "guest"}));
         static constexpr K kWho[] = {K::kAuto, K::kVmm, K::kGuest};
         r.config.kernel_decompression = kWho[i];
         return absl::OkStatus();
       }},
  };
  return *flags;
}

const FlagSpec* FindFlag(absl::string_view name) {
  for (const FlagSpec& flag : Flags()) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

// One device from the command line: its config, or the help it asked for.
struct DeviceFlag {
  std::optional<DeviceConfig> config;
  std::string help;
};

// OPTIONS of a short flag (--disk OPTIONS) or after --device NAME,; "help"
// alone asks for the kind's options.
absl::StatusOr<DeviceFlag> ParseDeviceOptions(const VirtioDeviceSpec& spec,
                                              absl::string_view options) {
  DeviceFlag flag;
  if (options == "help") {
    flag.help = spec.Help();
    return flag;
  }
  ASSIGN_OR_RETURN(flag.config, spec.Parse(options));
  return flag;
}

// --device help | NAME | NAME,help | NAME,OPTIONS.
absl::StatusOr<DeviceFlag> ParseDeviceFlag(absl::string_view value) {
  if (value == "help") return DeviceFlag{std::nullopt, VirtioDeviceListHelp()};
  const size_t comma = value.find(',');
  const absl::string_view name = value.substr(0, comma);
  const VirtioDeviceSpec* spec = FindVirtioDeviceSpec(name);
  if (spec == nullptr || spec->name() != name) {
    std::vector<absl::string_view> names;
    for (const VirtioDeviceSpec* known : VirtioDeviceSpecs()) names.push_back(known->name());
    return absl::InvalidArgumentError(absl::StrCat("unknown device '", name, "' (devices: ",
                                                   absl::StrJoin(names, ", "),
                                                   "; --device help lists them)"));
  }
  if (comma == absl::string_view::npos) return ParseDeviceOptions(*spec, "");
  if (comma + 1 == value.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("nothing after '", name, ",' (options, or help)"));
  }
  return ParseDeviceOptions(*spec, value.substr(comma + 1));
}

}  // namespace

absl::StatusOr<CliRequest> ParseCommandLine(int argc, char** argv) {
  CliRequest request;  // the flags apply to it in order; VmConfig's defaults otherwise
  bool help = false;
  bool version = false;
  absl::Status first_error;
  auto fail = [&first_error](absl::Status status) {
    if (first_error.ok()) first_error = std::move(status);
  };

  // Devices (--device NAME,OPTIONS and each kind's short flag, from the
  // registry), parsed as they are met so that the first bad argument is the
  // one reported.
  std::vector<DeviceConfig> devices;
  absl::flat_hash_set<const FlagSpec*> given;  // plain flags met so far
  std::string device_help;  // --device help, --device NAME,help
  bool flags_ended = false;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i] != nullptr ? argv[i] : "";
    if (!flags_ended && arg == "--") {
      flags_ended = true;
      continue;
    }
    if (flags_ended) {  // the --host-root command
      request.host_root.command.emplace_back(arg);
      continue;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      fail(absl::InvalidArgumentError(absl::StrCat(
          "unexpected argument '", arg, "' (vmm takes flags only; a command goes after --, "
          "with --host-root)")));
      continue;
    }
    absl::string_view name = arg;
    if (!absl::ConsumePrefix(&name, "--")) name.remove_prefix(1);
    absl::string_view value;
    const size_t eq = name.find('=');
    const bool has_value = eq != absl::string_view::npos;
    if (has_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }

    if (name == "help" || name == "h" || name == "version") {
      if (has_value) {
        fail(absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value")));
      } else {
        (name == "version" ? version : help) = true;
      }
      continue;
    }

    const VirtioDeviceSpec* short_flag = FindVirtioDeviceSpec(name);
    if (short_flag != nullptr && short_flag->flag() != name) short_flag = nullptr;
    if (short_flag != nullptr || name == "device") {
      if (!has_value) {
        if (i + 1 >= argc || argv[i + 1] == nullptr) {
          fail(absl::InvalidArgumentError(absl::StrCat(
              "--", name, " needs a value: --", name,
              short_flag != nullptr ? " OPTIONS" : " NAME,OPTIONS (or help)")));
          continue;
        }
        value = argv[++i];
      }
      absl::StatusOr<DeviceFlag> device = short_flag != nullptr
                                              ? ParseDeviceOptions(*short_flag, value)
                                              : ParseDeviceFlag(value);
      if (!device.ok()) {
        fail(absl::InvalidArgumentError(absl::StrCat("invalid value '", value, "' for --", name,
                                                     ": ", device.status().message())));
      } else if (!device->help.empty()) {
        device_help = device->help;
      } else if (const VirtioDeviceSpec& spec = (*device->config)->spec();
                 !spec.repeatable() &&
                 absl::c_any_of(devices, [&spec](const DeviceConfig& given) {
                   return &given->spec() == &spec;
                 })) {
        fail(absl::InvalidArgumentError(absl::StrCat(
            spec.name(), " (--", spec.flag(), ") may be given only once")));
      } else {
        devices.push_back(*std::move(device->config));
      }
      continue;
    }

    const FlagSpec* spec = FindFlag(name);
    bool negated = false;  // --nomemfd: a false boolean
    if (spec == nullptr && absl::StartsWith(name, "no")) {
      const FlagSpec* positive = FindFlag(name.substr(2));
      if (positive != nullptr && positive->value_name.empty()) {
        spec = positive;
        negated = true;
      }
    }
    if (spec == nullptr) {
      fail(absl::InvalidArgumentError(absl::StrCat("unknown flag '", arg, "'")));
      continue;
    }
    // A second --kernel (or --memory, --nomemfd after --memfd...) would
    // silently win: say so instead, as for devices given twice.
    if (!given.insert(spec).second && !spec->repeatable) {
      fail(absl::InvalidArgumentError(
          absl::StrCat("--", spec->name, " is given twice (each flag may be given once)")));
      if (spec->value_name.empty() || has_value) continue;
      ++i;  // skip its value too
      continue;
    }
    if (spec->value_name.empty()) {  // boolean: never consumes the next argument
      if (negated && has_value) {
        fail(absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value")));
        continue;
      }
      if (!has_value) value = negated ? "false" : "true";
    } else if (!has_value) {
      if (i + 1 >= argc || argv[i + 1] == nullptr) {
        fail(absl::InvalidArgumentError(
            absl::StrCat("--", name, " needs a value: --", name, " ", spec->value_name)));
        continue;
      }
      value = argv[++i];
    }
    if (absl::Status set = spec->apply(value, request); !set.ok()) {
      fail(absl::InvalidArgumentError(absl::StrCat("invalid value '", value, "' for --",
                                                   spec->name, ": ", set.message())));
    }
  }

  // Asking for help is never an error, whatever else is on the line.
  if (help) {
    request.action = CliRequest::Action::kPrintHelp;
    return request;
  }
  if (version) {
    request.action = CliRequest::Action::kPrintVersion;
    return request;
  }
  if (!device_help.empty()) {
    request.action = CliRequest::Action::kPrintDeviceHelp;
    request.device_help = std::move(device_help);
    return request;
  }
  RETURN_IF_ERROR(first_error);
  if (!request.host_root.enabled) {
    for (const FlagSpec* spec : given) {
      if (spec->host_root) {
        return absl::InvalidArgumentError(absl::StrCat("--", spec->name, " needs --host-root"));
      }
    }
    if (!request.host_root.command.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected argument '", request.host_root.command[0],
          "' after -- (a command needs --host-root)"));
    }
  } else if (request.host_root.command.empty()) {
    return absl::InvalidArgumentError("--host-root needs a command after --");
  } else if (!request.config.restore_from.empty()) {
    return absl::InvalidArgumentError("--host-root and --restore do not go together");
  }
  if (request.config.kernel_path.empty() && request.config.restore_from.empty()) {
    return absl::InvalidArgumentError("--kernel PATH is required (or --restore DIR)");
  }
  // A kind given on the command line replaces its default (--rng off).
  for (const DeviceConfig& device : devices) {
    if (!device->spec().repeatable()) {
      std::erase_if(request.config.devices, [&device](const DeviceConfig& present) {
        return &present->spec() == &device->spec();
      });
    }
  }
  for (DeviceConfig& device : devices) request.config.devices.push_back(std::move(device));
  return request;
}

std::string HelpText() {
  std::string text = absl::StrCat(
      "Usage: ", kProgram, " --kernel PATH [flags]\n\n",
      "Boots a kernel in a lightweight KVM virtual machine.\n\nFlags:\n");
  auto add_line = [&text](absl::string_view left, absl::string_view help) {
    absl::StrAppend(&text, absl::StrFormat("  %-28s ", std::string(left)), help, "\n");
  };
  const VmConfig defaults;
  for (const FlagSpec& spec : Flags()) {
    std::string left = absl::StrCat("--", spec.name);
    if (!spec.value_name.empty()) absl::StrAppend(&left, " ", spec.value_name);
    std::string help = spec.help;
    const std::string default_value = spec.default_text ? spec.default_text(defaults) : "";
    if (!default_value.empty()) absl::StrAppend(&help, " Default: ", default_value, ".");
    add_line(left, help);
  }
  for (const VirtioDeviceSpec* spec : VirtioDeviceSpecs()) {
    std::vector<std::string> keys;
    for (const DeviceKey& key : spec->keys()) {
      keys.push_back(key.value.empty() ? key.name : absl::StrCat(key.name, "=", key.value));
    }
    add_line(absl::StrCat("--", spec->flag(), " OPTIONS"),
             absl::StrCat("Add ", spec->name(), ": ", spec->summary(),
                          spec->repeatable() ? " (repeatable)" : "",
                          spec->present_by_default() ? " (present unless off)" : "",
                          ". OPTIONS: ", absl::StrJoin(keys, ", "), "."));
  }
  add_line("--device NAME,OPTIONS",
           "Add a device by name (the same as its short flag above); --device help lists "
           "the devices, --device NAME,help a device's options with their defaults.");
  add_line("--help, -h", "Print this help and exit.");
  add_line("--version", "Print the version and exit.");
  absl::StrAppend(&text,
                  "\nFlags take --flag=value or --flag value.\n\n"
                  "Exit status:\n"
                  "  0     the guest powered off or reset\n"
                  "  2N+1  the guest wrote N to the debug-exit port (modulo 256)\n"
                  "  4     the guest kernel panicked (pvpanic)\n"
                  "  124   --timeout elapsed\n"
                  "  130   stopped by a signal (INT, TERM, HUP, QUIT, USR1, USR2, ALRM)\n"
                  "  1     the VMM failed\n"
                  "  2     bad usage or configuration (flags, kernel file, memory size)\n");
  return text;
}

std::string VersionText() { return absl::StrCat(kProgram, " ", VMM_VERSION, "\n"); }

}  // namespace vmm::cli
