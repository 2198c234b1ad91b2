// How a Linux guest's user space enters its kernel, set up exactly as Linux
// sets it up: Linux's GDT layout (kernel CS 0x10, user CS 0x33, TSS 0x40),
// STAR/LSTAR/SFMASK and EFER.SCE, the kernel on supervisor-only pages, user
// code and stack on a user page. The command line picks the path tried
// from ring 3:
//   path=syscall (default): SYSCALL, SYSRETQ back, SYSCALL again;
//   path=int80: INT 0x80 through a DPL-3 interrupt gate (Linux's 32-bit
//     ABI entry), IRETQ back, twice more.
// On hardware KVM both run natively. On a PVM host the guest's ring 3 runs
// natively too, and how the host delivers each entry is what this guest
// checks (tests/linux/pvm/BOOT_LOG.md, stop 10).
//
// Output: "syscall: <check> ok|FAIL" lines, then "syscall: all ok" and
// debug-exit 0. The two ways this fails on PVM hosts are named: "syscall:
// SYSCALL entered LSTAR at CPL 3" (the host left CS/SS at the user's) and
// "syscall: INT 0x80 from ring 3 raised #UD"; both exit GUEST_EXIT_FAILURE.
#include <stdint.h>

#include "runtime/guest.h"
#include "runtime/io.h"

#define MSR_EFER 0xc0000080u
#define MSR_STAR 0xc0000081u
#define MSR_LSTAR 0xc0000082u
#define MSR_SFMASK 0xc0000084u
#define EFER_SCE 0x1u

// Linux's selectors (arch/x86/include/asm/segment.h, 64-bit).
#define KERNEL_CS 0x10
#define KERNEL_DS 0x18
#define USER32_CS 0x23
#define USER_DS 0x2b
#define USER_CS 0x33
#define TSS_SEL 0x40

#define RFLAGS_TF 0x100u
#define RFLAGS_IF 0x200u
#define RFLAGS_DF 0x400u
#define SFMASK_LINUX 0x47700u  // TF DF IF IOPL NT AC, as Linux masks them

// The only user-accessible 2 MiB page: code at its start, stack at its end.
#define USER_PAGE 0x1000000ul
#define PTE_USER 0x4ul

static uint64_t gdt[10] __attribute__((aligned(16))) = {
    0,
    0x00cf9a000000ffffull,  // 0x08 kernel code32
    0x00af9a000000ffffull,  // 0x10 kernel code64
    0x00cf92000000ffffull,  // 0x18 kernel data
    0x00cffa000000ffffull,  // 0x20 user code32
    0x00cff2000000ffffull,  // 0x28 user data
    0x00affa000000ffffull,  // 0x30 user code64
    0,                      // 0x38 unused (Linux: the CPU-number segment)
    0, 0,                   // 0x40 TSS, filled in below
};

struct __attribute__((packed)) tss64 {
  uint32_t reserved0;
  uint64_t rsp[3];
  uint64_t reserved1;
  uint64_t ist[7];
  uint64_t reserved2;
  uint16_t reserved3;
  uint16_t iomap_base;
};
static struct tss64 tss;
static uint8_t ring0_stack[8192] __attribute__((aligned(16)));

struct idt_gate {
  uint16_t offset_low, selector;
  uint8_t ist, type;
  uint16_t offset_mid;
  uint32_t offset_high, reserved;
};
static struct idt_gate idt[256] __attribute__((aligned(16)));

// What each kernel entry saw, in order.
struct entry_record {
  uint64_t how;  // 0x80 or 'S' (SYSCALL)
  uint64_t nr;   // the caller's RAX
  uint64_t cs, ss, rflags;
  uint64_t rcx, r11;  // SYSCALL: the user's RIP and RFLAGS
};
#define MAX_RECORDS 4
static struct entry_record records[MAX_RECORDS];
static int record_count;
uint64_t syscall_saved_user_rsp;
uint64_t syscall_kernel_stack_top;

static uint64_t rdmsr(uint32_t msr) {
  uint32_t lo, hi;
  __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
  return ((uint64_t)hi << 32) | lo;
}

