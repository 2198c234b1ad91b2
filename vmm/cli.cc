#include "vmm/cli.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/flags/flag.h"
#include "absl/flags/marshalling.h"
#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/strings/string_view.h"
#include "base/status_macros.h"
#include "devices/virtio/registry.h"

#ifndef VMM_VERSION
#define VMM_VERSION "0.1.0"
#endif

// Flag value types: each parses through the same function the tests exercise,
// so the flag can never hold a value the CLI would reject.
namespace vmm::cli::flag_types {

struct ByteSizeFlag {
  uint64_t bytes = 0;
};
struct SerialFlag {
  SerialConfig config;
};
struct TimeoutFlag {
  absl::Duration value = absl::InfiniteDuration();
};

bool AbslParseFlag(absl::string_view text, ByteSizeFlag* out, std::string* error) {
  absl::StatusOr<uint64_t> bytes = ParseByteSize(text);
  if (!bytes.ok()) {
    *error = std::string(bytes.status().message());
    return false;
  }
  out->bytes = *bytes;
  return true;
}

// The largest suffix that divides exactly, so the default reads "512M".
std::string AbslUnparseFlag(const ByteSizeFlag& size) {
  static constexpr struct {
    char suffix;
    int shift;
  } kUnits[] = {{'T', 40}, {'G', 30}, {'M', 20}, {'K', 10}};
  for (const auto& unit : kUnits) {
    const uint64_t mask = (uint64_t{1} << unit.shift) - 1;
    if (size.bytes != 0 && (size.bytes & mask) == 0) {
      return absl::StrCat(size.bytes >> unit.shift, std::string(1, unit.suffix));
    }
  }
  return absl::StrCat(size.bytes);
}

bool AbslParseFlag(absl::string_view text, SerialFlag* out, std::string* error) {
  absl::StatusOr<SerialConfig> config = ParseSerialSpec(text);
  if (!config.ok()) {
    *error = std::string(config.status().message());
    return false;
  }
  out->config = *std::move(config);
  return true;
}

std::string AbslUnparseFlag(const SerialFlag& serial) {
  switch (serial.config.mode) {
    case SerialConfig::Mode::kStdio:
      return "stdio";
    case SerialConfig::Mode::kFile:
      return absl::StrCat("file=", serial.config.path);
    case SerialConfig::Mode::kOff:
      return "off";
    case SerialConfig::Mode::kCallback:
      break;  // not expressible on a command line
  }
  return "callback";
}

bool AbslParseFlag(absl::string_view text, TimeoutFlag* out, std::string* error) {
  absl::StatusOr<absl::Duration> timeout = ParseTimeout(text);
  if (!timeout.ok()) {
    *error = std::string(timeout.status().message());
    return false;
  }
  out->value = *timeout;
  return true;
}

std::string AbslUnparseFlag(const TimeoutFlag& timeout) {
  if (timeout.value == absl::InfiniteDuration()) return "none";
  return absl::FormatDuration(timeout.value);
}

}  // namespace vmm::cli::flag_types

using vmm::cli::flag_types::ByteSizeFlag;
using vmm::cli::flag_types::SerialFlag;
using vmm::cli::flag_types::TimeoutFlag;

// Defaults come from VmConfig so the CLI and the library cannot disagree.
ABSL_FLAG(std::string, kernel, "",
          "Guest kernel: bzImage, ELF vmlinux, or ELF with a PVH note. Required.");
ABSL_FLAG(std::string, initrd, "", "Initial ramdisk to load for the kernel.");
ABSL_FLAG(std::string, cmdline, "", "Kernel command line.");
ABSL_FLAG(ByteSizeFlag, memory, ByteSizeFlag{vmm::VmConfig{}.memory_bytes},
          "Guest RAM: bytes or K/M/G/T (binary; 512M = 512MiB).");
ABSL_FLAG(int, cpus, vmm::VmConfig{}.cpus, "Number of vCPUs, 1..255.");
ABSL_FLAG(SerialFlag, serial, SerialFlag{vmm::VmConfig{}.serial},
          "Guest console (COM1): stdio, file=PATH (append), or off.");
