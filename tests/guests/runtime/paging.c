#include "runtime/paging.h"

#include "runtime/string.h"

#define PTE_PRESENT 0x1ull
#define PTE_WRITE 0x2ull
#define PTE_PWT 0x8ull
#define PTE_PCD 0x10ull
#define PTE_LARGE 0x80ull
#define PTE_ADDRESS_MASK 0x000ffffffffff000ull
#define GIB (1ull << 30)
#define LARGE_PAGE (2ull << 20)
#define STATIC_MAP_END (4 * GIB)
#define PDPT_REACH (512 * GIB)  // one PML4 entry

extern uint64_t pdpt[512];  // page_tables.S

static uint64_t spare_directories[PAGING_SPARE_DIRECTORIES][512]
    __attribute__((aligned(4096), section(".bss.noinit")));
static uint32_t spare_used;

static void flush_tlb(void) {
  uint64_t cr3;
  __asm__ volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(cr3) : : "memory");
}

bool paging_map_mmio(uint64_t paddr, uint64_t size) {
  if (size == 0) return true;
  uint64_t end = paddr + size;
  if (end < paddr || end > PDPT_REACH) return false;
  if (end <= STATIC_MAP_END) return true;
  uint64_t page = (paddr < STATIC_MAP_END ? STATIC_MAP_END : paddr) &
                  ~(LARGE_PAGE - 1);
  for (; page < end; page += LARGE_PAGE) {
    uint64_t* pdpte = &pdpt[page / GIB];
    if ((*pdpte & PTE_PRESENT) == 0) {
      if (spare_used == PAGING_SPARE_DIRECTORIES) return false;
      uint64_t* directory = spare_directories[spare_used++];
      memset(directory, 0, 4096);
      *pdpte = (uint64_t)(uintptr_t)directory | PTE_PRESENT | PTE_WRITE;
    }
    uint64_t* directory = (uint64_t*)(uintptr_t)(*pdpte & PTE_ADDRESS_MASK);
    directory[(page / LARGE_PAGE) % 512] =
        page | PTE_PRESENT | PTE_WRITE | PTE_LARGE | PTE_PCD | PTE_PWT;
  }
  flush_tlb();
  return true;
}
