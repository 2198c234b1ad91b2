#include "runtime/pci.h"

#include "runtime/io.h"

#define PCI_CF8_ADDRESS 0xcf8
#define PCI_CF8_DATA 0xcfc
#define PCI_CF8_ENABLE 0x80000000u
#define PCI_FUNCTIONS_PER_BUS 256
#define PCI_HEADER_MULTIFUNCTION 0x80
#define PCI_MAX_CAPABILITIES 48  // 192 bytes / 4: a longer walk is a loop
#define PCI_BAR_COUNT 6

static enum pci_access selected = PCI_ACCESS_ECAM;
static uint64_t ecam = 0xe0000000u;

void pci_select(enum pci_access access, uint64_t ecam_base) {
  selected = access;
  ecam = ecam_base;
}

const char* pci_access_name(enum pci_access access) {
  return access == PCI_ACCESS_CF8 ? "cf8" : "ecam";
}

static uint32_t cf8_address(uint16_t bdf, uint16_t reg) {
  return PCI_CF8_ENABLE | ((uint32_t)bdf << 8) | (reg & 0xfc);
}

static uint64_t ecam_address(uint16_t bdf, uint16_t reg) {
  return ecam + ((uint64_t)bdf << 12) + (reg & 0xfff);
}

uint32_t pci_read32_via(enum pci_access access, uint16_t bdf, uint16_t reg) {
  if (access == PCI_ACCESS_ECAM) return mmio_read32(ecam_address(bdf, reg));
  outl(PCI_CF8_ADDRESS, cf8_address(bdf, reg));
  return inl(PCI_CF8_DATA);
}

uint32_t pci_read32(uint16_t bdf, uint16_t reg) {
  return pci_read32_via(selected, bdf, reg);
}

uint16_t pci_read16(uint16_t bdf, uint16_t reg) {
  if (selected == PCI_ACCESS_ECAM) return mmio_read16(ecam_address(bdf, reg));
  outl(PCI_CF8_ADDRESS, cf8_address(bdf, reg));
  return inw(PCI_CF8_DATA + (reg & 2));
}

uint8_t pci_read8(uint16_t bdf, uint16_t reg) {
  if (selected == PCI_ACCESS_ECAM) return mmio_read8(ecam_address(bdf, reg));
  outl(PCI_CF8_ADDRESS, cf8_address(bdf, reg));
  return inb(PCI_CF8_DATA + (reg & 3));
}

void pci_write32(uint16_t bdf, uint16_t reg, uint32_t value) {
  if (selected == PCI_ACCESS_ECAM) {
    mmio_write32(ecam_address(bdf, reg), value);
    return;
  }
  outl(PCI_CF8_ADDRESS, cf8_address(bdf, reg));
  outl(PCI_CF8_DATA, value);
}

void pci_write16(uint16_t bdf, uint16_t reg, uint16_t value) {
  if (selected == PCI_ACCESS_ECAM) {
    mmio_write16(ecam_address(bdf, reg), value);
    return;
  }
  outl(PCI_CF8_ADDRESS, cf8_address(bdf, reg));
  outw(PCI_CF8_DATA + (reg & 2), value);
}

void pci_write8(uint16_t bdf, uint16_t reg, uint8_t value) {
  if (selected == PCI_ACCESS_ECAM) {
    mmio_write8(ecam_address(bdf, reg), value);
    return;
  }
  outl(PCI_CF8_ADDRESS, cf8_address(bdf, reg));
  outb(PCI_CF8_DATA + (reg & 3), value);
}

