/*
 * Entry stubs for vectors 32..255, 16 bytes apart from irq_stubs (irq.c
 * points the IDT gates at them). Each pushes its vector and joins
 * irq_common, which saves the caller-saved registers, calls
 * irq_dispatch(vector) and returns with iretq. External interrupts push
 * no error code.
 */
#define FIRST_VECTOR 32
#define LAST_VECTOR 255

	.section .text.irq_stubs, "ax"
	.code64
	.balign 16
	.globl irq_stubs
irq_stubs:
	.set vector, FIRST_VECTOR
	.rept LAST_VECTOR - FIRST_VECTOR + 1
	.balign 16
	pushq $vector
	jmp irq_common
	.set vector, vector + 1
	.endr

/* On entry the CPU has aligned the stack to 16 and pushed 5 quadwords;
 * with the vector and 9 registers, one more quadword aligns the call. */
irq_common:
	cld
	push %rax
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %r8
	push %r9
	push %r10
	push %r11
	mov 72(%rsp), %rdi      /* the vector */
	sub $8, %rsp
	call irq_dispatch
	add $8, %rsp
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rax
	add $8, %rsp            /* the vector */
	iretq

	.section .note.GNU-stack, "", @progbits
