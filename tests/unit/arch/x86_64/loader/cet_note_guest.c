// A kernel-shaped ELF as a CET-enabled toolchain links it, for elf_test.cc
// (issue 17, item 3): built with -fcf-protection=full and -z ibt/-z shstk,
// the linker puts an NT_GNU_PROPERTY_TYPE_0 note first in an 8-aligned
// PT_NOTE segment; a build-id note and the PVH entry note (as Linux's
// ELFNOTE macro writes it, 4-aligned) follow in a second one. Never run.
void _start(void) {
  for (;;) __asm__ volatile("hlt");
}

// XEN_ELFNOTE_PHYS32_ENTRY (18), owner "Xen", a 4-byte entry address.
__asm__(
    ".pushsection .note.Xen, \"a\", @note\n"
    ".balign 4\n"
    ".long 4, 4, 18\n"
    ".asciz \"Xen\"\n"
    ".balign 4\n"
    ".long _start\n"
    ".balign 4\n"
    ".popsection\n");
