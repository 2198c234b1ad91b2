#include "vmm/api/vm_routes.h"

#include <array>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"

#ifndef VMM_VERSION
#define VMM_VERSION "unknown"
#endif

namespace vmm {
namespace {

using Json = nlohmann::json;

constexpr absl::string_view kPrefix = "/api/v1/";

// Strings from the configuration (paths, the command line) are the user's
// bytes, not necessarily UTF-8: dump() replaces what is not, rather than
// throwing.
std::string Dump(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

ApiResponse Error(int status, absl::string_view message) {
  return {status, Dump(Json{{"error", message}}), ""};
}

ApiResponse Ok(const Json& body) { return {200, Dump(body), ""}; }

ApiResponse NoContent() { return {204, "", ""}; }

// Time as fractional seconds, for JSON.
double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

Json ConfigJson(const VmConfig& config) {
  Json json = {
      {"kernel", config.kernel_path},
      {"initrd", config.initrd_path},
      {"cmdline", config.cmdline},
      {"memory_bytes", config.memory_bytes},
      {"cpus", config.cpus},
      {"acpi", config.acpi},
      {"shutdown_grace_seconds", Seconds(config.shutdown_grace)},
      {"on_reboot", config.on_reboot == VmConfig::RebootAction::kRestart ? "restart" : "exit"},
  };
  json["timeout_seconds"] = config.timeout == absl::InfiniteDuration()
                                ? Json(nullptr)
                                : Json(Seconds(config.timeout));
  return json;
}

Json InfoJson(const Vm& vm) {
  const VmStats stats = vm.stats();
  const bool booted = stats.first_kvm_run != absl::UnixEpoch();
  Json devices = Json::array();
  for (const DeviceInfo& device : vm.devices()) {
    devices.push_back({{"kind", device.kind},
                       {"transport", device.transport},
                       {"address", device.address},
                       {"active", device.active},
                       {"needs_reset", device.needs_reset},
                       {"needs_reset_reason", device.needs_reset_reason}});
  }
  return {
      {"state", std::string(VmStateName(vm.state()))},
      {"uptime_seconds", booted ? Seconds(absl::Now() - stats.first_kvm_run) : 0.0},
      {"paused_seconds", Seconds(stats.paused)},
      {"vcpus", vm.config().cpus},
      {"config", ConfigJson(vm.config())},
      {"devices", std::move(devices)},
  };
}

Json CountersJson(const Vm& vm) {
  const VmStats stats = vm.stats();
  Json devices = Json::array();
  for (const DeviceInfo& device : vm.devices()) {
    Json counters = Json::object();
    for (const auto& [name, value] : device.counters) counters[name] = value;
    devices.push_back({{"kind", device.kind},
                       {"transport", device.transport},
                       {"address", device.address},
                       {"counters", std::move(counters)}});
  }
  return {
      {"vm",
       {
           {"pio_exits", stats.pio_exits},
           {"mmio_exits", stats.mmio_exits},
           {"virtio_notify_exits", stats.virtio_notify_exits},
           {"virtio_needs_reset", stats.virtio_needs_reset},
           {"restarts", stats.restarts},
           {"paused_seconds", Seconds(stats.paused)},
           {"emulation_assists", stats.emulation_assists},
           {"emulation_user_ud", stats.emulation_user_ud},
       }},
      {"devices", std::move(devices)},
  };
}

// An action's result: 204, or 409 saying why the VM's state refused it.
ApiResponse ActionResult(const absl::Status& status) {
  if (status.ok()) return NoContent();
  return Error(409, status.message());
}

absl::Status RequireNotEnded(const Vm& vm) {
  if (vm.state() == VmState::kEnded) return absl::FailedPreconditionError("the VM has ended");
  return absl::OkStatus();
}

struct Endpoint {
  absl::string_view name;    // after /api/v1/
  absl::string_view method;  // the one method it takes
  // The one member its JSON body must have (a string); empty: it takes no
  // body (or "{}").
  absl::string_view parameter;
  ApiResponse (*handle)(Vm& vm, const std::string& argument);
};

// A directory for vm.snapshot: absolute (vmm's working directory is no
// business of the client's), and bounded.
constexpr size_t kMaxPathBytes = 4096;

constexpr std::array<Endpoint, 8> kEndpoints = {{
    {"vmm.ping", "GET", "",
     [](Vm&, const std::string&) { return Ok({{"version", VMM_VERSION}}); }},
    {"vm.info", "GET", "", [](Vm& vm, const std::string&) { return Ok(InfoJson(vm)); }},
    {"vm.counters", "GET", "", [](Vm& vm, const std::string&) { return Ok(CountersJson(vm)); }},
    {"vm.pause", "PUT", "", [](Vm& vm, const std::string&) { return ActionResult(vm.Pause()); }},
    {"vm.resume", "PUT", "",
     [](Vm& vm, const std::string&) { return ActionResult(vm.Resume()); }},
    {"vm.shutdown", "PUT", "",
     [](Vm& vm, const std::string&) {
       absl::Status status = RequireNotEnded(vm);
       if (status.ok()) vm.RequestShutdown();
       return ActionResult(status);
     }},
    {"vm.stop", "PUT", "",
     [](Vm& vm, const std::string&) {
       ApiResponse response = ActionResult(RequireNotEnded(vm));
       // After the answer: the VM's end takes the server with it.
       if (response.status == 204) response.then = [&vm] { vm.RequestStop(); };
       return response;
     }},
    {"vm.snapshot", "PUT", "dir",
     [](Vm& vm, const std::string& dir) {
       if (dir.empty() || dir[0] != '/') {
         return Error(400, "vm.snapshot: \"dir\" must be an absolute path");
       }
       const absl::Status saved = vm.SaveSnapshot(dir);
       if (saved.ok()) return NoContent();
       // The VM's state refused (not paused; a device in use), or the host
       // (the directory): both are the request's to fix.
       return Error(saved.code() == absl::StatusCode::kFailedPrecondition ||
                            saved.code() == absl::StatusCode::kUnimplemented
                        ? 409
                        : 500,
                    saved.message());
     }},
}};

std::string EndpointList() {
  return absl::StrJoin(kEndpoints, ", ", [](std::string* out, const Endpoint& endpoint) {
    absl::StrAppend(out, endpoint.name);
  });
}

// The body: empty, "{}" or (for an endpoint with a parameter) an object
// with just that member, a string, which goes to *argument.
std::optional<ApiResponse> CheckBody(const Endpoint& endpoint, const std::string& body,
                                     std::string* argument) {
  const bool blank = body.find_first_not_of(" \t\r\n") == std::string::npos;
  if (blank && endpoint.parameter.empty()) return std::nullopt;
  const Json json = blank ? Json::object() : Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return Error(400, "the request body is not valid JSON");
  if (endpoint.parameter.empty()) {
    if (!json.is_object() || !json.empty()) {
      return Error(400,
                   absl::StrCat(endpoint.name, " takes no parameters (send no body, or {})"));
    }
    return std::nullopt;
  }
  const std::string parameter(endpoint.parameter);
  if (!json.is_object() || json.size() != 1 || !json.contains(parameter) ||
      !json[parameter].is_string()) {
    return Error(400, absl::StrCat(endpoint.name, " takes {\"", parameter, "\": \"...\"}"));
  }
  *argument = json[parameter].get<std::string>();
  if (argument->size() > kMaxPathBytes) {
    return Error(400, absl::StrCat(endpoint.name, ": \"", parameter, "\" is longer than ",
                                   kMaxPathBytes, " bytes"));
  }
  return std::nullopt;
}

}  // namespace

ApiResponse HandleVmRequest(Vm& vm, const ApiRequest& request) {
  absl::string_view path = request.path;
  if (!absl::StartsWith(path, kPrefix)) {
    // Quoted back only in part: the path is the client's.
    return Error(404, absl::StrCat("no endpoint at '", path.substr(0, 64),
                                   path.size() > 64 ? "...' " : "' ", "(the API is under ",
                                   kPrefix, ")"));
  }
  path.remove_prefix(kPrefix.size());
  for (const Endpoint& endpoint : kEndpoints) {
    if (endpoint.name != path) continue;
    if (request.method != endpoint.method) {
      ApiResponse response = Error(
          405, absl::StrCat(endpoint.name, " takes ", endpoint.method, ", not ", request.method));
      response.allow = std::string(endpoint.method);
      return response;
    }
    std::string argument;
    if (std::optional<ApiResponse> bad = CheckBody(endpoint, request.body, &argument)) {
      return *bad;
    }
    return endpoint.handle(vm, argument);
  }
  return Error(404, absl::StrCat("no endpoint '", path.substr(0, 64), path.size() > 64 ? "...'" : "'",
                                 " (endpoints: ", EndpointList(), ")"));
}

}  // namespace vmm
