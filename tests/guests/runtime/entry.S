/*
 * Boot path of the test guests.
 *
 * The BSP enters at pvh_entry in 32-bit flat protected mode with paging off
 * (Xen PVH ABI, EBX = struct hvm_start_info). APs enter at ap_trampoline in
 * real mode (copied to AP_TRAMPOLINE_PADDR by smp.c) and join at
 * ap_entry32. Both switch to long mode over the static identity page
 * tables in page_tables.S.
 *
 * Code for each CPU mode sits in its own section (.text16, .text32, .text)
 * so check_disassembly.py can decode each in the right mode.
 */

#define GDT_CODE32 0x08
#define GDT_DATA 0x10
#define GDT_CODE64 0x18

#define CR0_PE 0x00000001
#define CR0_ET 0x00000010
#define CR0_PG 0x80000000
#define CR4_PAE 0x00000020
#define MSR_EFER 0xc0000080
#define EFER_LME 0x00000100

#define BOOT_STACK_SIZE 0x4000
#define AP_STACK_SIZE 0x1000
#define AP_STACK_COUNT 32 /* MP_MAX_CPUS */

/* The PVH note: XEN_ELFNOTE_PHYS32_ENTRY (18), owner "Xen". The descriptor
 * is 8 bytes (the 32-bit entry zero-extended) as in Linux's vmlinux: QEMU
 * reads 8 bytes from ELF64 notes. */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4                 /* namesz */
	.long 8                 /* descsz */
	.long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.balign 4
	.quad pvh_entry
	.balign 4

/* Flat GDT shared by every CPU and mode. */
	.section .rodata.gdt, "a"
	.balign 16
	.globl gdt
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff        /* 0x08: 32-bit code */
	.quad 0x00cf92000000ffff        /* 0x10: data */
	.quad 0x00af9a000000ffff        /* 0x18: 64-bit code */
gdt_end:
	.balign 8
	.word 0
gdt_descriptor:
	.word gdt_end - gdt - 1
	.long gdt

/* Enables PAE paging and long mode; ends with paging on in compatibility
 * mode. Clobbers eax, ecx, edx. */
.macro ENTER_LONG_MODE
	mov %cr4, %eax
	or $CR4_PAE, %eax
	mov %eax, %cr4
	mov $pml4, %eax
	mov %eax, %cr3
	mov $MSR_EFER, %ecx
	rdmsr
	or $EFER_LME, %eax
	wrmsr
	/* Also clears CD/NW, which INIT leaves set on APs. */
	mov $(CR0_PG | CR0_ET | CR0_PE), %eax
	mov %eax, %cr0
.endm

.macro LOAD_DATA_SEGMENTS
	mov $GDT_DATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs
.endm

	.section .text32, "ax"
	.code32
	.globl pvh_entry
pvh_entry:
	cli
	cld
	mov %ebx, %esi          /* start_info survives in esi */
	lgdt gdt_descriptor
	LOAD_DATA_SEGMENTS
	ENTER_LONG_MODE
	ljmp $GDT_CODE64, $bsp_entry64

ap_entry32:
	cli
	cld
	LOAD_DATA_SEGMENTS
	ENTER_LONG_MODE
	ljmp $GDT_CODE64, $ap_entry64

	.section .text, "ax"
	.code64
bsp_entry64:
	LOAD_DATA_SEGMENTS
	lidt idt_descriptor
	mov $boot_stack_top, %esp
	/* Zero .bss (small: stacks and page tables live elsewhere). */
	mov $__bss_start, %edi
	mov $__bss_end, %ecx
	sub %edi, %ecx
	shr $3, %ecx
	xor %eax, %eax
	rep stosq
	mov %esi, %edi          /* zero-extends: upper halves are undefined */
	call runtime_start
	jmp halt_loop

ap_entry64:
	LOAD_DATA_SEGMENTS
	lidt idt_descriptor
	/* Claim the next AP stack. */
	mov $1, %eax
	lock xadd %eax, ap_stacks_claimed(%rip)
	cmp $AP_STACK_COUNT, %eax
	jae halt_loop
	inc %eax
	shl $12, %eax           /* AP_STACK_SIZE */
	lea ap_stacks(%rip), %rsp
	add %rax, %rsp
	call ap_main
halt_loop:
	cli
	hlt
	jmp halt_loop

/* AP start-up code, copied to AP_TRAMPOLINE_PADDR and entered by SIPI at
 * CS = AP_TRAMPOLINE_PADDR >> 4, IP = 0. Only position-independent code
 * (offsets relative to CS) until the far jump into the image. */
	.section .text16, "ax"
	.code16
	.globl ap_trampoline_start, ap_trampoline_end
ap_trampoline_start:
	cli
	lgdtl %cs:(ap_gdt_descriptor - ap_trampoline_start)
	mov %cr0, %eax
	or $CR0_PE, %eax
	mov %eax, %cr0
	ljmpl $GDT_CODE32, $ap_entry32
	.balign 4
	// Data inside code: typed as an object so check_disassembly.py does not
	// decode it (its bytes are the GDT's address, whatever they decode to).
	.type ap_gdt_descriptor, @object
ap_gdt_descriptor:
	.word gdt_end - gdt - 1
	.long gdt
	.size ap_gdt_descriptor, . - ap_gdt_descriptor
ap_trampoline_end:

	.section .bss, "aw", @nobits
	.balign 4
	.globl ap_stacks_claimed
ap_stacks_claimed:
	.long 0

/* Not zeroed by the entry stub: nothing here needs initial contents. */
	.section .bss.noinit, "aw", @nobits
	.balign 4096
boot_stack:
	.skip BOOT_STACK_SIZE
boot_stack_top:
ap_stacks:                      /* stack i tops at ap_stacks + (i+1)*4096 */
	.skip AP_STACK_SIZE * AP_STACK_COUNT

	.section .note.GNU-stack, "", @progbits
