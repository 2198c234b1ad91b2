// The C API (vmm_c.h) over the C++ one: handles own C++ objects; options are
// parsed by the command's own parser (vmm/cli.h); every C++ error becomes a
// canonical code and a one-line message.
#include "vmm/vmm_c.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "vmm/cli.h"
#include "vmm/vmm.h"

struct vmm_config {
  vmm::VmConfig config;
  vmm_output_fn output = nullptr;
  void* output_data = nullptr;
  vmm_event_fn on_event = nullptr;
  void* event_data = nullptr;
};

struct vmm_vm {
  std::unique_ptr<vmm::Vm> vm;
  absl::Mutex mu;
  bool ran ABSL_GUARDED_BY(mu) = false;
  vmm::ExitStatus exit;      // written by vmm_vm_run only
  bool exited = false;       // likewise
};

namespace {

vmm_result Fail(const absl::Status& status, char** error) {
  if (error != nullptr) {
    const std::string line = vmm::cli::OneLine(status);
    *error = static_cast<char*>(std::malloc(line.size() + 1));
    if (*error != nullptr) std::memcpy(*error, line.c_str(), line.size() + 1);
  }
  return static_cast<vmm_result>(status.code());
}

vmm_exit_reason ReasonOf(vmm::ExitStatus::Reason reason) {
  using R = vmm::ExitStatus::Reason;
  switch (reason) {
    case R::kPowerOff: return VMM_EXIT_POWER_OFF;
    case R::kReset: return VMM_EXIT_RESET;
    case R::kDebugExit: return VMM_EXIT_DEBUG_EXIT;
    case R::kGuestPanic: return VMM_EXIT_GUEST_PANIC;
    case R::kTimeout: return VMM_EXIT_TIMEOUT;
    case R::kStopped: return VMM_EXIT_STOPPED;
    case R::kError: return VMM_EXIT_ERROR;
  }
  return VMM_EXIT_ERROR;
}

}  // namespace