ABSL_FLAG(TimeoutFlag, timeout, TimeoutFlag{vmm::VmConfig{}.timeout},
          "Stop the guest after this many seconds (e.g. 30, 0.5, 2m); exit 124.");
ABSL_FLAG(bool, memfd, vmm::VmConfig{}.memfd_backed,
          "Back guest RAM with a memfd (shareable with another process).");
ABSL_FLAG(std::string, acpi, vmm::VmConfig{}.acpi ? "on" : "off",
          "on: describe the machine with ACPI tables; off: MP table only, virtio-mmio "
          "devices announced on the kernel command line.");
ABSL_FLAG(std::string, on_reboot,
          vmm::VmConfig{}.on_reboot == vmm::VmConfig::RebootAction::kRestart ? "restart"
                                                                              : "exit",
          "What a guest reboot does: exit (status 0) or restart (boot the guest again in a "
          "fresh machine; --timeout keeps counting).");
ABSL_FLAG(std::string, seccomp, "on",
          "seccomp-bpf confinement of the VMM's threads: on (a disallowed system call kills "
          "vmm), log (allowed, logged by the kernel: for debugging), or off.");
ABSL_FLAG(std::string, decompress, "auto",
          "Who unpacks a bzImage's compressed kernel: guest (its own decompressor, as on a "
          "PC), vmm (unpacked before boot, the vmlinux entered directly; xz and gzip), or "
          "auto (vmm on PVM hosts, where the guest's decompressor crawls; else guest).");
ABSL_FLAG(bool, stats, false,
          "After the run, print start-up latency, RSS at the first KVM_RUN and exit "
          "counts on stderr.");

