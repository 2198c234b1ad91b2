#include "runtime/msix.h"

#include "runtime/io.h"
#include "runtime/paging.h"
#include "runtime/pci.h"

#define MSIX_CONTROL 2
#define MSIX_TABLE 4
#define MSIX_CONTROL_SIZE_MASK 0x7ff
#define MSIX_CONTROL_FUNCTION_MASK 0x4000
#define MSIX_CONTROL_ENABLE 0x8000
#define MSIX_ENTRY_SIZE 16
#define MSIX_ENTRY_ADDRESS_LOW 0
#define MSIX_ENTRY_ADDRESS_HIGH 4
#define MSIX_ENTRY_DATA 8
#define MSIX_ENTRY_CONTROL 12
#define MSIX_ENTRY_MASKED 1
#define MSI_ADDRESS_BASE 0xfee00000u

bool msix_probe(uint16_t bdf, struct msix* msix, const char** why) {
  msix->bdf = bdf;
  msix->cap = pci_find_capability(bdf, PCI_CAP_ID_MSIX, 0);
  if (msix->cap == 0) {
    *why = "no MSI-X capability";
    return false;
  }
  uint16_t control = pci_read16(bdf, msix->cap + MSIX_CONTROL);
  msix->table_size = (control & MSIX_CONTROL_SIZE_MASK) + 1;
  uint32_t table = pci_read32(bdf, msix->cap + MSIX_TABLE);
  struct pci_bar bar;
  if (!pci_bar_read(bdf, table & 7, &bar) || bar.is_io || bar.address == 0) {
    *why = "MSI-X table BAR is not an assigned memory BAR";
    return false;
  }
  uint64_t offset = table & ~7u;
  uint64_t length = (uint64_t)msix->table_size * MSIX_ENTRY_SIZE;
  if (offset + length > bar.size) {
    *why = "MSI-X table does not fit in its BAR";
    return false;
  }
  if (!paging_map_mmio(bar.address, bar.size)) {
    *why = "cannot map the MSI-X BAR";
    return false;
  }
  msix->table = bar.address + offset;
  return true;
}

void msix_set_entry(const struct msix* msix, uint16_t index, uint8_t apic_id,
                    uint8_t vector) {
  uint64_t entry = msix->table + (uint64_t)index * MSIX_ENTRY_SIZE;
  mmio_write32(entry + MSIX_ENTRY_CONTROL, MSIX_ENTRY_MASKED);
  mmio_write32(entry + MSIX_ENTRY_ADDRESS_LOW,
               MSI_ADDRESS_BASE | ((uint32_t)apic_id << 12));
  mmio_write32(entry + MSIX_ENTRY_ADDRESS_HIGH, 0);
  mmio_write32(entry + MSIX_ENTRY_DATA, vector);
}

void msix_unmask_entry(const struct msix* msix, uint16_t index) {
  uint64_t entry = msix->table + (uint64_t)index * MSIX_ENTRY_SIZE;
  mmio_write32(entry + MSIX_ENTRY_CONTROL, 0);
}

void msix_enable(const struct msix* msix) {
  uint16_t command = pci_read16(msix->bdf, PCI_COMMAND);
  pci_write16(msix->bdf, PCI_COMMAND,
              command | PCI_COMMAND_INTX_DISABLE | PCI_COMMAND_MASTER);
  uint16_t control = pci_read16(msix->bdf, msix->cap + MSIX_CONTROL);
  control = (control | MSIX_CONTROL_ENABLE) & ~MSIX_CONTROL_FUNCTION_MASK;
  pci_write16(msix->bdf, msix->cap + MSIX_CONTROL, control);
}

void msix_disable(const struct msix* msix) {
  uint16_t control = pci_read16(msix->bdf, msix->cap + MSIX_CONTROL);
  pci_write16(msix->bdf, msix->cap + MSIX_CONTROL,
              control & ~(MSIX_CONTROL_ENABLE | MSIX_CONTROL_FUNCTION_MASK));
}
