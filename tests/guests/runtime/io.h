// Port I/O and MMIO accessors for the test guests.
#ifndef VMM_TESTS_GUESTS_RUNTIME_IO_H_
#define VMM_TESTS_GUESTS_RUNTIME_IO_H_

#include <stdint.h>

static inline void outb(uint16_t port, uint8_t value) {
  __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t value) {
  __asm__ volatile("outw %0, %1" : : "a"(value), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t value) {
  __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint8_t inb(uint16_t port) {
  uint8_t value;
  __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
  return value;
}

static inline uint16_t inw(uint16_t port) {
  uint16_t value;
  __asm__ volatile("inw %1, %0" : "=a"(value) : "Nd"(port));
  return value;
}

static inline uint32_t inl(uint16_t port) {
  uint32_t value;
  __asm__ volatile("inl %1, %0" : "=a"(value) : "Nd"(port));
  return value;
}

// Physical memory is identity-mapped below 4 GiB, so a physical address is
// also a pointer.
static inline uint32_t mmio_read32(uint64_t paddr) {
  return *(volatile uint32_t*)(uintptr_t)paddr;
}

static inline void mmio_write32(uint64_t paddr, uint32_t value) {
  *(volatile uint32_t*)(uintptr_t)paddr = value;
}

static inline uint8_t mmio_read8(uint64_t paddr) {
  return *(volatile uint8_t*)(uintptr_t)paddr;
}

static inline uint16_t mmio_read16(uint64_t paddr) {
  return *(volatile uint16_t*)(uintptr_t)paddr;
}

static inline void mmio_write8(uint64_t paddr, uint8_t value) {
  *(volatile uint8_t*)(uintptr_t)paddr = value;
}

static inline void mmio_write16(uint64_t paddr, uint16_t value) {
  *(volatile uint16_t*)(uintptr_t)paddr = value;
}

// A full barrier (store-load ordering) without mfence, which the KVM
// instruction emulator may not know: a locked no-op on the stack, as Linux
// does.
static inline void memory_barrier(void) {
  __asm__ volatile("lock orl $0, (%%rsp)" ::: "memory", "cc");
}

static inline uint64_t rdtsc(void) {
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}

static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }

static inline void compiler_barrier(void) { __asm__ volatile("" ::: "memory"); }

// Stops this CPU for good: interrupts off, so only INIT/NMI can wake it.
static inline __attribute__((noreturn)) void halt_forever(void) {
  for (;;) __asm__ volatile("cli; hlt" ::: "memory");
}

#endif  // VMM_TESTS_GUESTS_RUNTIME_IO_H_
