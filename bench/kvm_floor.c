// The KVM floor: only what any VMM must do to run a guest, so that bench/run
// can say how far vmm's start-up and exit are from it. Opens /dev/kvm,
// creates a VM with the interrupt controller of the chosen design, maps one
// memory slot, creates one vCPU, runs a real-mode guest that writes port
// 0x501 (debug-exit) and exits 0 — the process exit includes KVM's teardown,
// as a VMM's does.
//
//   kvm_floor [none|split|irqchip|irqchip+pit] [MEMORY_MIB]
//
// none:        no in-kernel interrupt controller.
// split:       KVM_CAP_SPLIT_IRQCHIP: LAPICs in the kernel, IOAPIC and PIC in
//              user space (Cloud Hypervisor's design).
// irqchip:     KVM_CREATE_IRQCHIP: LAPICs, IOAPIC and both PICs in the kernel.
// irqchip+pit: that and KVM_CREATE_PIT2 (vmm's design, Firecracker's and
//              QEMU's default).
// Exit status: 0 when the guest wrote the port, 1 with a line on stderr
// otherwise.
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

static int Fail(const char* what) {
  perror(what);
  return 1;
}

int main(int argc, char** argv) {
  const char* design = argc > 1 ? argv[1] : "irqchip+pit";
  const unsigned long mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 128;
  const int split = strcmp(design, "split") == 0;
  const int irqchip = strncmp(design, "irqchip", 7) == 0;
  const int pit = strcmp(design, "irqchip+pit") == 0;
  if (!split && !irqchip && strcmp(design, "none") != 0) {
    fprintf(stderr, "kvm_floor: unknown design '%s' (none|split|irqchip|irqchip+pit)\n", design);
    return 1;
  }
  if (mib == 0 || mib > 65536) {
    fprintf(stderr, "kvm_floor: memory must be 1..65536 MiB\n");
    return 1;
  }
  const int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) return Fail("/dev/kvm");
  const int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) return Fail("KVM_CREATE_VM");
  // Intel needs the TSS and identity map in guest space; AMD ignores them.
  if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0) return Fail("KVM_SET_TSS_ADDR");
  uint64_t identity = 0xfffbc000ul;
  if (ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0) return Fail("KVM_SET_IDENTITY_MAP_ADDR");
  if (split) {
    struct kvm_enable_cap cap = {.cap = KVM_CAP_SPLIT_IRQCHIP, .args = {24}};
    if (ioctl(vm, KVM_ENABLE_CAP, &cap) < 0) return Fail("KVM_CAP_SPLIT_IRQCHIP");
  }
  if (irqchip && ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) return Fail("KVM_CREATE_IRQCHIP");
  if (pit) {
    struct kvm_pit_config config = {.flags = KVM_PIT_SPEAKER_DUMMY};
    if (ioctl(vm, KVM_CREATE_PIT2, &config) < 0) return Fail("KVM_CREATE_PIT2");
  }
  const size_t size = (size_t)mib << 20;
  uint8_t* ram = mmap(NULL, size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (ram == MAP_FAILED) return Fail("mmap");
  struct kvm_userspace_memory_region region = {
      .slot = 0, .guest_phys_addr = 0, .memory_size = size, .userspace_addr = (uintptr_t)ram};
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) return Fail("KVM_SET_USER_MEMORY_REGION");
  // At 0x1000: mov al, 0; mov dx, 0x501; out dx, al; hlt
  static const uint8_t code[] = {0xb0, 0x00, 0xba, 0x01, 0x05, 0xee, 0xf4};
  memcpy(ram + 0x1000, code, sizeof(code));

  const int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) return Fail("KVM_CREATE_VCPU");
  const int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size < 0) return Fail("KVM_GET_VCPU_MMAP_SIZE");
  struct kvm_run* run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) return Fail("mmap kvm_run");
  struct kvm_sregs sregs;
  if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) return Fail("KVM_GET_SREGS");
  sregs.cs.base = 0;
  sregs.cs.selector = 0;
  if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) return Fail("KVM_SET_SREGS");
  struct kvm_regs regs = {.rip = 0x1000, .rflags = 0x2};
  if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) return Fail("KVM_SET_REGS");
  for (;;) {
    if (ioctl(vcpu, KVM_RUN, 0) < 0) return Fail("KVM_RUN");
    if (run->exit_reason == KVM_EXIT_IO && run->io.port == 0x501) return 0;
    if (run->exit_reason != KVM_EXIT_IO) {
      fprintf(stderr, "kvm_floor: unexpected exit %u\n", run->exit_reason);
      return 1;
    }
  }
}
