/* vmm's C API: run microVMs from C, or from Go (cgo), Rust, Python (ctypes)
 * and anything else that calls C. A thin layer over the C++ API (vmm/vmm.h):
 * the same VMs, configured with the `vmm` command's own options.
 *
 *   vmm_config* config = vmm_config_new();
 *   const char* args[] = {"--kernel", "bzImage", "--memory", "256M",
 *                         "--disk", "path=root.img"};
 *   char* error = NULL;
 *   vmm_vm* vm = NULL;
 *   if (vmm_config_set_args(config, args, 6, &error) != VMM_OK ||
 *       vmm_vm_create(config, &vm, &error) != VMM_OK) {
 *     fprintf(stderr, "%s\n", error);
 *     vmm_string_free(error);
 *   } else {
 *     int code = vmm_vm_run(vm);   // as `vmm` would exit
 *     vmm_vm_free(vm);
 *   }
 *   vmm_config_free(config);
 *
 * Errors: a function that can fail returns a vmm_result (VMM_OK is 0) and,
 * when `error` is not NULL, stores a one-line message there that the caller
 * frees with vmm_string_free. Handles are not thread-safe except where a
 * function says so (vmm_vm_request_stop). Link with `pkg-config --libs vmm`.
 */
#ifndef VMM_VMM_VMM_C_H_
#define VMM_VMM_VMM_C_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The canonical status codes (abseil's, gRPC's): a binding can map them. */
typedef enum vmm_result {
  VMM_OK = 0,
  VMM_CANCELLED = 1,          /* start-up cut short (vmm_vm_request_stop) */
  VMM_UNKNOWN = 2,
  VMM_INVALID_ARGUMENT = 3,   /* a bad option or value: the caller's to fix */
  VMM_DEADLINE_EXCEEDED = 4,  /* a back-end did not answer in time */
  VMM_NOT_FOUND = 5,          /* a file named in the options is missing */
  VMM_ALREADY_EXISTS = 6,
  VMM_PERMISSION_DENIED = 7,
  VMM_RESOURCE_EXHAUSTED = 8,
  VMM_FAILED_PRECONDITION = 9,
  VMM_ABORTED = 10,
  VMM_OUT_OF_RANGE = 11,
  VMM_UNIMPLEMENTED = 12,
  VMM_INTERNAL = 13,
  VMM_UNAVAILABLE = 14,       /* the host: no /dev/kvm, no permission to it */
  VMM_DATA_LOSS = 15,
} vmm_result;

/* How a run ended (vmm_vm_exit_reason). */
typedef enum vmm_exit_reason {
  VMM_EXIT_NONE = 0,        /* not run yet */
  VMM_EXIT_POWER_OFF = 1,
  VMM_EXIT_RESET = 2,
  VMM_EXIT_DEBUG_EXIT = 3,  /* the guest wrote to the debug-exit port */
  VMM_EXIT_GUEST_PANIC = 4,
  VMM_EXIT_TIMEOUT = 5,     /* --timeout elapsed */
  VMM_EXIT_STOPPED = 6,     /* vmm_vm_request_stop */
  VMM_EXIT_ERROR = 7,       /* the VMM failed; vmm_vm_exit_message says why */
} vmm_exit_reason;

/* What a VM is doing (vmm_vm_state). */
typedef enum vmm_state {
  VMM_STATE_CREATED = 0,  /* vmm_vm_run not called yet */
  VMM_STATE_RUNNING = 1,
  VMM_STATE_PAUSED = 2,
  VMM_STATE_ENDED = 3,
} vmm_state;

/* What happened (vmm_config_set_event_callback). */
typedef enum vmm_event_kind {
  VMM_EVENT_STATE_CHANGED = 1,       /* `state` is the new one; `detail` says how it ended */
  VMM_EVENT_GUEST_PANIC = 2,         /* the guest kernel panicked; the VM ends */
  VMM_EVENT_DEVICE_NEEDS_RESET = 3,  /* `device` needs a reset (`detail`: why); the VM runs on */
} vmm_event_kind;

typedef struct vmm_config vmm_config;
typedef struct vmm_vm vmm_vm;

/* The library's version, "MAJOR.MINOR.PATCH". */
const char* vmm_version(void);

/* Frees a message a function stored in its `error` argument. NULL is fine. */
void vmm_string_free(char* string);

/* A configuration with vmm's defaults and no kernel yet. NULL only when out
 * of memory. */
