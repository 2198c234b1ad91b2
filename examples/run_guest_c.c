/* Runs a guest through the C API and reports how it ended: the same job as
 * run_guest.cc, for programs (and language bindings) that speak C.
 *
 *   run_guest_c KERNEL [VMM OPTIONS...]
 *   run_guest_c build/tests/guests/hello.elf --cmdline exit=3
 *
 * Build it as a user would, against the installed library:
 *   cc run_guest_c.c $(pkg-config --cflags --libs vmm) -o run_guest_c
 */
#include <stdio.h>
#include <stdlib.h>

#include "vmm/vmm_c.h"

/* COM1's bytes, as the guest writes them (called on a vCPU thread). */
static void print_console(void* user_data, const char* bytes, size_t length) {
  size_t* total = user_data;
  *total += length;
  fwrite(bytes, 1, length, stdout);
  fflush(stdout);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s KERNEL [VMM OPTIONS...]\n", argv[0]);
    return 2;
  }
  /* --kernel KERNEL --memory 128M --timeout 60, then the caller's options. */
  const char** args = calloc((size_t)argc + 6, sizeof(char*));
  if (args == NULL) return 1;
  size_t n = 0;
  args[n++] = "--kernel";
  args[n++] = argv[1];
  args[n++] = "--memory";
  args[n++] = "128M";
  args[n++] = "--timeout";
  args[n++] = "60";
  for (int i = 2; i < argc; ++i) args[n++] = argv[i];

  size_t console_bytes = 0;
  char* error = NULL;
  vmm_vm* vm = NULL;
  vmm_config* config = vmm_config_new();
  vmm_result result = config == NULL ? VMM_RESOURCE_EXHAUSTED
                                     : vmm_config_set_args(config, args, n, &error);
  if (result == VMM_OK) {
    vmm_config_set_serial_output(config, print_console, &console_bytes);
    result = vmm_vm_create(config, &vm, &error);
  }
  vmm_config_free(config);
  free(args);
  if (result != VMM_OK) {
    fprintf(stderr, "run_guest_c: %s (code %d)\n", error ? error : "out of memory", (int)result);
    vmm_string_free(error);
    return 1;
  }
  int code = vmm_vm_run(vm);
  const char* message = vmm_vm_exit_message(vm);
  printf("\nrun_guest_c: vmm %s; guest wrote %zu console bytes; exit code %d%s%s\n",
         vmm_version(), console_bytes, code, message[0] ? ": " : "", message);
  vmm_vm_free(vm);
  return code;
}