static void wrmsr(uint32_t msr, uint64_t v) {
  __asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

void entry_finish(void);

// Called by both entry stubs on the ring-0 stack. Returns whether to go
// back to ring 3 (the finishing call never returns).
void entry_record(uint64_t how, uint64_t nr, uint64_t rcx, uint64_t r11) {
  uint64_t cs, ss, rflags;
  __asm__ volatile("mov %%cs, %0; mov %%ss, %1; pushfq; pop %2"
                   : "=r"(cs), "=r"(ss), "=r"(rflags));
  if (record_count < MAX_RECORDS) {
    struct entry_record* r = &records[record_count++];
    r->how = how;
    r->nr = nr;
    r->cs = cs;
    r->ss = ss;
    r->rflags = rflags;
    r->rcx = rcx;
    r->r11 = r11;
  }
  if (nr == 99) entry_finish();
}

__asm__(
    ".pushsection .text\n"
    // LSTAR: Linux's entry switches stacks by hand too.
    ".globl syscall_entry\n"
    "syscall_entry:\n"
    "  mov %rsp, syscall_saved_user_rsp(%rip)\n"
    "  mov syscall_kernel_stack_top(%rip), %rsp\n"
    "  push %rcx\n"
    "  push %r11\n"
    "  mov %rcx, %rdx\n"
    "  mov %r11, %rcx\n"
    "  mov %rax, %rsi\n"
    "  mov $0x53, %edi\n"
    "  call entry_record\n"
    "  pop %r11\n"
    "  pop %rcx\n"
    "  mov syscall_saved_user_rsp(%rip), %rsp\n"
    "  sysretq\n"
    // Vector 0x80: the CPU switched to TSS.RSP0 and pushed the frame.
    ".globl int80_entry\n"
    "int80_entry:\n"
    "  push %rax\n"
    "  push %rcx\n"
    "  push %rdx\n"
    "  push %rsi\n"
    "  push %rdi\n"
    "  push %r8\n"
    "  push %r9\n"
    "  push %r10\n"
    "  push %r11\n"
    "  mov %rax, %rsi\n"
    "  mov $0x80, %edi\n"
    "  xor %edx, %edx\n"
    "  xor %ecx, %ecx\n"
    "  call entry_record\n"
    "  pop %r11\n"
    "  pop %r10\n"
    "  pop %r9\n"
    "  pop %r8\n"
    "  pop %rdi\n"
    "  pop %rsi\n"
    "  pop %rdx\n"
    "  pop %rcx\n"
    "  pop %rax\n"
    "  iretq\n"
    // #PF: recognises a SYSCALL that reached LSTAR at CPL 3; anything else
    // goes to the runtime's report.
    ".globl invalid_opcode_entry\n"
    "invalid_opcode_entry:\n"
    "  mov %rsp, %rdi\n"
    "  and $-16, %rsp\n"
    "  call invalid_opcode\n"
    "1: hlt\n"
    "  jmp 1b\n"
    ".globl page_fault_entry\n"
    "page_fault_entry:\n"
    "  mov %rsp, %rdi\n"
    "  and $-16, %rsp\n"
    "  call page_fault\n"
    "1: hlt\n"
    "  jmp 1b\n"
    ".popsection\n");
void syscall_entry(void);
void int80_entry(void);
void page_fault_entry(void);
void invalid_opcode_entry(void);

// Ring-3 code for each path, copied to USER_PAGE. 99 ends the test.
__asm__(
    ".pushsection .rodata\n"
    "user_syscall:\n"
    "  mov $1, %eax\n"
    "  syscall\n"  // returns to user_syscall + 7
    "  mov $99, %eax\n"
    "  syscall\n"
    "1: jmp 1b\n"
    "user_syscall_end:\n"
    "user_int80:\n"
    "  mov $1, %eax\n"
    "  int $0x80\n"
    "  mov $2, %eax\n"
    "  int $0x80\n"
    "  mov $99, %eax\n"
    "  int $0x80\n"
    "1: jmp 1b\n"
    "user_int80_end:\n"
    ".popsection\n");
extern const uint8_t user_syscall[], user_syscall_end[], user_int80[], user_int80_end[];
#define USER_SYSCALL_RETURN (USER_PAGE + 7)
static bool int80_path;

static int failures;

static void check(const char* what, uint64_t got, uint64_t want) {
  if (got == want) {
    console_printf("syscall: %s ok\n", what);
  } else {
    console_printf("syscall: %s FAIL: got 0x%lx, want 0x%lx\n", what, (unsigned long)got,
                   (unsigned long)want);
    ++failures;
  }
}

static void print_records(void) {
  for (int i = 0; i < record_count; ++i) {
    const struct entry_record* r = &records[i];
    console_printf("syscall: entry %d: %s nr %lu cs 0x%lx ss 0x%lx rflags 0x%lx rcx 0x%lx r11 0x%lx\n",
                   i + 1, r->how == 0x80 ? "int80" : "syscall", (unsigned long)r->nr,
                   (unsigned long)r->cs, (unsigned long)r->ss, (unsigned long)r->rflags,
                   (unsigned long)r->rcx, (unsigned long)r->r11);
  }
}

static void check_int80(int i, uint64_t nr) {
  check("int 0x80 number", records[i].nr, nr);
  check("int 0x80 runs at kernel cs", records[i].cs, KERNEL_CS);
  check("int 0x80 clears IF (interrupt gate)", records[i].rflags & RFLAGS_IF, 0);
}

void entry_finish(void) {
  print_records();
  check("entries seen", record_count, int80_path ? 3 : 2);
  if (int80_path) {
    check_int80(0, 1);
    check_int80(1, 2);   // IRETQ went back to ring 3
    check_int80(2, 99);  // and again
  } else {
    check("syscall number", records[0].nr, 1);
    check("syscall runs at kernel cs", records[0].cs, KERNEL_CS);
    check("syscall runs at kernel ss", records[0].ss, KERNEL_DS);
    check("sfmask cleared IF, DF and TF",
          records[0].rflags & (RFLAGS_IF | RFLAGS_DF | RFLAGS_TF), 0);
    check("rcx holds the user's return address", records[0].rcx, USER_SYSCALL_RETURN);
    check("r11 holds the user's flags (IF set)", records[0].r11 & RFLAGS_IF, RFLAGS_IF);
    check("second syscall (SYSRETQ went back to ring 3)", records[1].nr, 99);
    check("second syscall runs at kernel cs", records[1].cs, KERNEL_CS);
  }
  if (failures) guest_debug_exit(GUEST_EXIT_FAILURE);
  console_puts("syscall: all ok\n");
  guest_debug_exit(0);
}

struct fault_frame {
  uint64_t error_code, rip, cs, rflags, rsp, ss;
};

void page_fault(const struct fault_frame* f) {
  uint64_t cr2;
  __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
  print_records();
  if (f->rip == rdmsr(MSR_LSTAR) && (f->cs & 3) == 3) {
    console_printf(
        "syscall: SYSCALL entered LSTAR at CPL 3 (cs 0x%lx ss 0x%lx rsp 0x%lx, page fault "
        "error 0x%lx fetching 0x%lx)\n",
        (unsigned long)f->cs, (unsigned long)f->ss, (unsigned long)f->rsp,
        (unsigned long)f->error_code, (unsigned long)cr2);
    guest_debug_exit(GUEST_EXIT_FAILURE);
  }
  console_printf("syscall: unexpected page fault: error 0x%lx rip 0x%lx cs 0x%lx cr2 0x%lx\n",
                 (unsigned long)f->error_code, (unsigned long)f->rip, (unsigned long)f->cs,
                 (unsigned long)cr2);
  guest_debug_exit(GUEST_EXIT_EXCEPTION);
}

struct ud_frame {
  uint64_t rip, cs, rflags, rsp, ss;
};

void invalid_opcode(const struct ud_frame* f) {
  print_records();
  const uint8_t* insn = (const uint8_t*)f->rip;
  if ((f->cs & 3) == 3 && insn[0] == 0xcd && insn[1] == 0x80) {
    console_printf("syscall: INT 0x80 from ring 3 raised #UD (rip 0x%lx cs 0x%lx)\n",
                   (unsigned long)f->rip, (unsigned long)f->cs);
    guest_debug_exit(GUEST_EXIT_FAILURE);
  }
  console_printf("syscall: unexpected #UD at rip 0x%lx cs 0x%lx\n", (unsigned long)f->rip,
                 (unsigned long)f->cs);
  guest_debug_exit(GUEST_EXIT_EXCEPTION);
}

static void set_gate(int vector, uint64_t handler, uint8_t type) {
  idt[vector].offset_low = handler & 0xffff;
  idt[vector].selector = KERNEL_CS;
  idt[vector].ist = 0;
  idt[vector].type = type;
  idt[vector].offset_mid = (handler >> 16) & 0xffff;
  idt[vector].offset_high = handler >> 32;
}

struct __attribute__((packed)) table_register {
  uint16_t limit;
  uint64_t base;
};

extern uint64_t pml4[], pdpt[];

void guest_main(const struct hvm_start_info* info) {
  const char* cmdline = pvh_cmdline(info);
  int80_path = cmdline_equals(cmdline, "path", "int80");
  // Linux's GDT and TSS; then the IDT: the runtime's 32 exception gates
  // with Linux's kernel CS, our #PF, and a DPL-3 gate for INT 0x80.
  tss.rsp[0] = (uint64_t)(ring0_stack + sizeof(ring0_stack));
  tss.iomap_base = sizeof(tss);
  uint64_t base = (uint64_t)&tss, limit = sizeof(tss) - 1;
  gdt[8] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
           (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
  gdt[9] = base >> 32;
  struct table_register gdtr = {sizeof(gdt) - 1, (uint64_t)gdt};
  struct table_register old_idtr;
  __asm__ volatile("sidt %0" : "=m"(old_idtr));
  const struct idt_gate* old_idt = (const struct idt_gate*)old_idtr.base;
  for (int v = 0; v < 32; ++v) {
    idt[v] = old_idt[v];
    idt[v].selector = KERNEL_CS;
  }
  set_gate(6, (uint64_t)invalid_opcode_entry, 0x8e);
  set_gate(14, (uint64_t)page_fault_entry, 0x8e);
  set_gate(0x80, (uint64_t)int80_entry, 0xee);  // present, DPL 3, interrupt gate
  struct table_register idtr = {sizeof(idt) - 1, (uint64_t)idt};
  __asm__ volatile(
      "lgdt %0\n"
      "pushq $0x10\n"  // reload CS with Linux's kernel CS
      "lea 1f(%%rip), %%rax\n"
      "pushq %%rax\n"
      "lretq\n"
      "1: mov $0x18, %%eax\n"
      "mov %%eax, %%ss\n"
      "mov %%eax, %%ds\n"
      "mov %%eax, %%es\n"
      "lidt %1\n"
      "ltr %w2\n" ::"m"(gdtr),
      "m"(idtr), "r"(TSS_SEL)
      : "rax", "memory");

  const uint8_t* code = int80_path ? user_int80 : user_syscall;
  const uint8_t* code_end = int80_path ? user_int80_end : user_syscall_end;
  uint8_t* user = (uint8_t*)USER_PAGE;
  for (const uint8_t* p = code; p < code_end; ++p) *user++ = *p;
  uint64_t* pd0 = (uint64_t*)(pdpt[0] & ~0xfffull);
  pml4[0] |= PTE_USER;
  pdpt[0] |= PTE_USER;
  pd0[USER_PAGE >> 21] |= PTE_USER;
  uint64_t cr3;
  __asm__ volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(cr3)::"memory");

  wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
  wrmsr(MSR_STAR, ((uint64_t)USER32_CS << 48) | ((uint64_t)KERNEL_CS << 32));
  wrmsr(MSR_LSTAR, (uint64_t)syscall_entry);
  wrmsr(MSR_SFMASK, SFMASK_LINUX);
  syscall_kernel_stack_top = (uint64_t)(ring0_stack + sizeof(ring0_stack) - 2048);

  console_printf("syscall: entering ring 3 (path %s)\n", int80_path ? "int80" : "syscall");
  // IRETQ to ring 3 with IF set, as Linux's user space runs; no interrupt
  // source is enabled in this guest.
  uint64_t user_rsp = USER_PAGE + (2ul << 20) - 64;
  __asm__ volatile(
      "push %0\n"
      "push %1\n"
      "push %2\n"
      "push %3\n"
      "push %4\n"
      "iretq\n" ::"r"((uint64_t)USER_DS),
      "r"(user_rsp), "r"((uint64_t)(0x2 | RFLAGS_IF)), "r"((uint64_t)USER_CS), "r"(USER_PAGE)
      : "memory");
  __builtin_unreachable();
}
