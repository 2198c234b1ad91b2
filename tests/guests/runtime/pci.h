// PCI configuration space through either mechanism #1 (0xCF8/0xCFC) or the
// PCIe ECAM window, bus enumeration, capability walk and BAR decoding.
#ifndef VMM_TESTS_GUESTS_RUNTIME_PCI_H_
#define VMM_TESTS_GUESTS_RUNTIME_PCI_H_

#include <stdbool.h>
#include <stdint.h>

enum pci_access { PCI_ACCESS_CF8, PCI_ACCESS_ECAM };

#define PCI_BDF(bus, dev, fn) \
  ((uint16_t)(((bus) << 8) | ((dev) << 3) | (fn)))
#define PCI_BUS(bdf) ((bdf) >> 8)
#define PCI_DEV(bdf) (((bdf) >> 3) & 0x1f)
#define PCI_FN(bdf) ((bdf) & 7)

#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_CLASS_REVISION 0x08
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d

#define PCI_COMMAND_IO 0x1
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS_CAP_LIST 0x10

#define PCI_CAP_ID_VENDOR 0x09
#define PCI_CAP_ID_MSIX 0x11

// Which mechanism pci_read*/pci_write* use, and where ECAM lives.
void pci_select(enum pci_access access, uint64_t ecam_base);
const char* pci_access_name(enum pci_access access);

uint32_t pci_read32_via(enum pci_access access, uint16_t bdf, uint16_t reg);
uint32_t pci_read32(uint16_t bdf, uint16_t reg);
uint16_t pci_read16(uint16_t bdf, uint16_t reg);
uint8_t pci_read8(uint16_t bdf, uint16_t reg);
void pci_write32(uint16_t bdf, uint16_t reg, uint32_t value);
void pci_write16(uint16_t bdf, uint16_t reg, uint16_t value);
void pci_write8(uint16_t bdf, uint16_t reg, uint8_t value);

struct pci_function {
  uint16_t bdf;
  uint16_t vendor;
  uint16_t device;
  uint32_t class_revision;
};

// Lists the functions on buses [0, bus_count) in (bus, device, function)
// order, at most `max`. Returns how many were found.
uint32_t pci_enumerate(enum pci_access access, uint32_t bus_count,
                       struct pci_function* out, uint32_t max);

// The config-space offset of the first capability with `id` after `after`
// (0 = from the start of the list), or 0 when there is none. The walk is
// bounded, so a looping list ends.
uint8_t pci_find_capability(uint16_t bdf, uint8_t id, uint8_t after);

struct pci_bar {
  uint64_t address;  // 0 when unassigned
  uint64_t size;     // from sizing; 0 when the BAR is not implemented
  bool is_io;
  bool is_64bit;
  bool prefetchable;
};

// Decodes and sizes BAR `index` (0-5). Decoding is switched off while the
// BAR holds all-ones. False for an index that is the upper half of a 64-bit
// BAR or out of range.
bool pci_bar_read(uint16_t bdf, uint32_t index, struct pci_bar* bar);

// Moves memory BAR `index` to `address` (decode off while it changes).
void pci_bar_assign(uint16_t bdf, uint32_t index, uint64_t address,
                    bool is_64bit);

#endif  // VMM_TESTS_GUESTS_RUNTIME_PCI_H_
