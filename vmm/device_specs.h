// Parsers for the device options of the command line, e.g.
//   --disk path=IMG[,readonly=on][,serial=STR][,transport=pci|mmio][,direct=on]
// Kept apart from the flag walking in cli.cc so each device's option grammar
// is one small function, unit-tested (and fuzzed) on its own.
#ifndef VMM_VMM_DEVICE_SPECS_H_
#define VMM_VMM_DEVICE_SPECS_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "vmm/vmm.h"

namespace vmm::cli {

// "key=value,key=value": keys may not repeat; unknown keys and bad values
// are InvalidArgument naming the key. path= is required. on/off, true/false,
// yes/no and 1/0 are accepted for booleans.
absl::StatusOr<DiskConfig> ParseDiskSpec(absl::string_view spec);

}  // namespace vmm::cli

#endif  // VMM_VMM_DEVICE_SPECS_H_
