// The device options of the command line and their grammar, e.g.
//   --disk path=IMG[,readonly=on][,serial=STR][,transport=pci|mmio][,direct=on]
// Kept apart from the flag walking in cli.cc so each device's option grammar
// is one small function, unit-tested (and fuzzed) on its own.
//
// This is the registry the CLI learns devices from: a new device kind adds
// its parser here and one line to kDeviceOptions in device_specs.cc; cli.cc
// then accepts the flag and lists it in --help.
#ifndef VMM_VMM_DEVICE_SPECS_H_
#define VMM_VMM_DEVICE_SPECS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "vmm/vmm.h"

namespace vmm::cli {

// One device flag: --<flag> <value_name>.
struct DeviceOption {
  absl::string_view flag;        // "disk" for --disk
  absl::string_view value_name;  // "SPEC", shown in --help
  absl::string_view help;        // one sentence or two for --help
  // Repeatable flags add a device per occurrence; the others may be given
  // once (a second occurrence is a usage error).
  bool repeatable = false;
  // Parses `value` and adds (or sets) the device in `config`. Errors are
  // InvalidArgument naming the offending key or value, without the flag.
  absl::Status (*apply)(absl::string_view value, VmConfig& config) = nullptr;
};

// Every device flag, in --help order.
absl::Span<const DeviceOption> DeviceOptions();
// nullptr when `flag` is not a device flag.
const DeviceOption* FindDeviceOption(absl::string_view flag);

// "key=value,key=value": keys may not repeat; unknown keys and bad values
// are InvalidArgument naming the key. path= is required. on/off, true/false,
// yes/no and 1/0 are accepted for booleans.
absl::StatusOr<DiskConfig> ParseDiskSpec(absl::string_view spec);
// --net: exactly one of tap=NAME and fd=N; mac=xx:xx:xx:xx:xx:xx (unicast,
// not zero), queues=1..16 (1 with fd=), transport=pci|mmio.
absl::StatusOr<NetConfig> ParseNetSpec(absl::string_view spec);

// --console stdio|file=PATH|socket=PATH|off[,transport=pci|mmio]: the mode
// first, then keys (paths cannot contain ',').
absl::StatusOr<ConsoleConfig> ParseConsoleSpec(absl::string_view spec);
// --rng on|off|[rate=BYTES_PER_SEC][,transport=pci|mmio]; a key list means on.
absl::StatusOr<RngConfig> ParseRngSpec(absl::string_view spec);

// "cid=N,socket=PATH[,transport=pci|mmio]": cid 3..2^32-1 (0-2 are reserved
// and Linux keeps cids in 32 bits); PATH and PATH_<port> must fit a Unix
// socket address.
absl::StatusOr<VsockConfig> ParseVsockSpec(absl::string_view spec);

// Building blocks for the device parsers.
using SpecPairs = std::vector<std::pair<std::string, std::string>>;
// Splits "a=1,b=2" into pairs, refusing empty keys, missing '=' and repeats.
absl::StatusOr<SpecPairs> SplitSpec(absl::string_view spec);
// on/true/yes/1 or off/false/no/0; the error quotes "key=value".
absl::StatusOr<bool> ParseOnOff(absl::string_view key, absl::string_view value);
// "pci" or "mmio"; the error quotes "transport=value".
absl::StatusOr<VirtioTransport> ParseTransport(absl::string_view value);

}  // namespace vmm::cli

#endif  // VMM_VMM_DEVICE_SPECS_H_
