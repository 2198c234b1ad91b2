// What vmm prints besides --help: error lines, the exit code for an error,
// and --stats' lines (split from cli.cc, which parses the command line).
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "vmm/cli.h"

namespace vmm::cli {

std::string OneLine(const absl::Status& status) {
  std::string message(status.message());
  if (message.empty()) message = absl::StatusCodeToString(status.code());
  return absl::StrReplaceAll(message, {{"\r\n", "; "}, {"\n", "; "}, {"\r", "; "}});
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

std::string DeviceStatsLine(const DeviceInfo& device) {
  std::string line = absl::StrCat(kProgram, ": stats: ", device.kind, " (", device.transport, " ",
                                  device.address, "):");
  for (const auto& [name, value] : device.counters) absl::StrAppend(&line, " ", name, "=", value);
  return line;
}

int ExitCodeForError(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kDataLoss:  // a truncated or corrupted snapshot to --restore
      return kExitUsage;
    case absl::StatusCode::kCancelled:
      return kExitInterrupted;
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