namespace vmm::cli {
namespace {

constexpr absl::string_view kProgram = "vmm";
constexpr int kMaxCpus = 255;

absl::Status ValidateCpus(absl::string_view text) {
  if (text.empty() || text.find_first_not_of("0123456789") != absl::string_view::npos) {
    return absl::InvalidArgumentError("expected a whole number of vCPUs");
  }
  int cpus = 0;
  if (!absl::SimpleAtoi(text, &cpus) || cpus < 1 || cpus > kMaxCpus) {
    return absl::InvalidArgumentError(absl::StrCat("must be between 1 and ", kMaxCpus));
  }
  return absl::OkStatus();
}

absl::Status ValidateBool(absl::string_view text) {
  bool value = false;
  std::string error;
  if (!absl::ParseFlag(text, &value, &error)) {
    return absl::InvalidArgumentError("expected true or false");
  }
  return absl::OkStatus();
}

absl::Status ValidateAny(absl::string_view) { return absl::OkStatus(); }

absl::Status ValidateRebootAction(absl::string_view text) {
  if (text == "exit" || text == "restart") return absl::OkStatus();
  return absl::InvalidArgumentError("expected exit or restart");
}

absl::Status ValidateDecompress(absl::string_view text) {
  if (text == "auto" || text == "vmm" || text == "guest") return absl::OkStatus();
  return absl::InvalidArgumentError("expected auto, vmm or guest");
}

absl::Status ValidateSeccomp(absl::string_view text) {
  if (text == "on" || text == "off" || text == "log") return absl::OkStatus();
  return absl::InvalidArgumentError("expected on, off or log");
}

absl::Status ValidateOnOff(absl::string_view text) {
  if (text == "on" || text == "off") return absl::OkStatus();
  return absl::InvalidArgumentError("expected on or off");
}

// The flags `vmm` accepts, in --help order. Only these are looked up: any
// other flag linked into the binary (absl's own, a library's) is "unknown".
struct FlagSpec {
  absl::string_view name;
  absl::string_view value_name;  // empty for the boolean
  absl::Status (*validate)(absl::string_view);
};

absl::Status ValidateSize(absl::string_view text) { return ParseByteSize(text).status(); }
absl::Status ValidateSerial(absl::string_view text) { return ParseSerialSpec(text).status(); }
absl::Status ValidateTimeout(absl::string_view text) { return ParseTimeout(text).status(); }

constexpr FlagSpec kFlags[] = {
    {"kernel", "PATH", ValidateAny},    {"initrd", "PATH", ValidateAny},
    {"cmdline", "STR", ValidateAny},    {"memory", "SIZE", ValidateSize},
    {"cpus", "N", ValidateCpus},        {"serial", "MODE", ValidateSerial},
    {"timeout", "SECONDS", ValidateTimeout}, {"memfd", "", ValidateBool},
    {"acpi", "on|off", ValidateOnOff},  {"on-reboot", "exit|restart", ValidateRebootAction},
    {"seccomp", "on|off|log", ValidateSeccomp}, {"stats", "", ValidateBool},
    {"decompress", "auto|vmm|guest", ValidateDecompress},
};

const FlagSpec* FindSpec(absl::string_view name) {
  for (const FlagSpec& spec : kFlags) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

absl::StatusOr<absl::CommandLineFlag*> Registered(absl::string_view name) {
  // --on-reboot is the absl flag on_reboot.
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(absl::StrReplaceAll(name, {{"-", "_"}}));
  if (flag == nullptr) {
    return absl::InternalError(absl::StrCat("flag --", name, " is not registered"));
  }
  return flag;
}

absl::Status ResetFlagsToDefaults() {
  for (const FlagSpec& spec : kFlags) {
    ASSIGN_OR_RETURN(absl::CommandLineFlag * flag, Registered(spec.name));
    std::string error;
    if (!flag->ParseFrom(flag->DefaultValue(), &error)) {
      return absl::InternalError(absl::StrCat("resetting --", spec.name, ": ", error));
    }
  }
  return absl::OkStatus();
}

// Applies one `--name[=value]` (value already split off or taken from the
// next argument) after checking it with the flag's own parser.
absl::Status SetFlag(const FlagSpec& spec, absl::string_view value) {
  if (absl::Status valid = spec.validate(value); !valid.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid value '", value, "' for --", spec.name, ": ", valid.message()));
  }
  ASSIGN_OR_RETURN(absl::CommandLineFlag * flag, Registered(spec.name));
  std::string error;
  if (!flag->ParseFrom(value, &error)) return absl::InvalidArgumentError(error);
  return absl::OkStatus();
}

absl::StatusOr<VmConfig> ConfigFromFlags() {
  VmConfig config;
  config.kernel_path = absl::GetFlag(FLAGS_kernel);
  if (config.kernel_path.empty()) {
    return absl::InvalidArgumentError("--kernel PATH is required");
  }
  config.initrd_path = absl::GetFlag(FLAGS_initrd);
  config.cmdline = absl::GetFlag(FLAGS_cmdline);
  config.memory_bytes = absl::GetFlag(FLAGS_memory).bytes;
  config.cpus = absl::GetFlag(FLAGS_cpus);
  config.serial = absl::GetFlag(FLAGS_serial).config;
  config.timeout = absl::GetFlag(FLAGS_timeout).value;
  config.memfd_backed = absl::GetFlag(FLAGS_memfd);
  config.acpi = absl::GetFlag(FLAGS_acpi) == "on";
  const std::string seccomp = absl::GetFlag(FLAGS_seccomp);
  config.seccomp = seccomp == "off"   ? SeccompMode::kOff
                   : seccomp == "log" ? SeccompMode::kLog
                                      : SeccompMode::kEnforce;
  config.on_reboot = absl::GetFlag(FLAGS_on_reboot) == "restart"
                         ? VmConfig::RebootAction::kRestart
                         : VmConfig::RebootAction::kExit;
  const std::string decompress = absl::GetFlag(FLAGS_decompress);
  config.kernel_decompression = decompress == "vmm"     ? VmConfig::KernelDecompression::kVmm
                                : decompress == "guest" ? VmConfig::KernelDecompression::kGuest
                                                        : VmConfig::KernelDecompression::kAuto;
  return config;
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
  return ParseDeviceOptions(*spec, comma == absl::string_view::npos
                                       ? absl::string_view()
                                       : value.substr(comma + 1));
}

// One line whatever the message holds.
std::string OneLine(const absl::Status& status) {
  std::string message(status.message());
  if (message.empty()) message = absl::StatusCodeToString(status.code());
  return absl::StrReplaceAll(message, {{"\r\n", "; "}, {"\n", "; "}, {"\r", "; "}});
}

}  // namespace

absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[digits]))) {
    ++digits;
  }
  if (digits == 0) {
    return absl::InvalidArgumentError("expected a size such as 512M, 2G or 1048576");
  }
  uint64_t number = 0;
  if (!absl::SimpleAtoi(text.substr(0, digits), &number)) {
    return absl::InvalidArgumentError("size does not fit in 64 bits");
  }
  absl::string_view suffix = text.substr(digits);
  int shift = 0;
  if (!suffix.empty()) {
    switch (absl::ascii_toupper(static_cast<unsigned char>(suffix[0]))) {
      case 'K': shift = 10; break;
      case 'M': shift = 20; break;
      case 'G': shift = 30; break;
      case 'T': shift = 40; break;
      default: shift = -1; break;
    }
    absl::string_view rest = suffix.substr(1);
    if (shift < 0 || !(rest.empty() || rest == "B" || rest == "iB" || rest == "b" ||
                       rest == "ib" || rest == "IB")) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown size suffix '", suffix, "' (use K, M, G or T)"));
    }
  }
  if (number == 0) return absl::InvalidArgumentError("size must be greater than zero");
  if (number > (std::numeric_limits<uint64_t>::max() >> shift)) {
    return absl::InvalidArgumentError("size does not fit in 64 bits");
  }
  return number << shift;
}