extern "C" {

const char* vmm_version(void) { return VMM_VERSION; }

void vmm_string_free(char* string) { std::free(string); }

vmm_config* vmm_config_new(void) { return new (std::nothrow) vmm_config; }

void vmm_config_free(vmm_config* config) { delete config; }

vmm_result vmm_config_set_args(vmm_config* config, const char* const* args, size_t count,
                               char** error) {
  if (config == nullptr || (args == nullptr && count > 0)) {
    return Fail(absl::InvalidArgumentError("vmm_config_set_args: null config or args"), error);
  }
  std::vector<std::string> storage = {"vmm"};
  for (size_t i = 0; i < count; ++i) {
    if (args[i] == nullptr) {
      return Fail(absl::InvalidArgumentError("vmm_config_set_args: a null option"), error);
    }
    storage.emplace_back(args[i]);
  }
  std::vector<char*> argv;
  for (std::string& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  absl::StatusOr<vmm::cli::CliRequest> request =
      vmm::cli::ParseCommandLine(static_cast<int>(storage.size()), argv.data());
  if (!request.ok()) return Fail(request.status(), error);
  if (request->action != vmm::cli::CliRequest::Action::kRun || request->print_stats) {
    return Fail(absl::InvalidArgumentError(
                    "--help, --version, --device help and --stats are the vmm command's; "
                    "a library VM takes only VM options"),
                error);
  }
  config->config = std::move(request->config);
  return VMM_OK;
}

void vmm_config_set_serial_output(vmm_config* config, vmm_output_fn output, void* user_data) {
  if (config == nullptr) return;
  config->output = output;
  config->output_data = user_data;
}

void vmm_config_set_event_callback(vmm_config* config, vmm_event_fn callback, void* user_data) {
  if (config == nullptr) return;
  config->on_event = callback;
  config->event_data = user_data;
}

namespace {

vmm_state StateOf(vmm::VmState state) {
  switch (state) {
    case vmm::VmState::kCreated: return VMM_STATE_CREATED;
    case vmm::VmState::kRunning: return VMM_STATE_RUNNING;
    case vmm::VmState::kPaused: return VMM_STATE_PAUSED;
    case vmm::VmState::kEnded: return VMM_STATE_ENDED;
  }
  return VMM_STATE_ENDED;
}

vmm_event_kind EventKindOf(vmm::VmEvent::Kind kind) {
  switch (kind) {
    case vmm::VmEvent::Kind::kStateChanged: return VMM_EVENT_STATE_CHANGED;
    case vmm::VmEvent::Kind::kGuestPanic: return VMM_EVENT_GUEST_PANIC;
    case vmm::VmEvent::Kind::kDeviceNeedsReset: return VMM_EVENT_DEVICE_NEEDS_RESET;
  }
  return VMM_EVENT_STATE_CHANGED;
}

}  // namespace

vmm_state vmm_vm_state(const vmm_vm* vm) {
  return vm == nullptr ? VMM_STATE_ENDED : StateOf(vm->vm->state());
}

vmm_result vmm_vm_create(const vmm_config* config, vmm_vm** vm, char** error) {
  if (config == nullptr || vm == nullptr) {
    return Fail(absl::InvalidArgumentError("vmm_vm_create: null config or vm"), error);
  }
  vmm::VmConfig copy = config->config;
  if (config->output != nullptr) {
    copy.serial.mode = vmm::SerialConfig::Mode::kCallback;
    copy.serial.sink = [output = config->output, data = config->output_data](
                           std::string_view bytes) { output(data, bytes.data(), bytes.size()); };
  }
  if (config->on_event != nullptr) {
    copy.on_event = [on_event = config->on_event,
                     data = config->event_data](const vmm::VmEvent& event) {
      on_event(data, EventKindOf(event.kind), StateOf(event.state), event.device.c_str(),
               event.detail.c_str());
    };
  }
  auto handle = std::unique_ptr<vmm_vm>(new (std::nothrow) vmm_vm);
  if (handle == nullptr) return Fail(absl::ResourceExhaustedError("out of memory"), error);
  absl::StatusOr<std::unique_ptr<vmm::Vm>> created = vmm::Vm::Create(std::move(copy));
  if (!created.ok()) return Fail(created.status(), error);
  handle->vm = *std::move(created);
  *vm = handle.release();
  return VMM_OK;
}

int vmm_vm_run(vmm_vm* vm) {
  if (vm == nullptr) return 1;
  {
    absl::MutexLock lock(&vm->mu);
    if (vm->ran) {
      vm->exit = vmm::ExitStatus{.reason = vmm::ExitStatus::Reason::kError,
                                 .message = "vmm_vm_run: this VM has already run"};
      vm->exited = true;
      return vm->exit.ProcessExitCode();
    }
    vm->ran = true;
  }
  vm->exit = vm->vm->Run();
  vm->exited = true;
  return vm->exit.ProcessExitCode();
}

void vmm_vm_request_stop(vmm_vm* vm) {
  if (vm != nullptr) vm->vm->RequestStop();
}

void vmm_vm_request_shutdown(vmm_vm* vm) {
  if (vm != nullptr) vm->vm->RequestShutdown();
}

vmm_result vmm_vm_pause(vmm_vm* vm, char** error) {
  if (vm == nullptr) return Fail(absl::InvalidArgumentError("vmm_vm_pause: null vm"), error);
  const absl::Status status = vm->vm->Pause();
  return status.ok() ? VMM_OK : Fail(status, error);
}

vmm_result vmm_vm_resume(vmm_vm* vm, char** error) {
  if (vm == nullptr) return Fail(absl::InvalidArgumentError("vmm_vm_resume: null vm"), error);
  const absl::Status status = vm->vm->Resume();
  return status.ok() ? VMM_OK : Fail(status, error);
}

vmm_result vmm_vm_snapshot(vmm_vm* vm, const char* dir, char** error) {
  if (vm == nullptr || dir == nullptr || *dir == '\0') {
    return Fail(absl::InvalidArgumentError("vmm_vm_snapshot: null vm or empty directory"), error);
  }
  const absl::Status status = vm->vm->SaveSnapshot(dir);
  return status.ok() ? VMM_OK : Fail(status, error);
}

vmm_result vmm_vm_send_console_input(vmm_vm* vm, const char* bytes, size_t length,
                                     size_t* taken, char** error) {
  if (taken != nullptr) *taken = 0;
  if (vm == nullptr || (bytes == nullptr && length > 0)) {
    return Fail(absl::InvalidArgumentError("vmm_vm_send_console_input: null vm or bytes"), error);
  }
  absl::StatusOr<size_t> sent =
      vm->vm->SendConsoleInput(std::string_view(bytes == nullptr ? "" : bytes, length));
  if (!sent.ok()) return Fail(sent.status(), error);
  if (taken != nullptr) *taken = *sent;
  return VMM_OK;
}

vmm_exit_reason vmm_vm_exit_reason(const vmm_vm* vm) {
  return vm == nullptr || !vm->exited ? VMM_EXIT_NONE : ReasonOf(vm->exit.reason);
}

const char* vmm_vm_exit_message(const vmm_vm* vm) {
  return vm == nullptr || !vm->exited ? "" : vm->exit.message.c_str();
}

void vmm_vm_free(vmm_vm* vm) { delete vm; }

}  // extern "C"