uint32_t pci_enumerate(enum pci_access access, uint32_t bus_count,
                       struct pci_function* out, uint32_t max) {
  uint32_t found = 0;
  for (uint32_t bus = 0; bus < bus_count && bus < 256; ++bus) {
    for (uint32_t dev = 0; dev < 32; ++dev) {
      uint32_t functions = 1;
      for (uint32_t fn = 0; fn < functions; ++fn) {
        uint16_t bdf = PCI_BDF(bus, dev, fn);
        uint32_t id = pci_read32_via(access, bdf, PCI_VENDOR_ID);
        uint16_t vendor = (uint16_t)id;
        if (vendor == 0xffff || vendor == 0) continue;
        if (fn == 0) {
          uint32_t header = pci_read32_via(access, bdf, 0x0c) >> 16;
          if (header & PCI_HEADER_MULTIFUNCTION) functions = 8;
        }
        if (found < max) {
          out[found].bdf = bdf;
          out[found].vendor = vendor;
          out[found].device = (uint16_t)(id >> 16);
          out[found].class_revision =
              pci_read32_via(access, bdf, PCI_CLASS_REVISION);
        }
        ++found;
      }
    }
  }
  return found < max ? found : max;
}

uint8_t pci_find_capability(uint16_t bdf, uint8_t id, uint8_t after) {
  if ((pci_read16(bdf, PCI_STATUS) & PCI_STATUS_CAP_LIST) == 0) return 0;
  uint8_t pos = after != 0 ? pci_read8(bdf, after + 1)
                           : pci_read8(bdf, PCI_CAPABILITY_LIST);
  for (int i = 0; i < PCI_MAX_CAPABILITIES; ++i) {
    pos &= 0xfc;
    if (pos < 0x40) return 0;
    if (pci_read8(bdf, pos) == id) return pos;
    pos = pci_read8(bdf, pos + 1);
  }
  return 0;
}

// Reads the BAR with all-ones written to it, then restores it.
static uint32_t bar_size_mask(uint16_t bdf, uint16_t reg) {
  uint32_t saved = pci_read32(bdf, reg);
  pci_write32(bdf, reg, 0xffffffffu);
  uint32_t mask = pci_read32(bdf, reg);
  pci_write32(bdf, reg, saved);
  return mask;
}

bool pci_bar_read(uint16_t bdf, uint32_t index, struct pci_bar* bar) {
  if (index >= PCI_BAR_COUNT) return false;
  uint16_t reg = (uint16_t)(PCI_BAR0 + 4 * index);
  uint32_t low = pci_read32(bdf, reg);
  bar->is_io = (low & 1) != 0;
  bar->is_64bit = !bar->is_io && ((low >> 1) & 3) == 2;
  bar->prefetchable = !bar->is_io && (low & 8) != 0;
  if (bar->is_64bit && index + 1 >= PCI_BAR_COUNT) return false;

  uint16_t command = pci_read16(bdf, PCI_COMMAND);
  pci_write16(bdf, PCI_COMMAND,
              command & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY));
  uint64_t mask = bar_size_mask(bdf, reg);
  uint64_t high = 0;
  if (bar->is_64bit) {
    high = pci_read32(bdf, reg + 4);
    mask |= (uint64_t)bar_size_mask(bdf, reg + 4) << 32;
  } else {
    mask |= 0xffffffff00000000ull;
  }
  pci_write16(bdf, PCI_COMMAND, command);

  if (bar->is_io) {
    bar->address = low & ~3u;
    mask &= ~3ull;
  } else {
    bar->address = (high << 32) | (low & ~0xfu);
    mask &= ~0xfull;
  }
  // A BAR that reads back all-zero after the all-ones write does not exist.
  bool implemented = bar->is_64bit ? (mask & ~0xfull) != 0
                                   : (uint32_t)(mask & ~0xfull) != 0;
  bar->size = implemented ? ~mask + 1 : 0;
  return true;
}

void pci_bar_assign(uint16_t bdf, uint32_t index, uint64_t address,
                    bool is_64bit) {
  uint16_t reg = (uint16_t)(PCI_BAR0 + 4 * index);
  uint16_t command = pci_read16(bdf, PCI_COMMAND);
  pci_write16(bdf, PCI_COMMAND, command & ~PCI_COMMAND_MEMORY);
  pci_write32(bdf, reg, (uint32_t)address);
  if (is_64bit) pci_write32(bdf, reg + 4, (uint32_t)(address >> 32));
  pci_write16(bdf, PCI_COMMAND, command);
}