absl::StatusOr<SerialConfig> ParseSerialSpec(absl::string_view text) {
  SerialConfig config;
  if (text == "stdio") {
    config.mode = SerialConfig::Mode::kStdio;
  } else if (text == "off") {
    config.mode = SerialConfig::Mode::kOff;
  } else if (absl::ConsumePrefix(&text, "file=")) {
    if (text.empty()) return absl::InvalidArgumentError("file= needs a path, e.g. file=console.log");
    config.mode = SerialConfig::Mode::kFile;
    config.path = std::string(text);
  } else if (text == "file") {
    return absl::InvalidArgumentError("file needs a path, e.g. file=console.log");
  } else {
    return absl::InvalidArgumentError("expected stdio, file=PATH or off");
  }
  return config;
}

absl::StatusOr<absl::Duration> ParseTimeout(absl::string_view text) {
  // "none" is how the default (no timeout) prints; accept it back.
  if (text == "none") return absl::InfiniteDuration();
  absl::Duration timeout;
  // A plain decimal number is seconds; digits and at most one dot only, so
  // "inf", "nan", "1e9" and signs are rejected.
  const bool plain_number =
      !text.empty() && text.find_first_not_of("0123456789.") == absl::string_view::npos &&
      text.find('.') == text.rfind('.') && text != ".";
  if (plain_number) {
    double seconds = 0;
    if (!absl::SimpleAtod(text, &seconds)) {
      return absl::InvalidArgumentError("expected seconds, e.g. 30 or 0.5");
    }
    timeout = absl::Seconds(seconds);
  } else if (text.empty() || text[0] == '-' || text[0] == '+' ||
             !absl::ParseDuration(text, &timeout)) {
    if (!text.empty() && text[0] == '-') {
      return absl::InvalidArgumentError("timeout must be greater than zero");
    }
    return absl::InvalidArgumentError("expected seconds, e.g. 30, 0.5 or 2m");
  }
  if (timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeout must be greater than zero");
  }
  if (timeout == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError("timeout must be finite (omit --timeout for none)");
  }
  return timeout;
}