vmm_config* vmm_config_new(void);
/* NULL is fine. */
void vmm_config_free(vmm_config* config);

/* Sets the configuration from options in the `vmm` command's syntax
 * (`vmm --help`, `vmm --device help`), without the program's name: every
 * call starts again from the defaults. The command's own options (--help,
 * --version, --device help, --stats) are refused. On error the
 * configuration is left as it was. */
vmm_result vmm_config_set_args(vmm_config* config, const char* const* args, size_t count,
                               char** error);

/* The guest's serial console (COM1) goes to `output` instead of the
 * options' --serial: it is called from the VM's vCPU threads with the bytes
 * as the guest writes them. NULL `output` turns the callback off again. */
typedef void (*vmm_output_fn)(void* user_data, const char* bytes, size_t length);
void vmm_config_set_serial_output(vmm_config* config, vmm_output_fn output, void* user_data);

/* Called for each event while the VM runs, one at a time, on the thread
 * that caused it (vmm_vm_run's, or the caller of vmm_vm_pause/resume);
 * `device` and `detail` are "" when they say nothing and valid during the
 * call only. It may call the vmm_vm_* functions but should not block for
 * long. NULL turns it off again. */
typedef void (*vmm_event_fn)(void* user_data, vmm_event_kind kind, vmm_state state,
                             const char* device, const char* detail);
void vmm_config_set_event_callback(vmm_config* config, vmm_event_fn callback, void* user_data);

/* Builds the VM `config` describes (loads the kernel, creates the devices);
 * `config` may be freed or reused afterwards. On success *vm is a new VM
 * that vmm_vm_free releases. */
vmm_result vmm_vm_create(const vmm_config* config, vmm_vm** vm, char** error);

/* Runs the guest until it ends and returns the exit code the `vmm` command
 * would exit with (README.md, "Exit status"): 0 for a power-off, 124 for a
 * timeout, 130 when stopped, and so on. Once per VM; a second call returns
 * 1 (with VMM_EXIT_ERROR). */
int vmm_vm_run(vmm_vm* vm);

/* Asks a running guest to stop (vmm_vm_run then returns 130). Safe from any
 * thread, also before vmm_vm_run (which then returns at once). */
void vmm_vm_request_stop(vmm_vm* vm);

/* Asks the guest's OS to shut down (its ACPI power button), stopping it if
 * it has not powered off within --shutdown-grace (vmm_vm_run then returns
 * 124). Safe from any thread. */
void vmm_vm_request_shutdown(vmm_vm* vm);

/* Pauses a running guest (its vCPUs and the devices vmm runs stand still,
 * its clock and timeout too) and lets it go on; VMM_FAILED_PRECONDITION when
 * it is not running, or (not) paused. Safe from any thread. */
vmm_result vmm_vm_pause(vmm_vm* vm, char** error);
vmm_result vmm_vm_resume(vmm_vm* vm, char** error);

/* Saves a paused guest into the directory `dir` (created if missing): a
 * state file and its memory, which `--restore DIR` (vmm_config_set_args)
 * starts a new VM from, with the same memory size, vCPUs and devices.
 * VMM_FAILED_PRECONDITION when the VM is not paused; VMM_UNIMPLEMENTED for
 * a device whose state lives outside vmm (vhost, vhost-user), named in
 * *error. Safe from any thread. */
vmm_result vmm_vm_snapshot(vmm_vm* vm, const char* dir, char** error);

/* Input for the guest's serial console (COM1), as if typed; needs
 * vmm_config_set_serial_output (VMM_FAILED_PRECONDITION otherwise). Stores
 * in *taken how many of the `length` bytes were taken: up to 64 KiB wait
 * for the guest to read them, beyond that fewer (0 when full): send the rest
 * later. Safe from any thread. */
vmm_result vmm_vm_send_console_input(vmm_vm* vm, const char* bytes, size_t length,
                                     size_t* taken, char** error);

/* The VM's state now. Safe from any thread. */
vmm_state vmm_vm_state(const vmm_vm* vm);

/* How the last vmm_vm_run ended, and in words (owned by `vm`, valid until
 * it is freed; "" when there is nothing to say). */
vmm_exit_reason vmm_vm_exit_reason(const vmm_vm* vm);
const char* vmm_vm_exit_message(const vmm_vm* vm);

/* Releases the VM (not while vmm_vm_run runs). NULL is fine. */
void vmm_vm_free(vmm_vm* vm);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif  /* VMM_VMM_VMM_C_H_ */
