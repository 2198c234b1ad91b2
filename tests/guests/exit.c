// The smallest guest: leaves through debug-exit at once (value 0: status 1
// under vmm and QEMU alike). bench/run times it exec -> exit against the
// KVM floor (bench/kvm_floor.c), whose guest does just as little.
#include "runtime/exit.h"
#include "runtime/guest.h"

void guest_main(const struct hvm_start_info* info) {
  (void)info;
  guest_debug_exit(0);
}