absl::StatusOr<CliRequest> ParseCommandLine(int argc, char** argv) {
  RETURN_IF_ERROR(ResetFlagsToDefaults());
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
  std::string device_help;  // --device help, --device NAME,help
  bool flags_ended = false;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i] != nullptr ? argv[i] : "";
    if (!flags_ended && arg == "--") {
      flags_ended = true;
      continue;
    }
    if (flags_ended || arg.size() < 2 || arg[0] != '-') {
      fail(absl::InvalidArgumentError(
          absl::StrCat("unexpected argument '", arg, "' (vmm takes flags only)")));
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

    const FlagSpec* spec = FindSpec(name);
    bool negated = false;  // --nomemfd, as absl spells a false boolean
    if (spec == nullptr && absl::StartsWith(name, "no")) {
      const FlagSpec* positive = FindSpec(name.substr(2));
      if (positive != nullptr && positive->value_name.empty()) {
        spec = positive;
        negated = true;
      }
    }
    if (spec == nullptr) {
      fail(absl::InvalidArgumentError(absl::StrCat("unknown flag '", arg, "'")));
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
    if (absl::Status set = SetFlag(*spec, value); !set.ok()) fail(std::move(set));
  }

  // Asking for help is never an error, whatever else is on the line.
  CliRequest request;
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
  ASSIGN_OR_RETURN(request.config, ConfigFromFlags());
  // A kind given on the command line replaces its default (--rng off).
  for (const DeviceConfig& device : devices) {
    if (!device->spec().repeatable()) {
      std::erase_if(request.config.devices, [&device](const DeviceConfig& present) {
        return &present->spec() == &device->spec();
      });
    }
  }
  for (DeviceConfig& device : devices) request.config.devices.push_back(std::move(device));
  request.print_stats = absl::GetFlag(FLAGS_stats);
  return request;
}

std::string StatsLine(const VmStats& stats) {
  std::string first_run = "never";
  if (stats.first_kvm_run != absl::UnixEpoch()) {
    first_run = absl::StrFormat(
        "%.3f ms after Vm::Create began (unix time %.6f), RSS then %.1f MiB",
        absl::ToDoubleMilliseconds(stats.first_kvm_run - stats.create_started),
        absl::ToDoubleSeconds(stats.first_kvm_run - absl::UnixEpoch()),
        static_cast<double>(stats.rss_at_first_run_bytes) / (1 << 20));
  }
  return absl::StrFormat(
      "%s: stats: first KVM_RUN %s; user-space exits: %d pio, %d mmio, %d virtio notify; "
      "%d virtio devices needed reset; %d restarts; %d emulation assists, %d #UD to guest "
      "programs",
      kProgram, first_run, stats.pio_exits, stats.mmio_exits, stats.virtio_notify_exits,
      stats.virtio_needs_reset, stats.restarts, stats.emulation_assists,
      stats.emulation_user_ud);
}

std::string HelpText() {
  std::string text = absl::StrCat(
      "Usage: ", kProgram, " --kernel PATH [flags]\n\n",
      "Boots a kernel in a lightweight KVM virtual machine.\n\nFlags:\n");
  auto add_line = [&text](absl::string_view left, absl::string_view help) {
    absl::StrAppend(&text, absl::StrFormat("  %-22s ", std::string(left)), help, "\n");
  };
  for (const FlagSpec& spec : kFlags) {
    absl::StatusOr<absl::CommandLineFlag*> found = Registered(spec.name);
    if (!found.ok()) continue;
    const absl::CommandLineFlag* flag = *found;
    std::string left = absl::StrCat("--", spec.name);
    if (!spec.value_name.empty()) absl::StrAppend(&left, " ", spec.value_name);
    std::string help = flag->Help();
    const std::string default_value = flag->DefaultValue();
    if (!spec.value_name.empty() && !default_value.empty()) {
      absl::StrAppend(&help, " Default: ", default_value, ".");
    }
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
                  "  130   stopped by SIGINT (Ctrl-C) or SIGTERM\n"
                  "  1     the VMM failed\n"
                  "  2     bad usage or configuration (flags, kernel file, memory size)\n");
  return text;
}

std::string VersionText() { return absl::StrCat(kProgram, " ", VMM_VERSION, "\n"); }

int ExitCodeForError(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kAlreadyExists:
      return kExitUsage;
    default:
      return kExitVmmFailure;
  }
}

std::string UsageErrorLine(const absl::Status& status) {
  return absl::StrCat(kProgram, ": ", OneLine(status), "; see --help");
}

std::string ErrorLine(const absl::Status& status) {
  return absl::StrCat(kProgram, ": ", OneLine(status));
}

}  // namespace vmm::cli
