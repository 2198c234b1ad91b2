/*
 * A last-resort IDT: any CPU exception is reported on the console and ends
 * the VM through debug-exit (exceptions.c), instead of a triple fault,
 * which would reset, and a reset looks like success.
 *
 * The IDT is static data, so installing it costs one lidt: the 32 stubs sit
 * 16 bytes apart in one 512-byte-aligned block (never crossing a 64 KiB
 * boundary), and guest.ld splits the block's address into the gate fields.
 * Each stub makes the frame uniform (vector, error code, then what the CPU
 * pushed) and calls exception_report(frame), which never returns.
 */
#define GDT_CODE64 0x18
#define IDT_GATE_INTERRUPT 0x8e /* present, DPL 0, 64-bit interrupt gate */
#define EXCEPTION_COUNT 32

/* Vectors for which the CPU pushes an error code. */
#define HAS_ERROR_CODE(v) \
	((v) == 8 || ((v) >= 10 && (v) <= 14) || (v) == 17 || (v) == 21 || \
	 (v) == 29 || (v) == 30)

	.section .text.exception_stubs, "ax"
	.code64
	.balign 512
	.globl exception_stubs
exception_stubs:
	.set vector, 0
	.rept EXCEPTION_COUNT
	.balign 16
	.if HAS_ERROR_CODE(vector) == 0
	pushq $0
	.endif
	pushq $vector
	jmp exception_common
	.set vector, vector + 1
	.endr

exception_common:
	mov %rsp, %rdi          /* struct exception_frame* */
	and $-16, %rsp
	call exception_report
1:	cli
	hlt
	jmp 1b

	.section .data.idt, "aw"
	.balign 16
idt:
	.set vector, 0
	.rept EXCEPTION_COUNT
	.word __exception_stubs_low + vector * 16
	.word GDT_CODE64
	.byte 0, IDT_GATE_INTERRUPT
	.word __exception_stubs_high
	.long 0, 0              /* offset bits 63:32 (image is below 4 GiB) */
	.set vector, vector + 1
	.endr
idt_end:

	.balign 8
	.word 0, 0, 0
	.globl idt_descriptor   /* loaded by every CPU in entry.S */
idt_descriptor:
	.word idt_end - idt - 1
	.quad idt

	.section .note.GNU-stack, "", @progbits
