/*
 * Static identity map of the first 4 GiB with 2 MiB pages (PML4 -> one
 * PDPT -> four page directories), so neither the BSP nor an AP spends
 * emulated instructions building page tables. The loader copies these
 * 24 KiB like any other data.
 */
#define PTE_PRESENT 0x1
#define PTE_WRITE 0x2
#define PTE_LARGE 0x80

	.section .data.page_tables, "aw"
	.balign 4096
	.globl pml4
pml4:
	.quad pdpt + (PTE_PRESENT | PTE_WRITE)
	.fill 511, 8, 0

	.balign 4096
	.globl pdpt
pdpt:
	.quad pd0 + (PTE_PRESENT | PTE_WRITE)
	.quad pd1 + (PTE_PRESENT | PTE_WRITE)
	.quad pd2 + (PTE_PRESENT | PTE_WRITE)
	.quad pd3 + (PTE_PRESENT | PTE_WRITE)
	.fill 508, 8, 0

	.balign 4096
pd0:
	.set page, 0
	.rept 512 * 4
	.quad (page << 21) | (PTE_PRESENT | PTE_WRITE | PTE_LARGE)
	.set page, page + 1
	.endr
pd1 = pd0 + 0x1000
pd2 = pd0 + 0x2000
pd3 = pd0 + 0x3000

	.section .note.GNU-stack, "", @progbits
