// The virtio 1.x PCI transport (4.1): vendor capabilities locate the
// common, notify, ISR and device configuration structures in the BARs;
// interrupts by MSI-X, INTx or none.
#ifndef VMM_TESTS_GUESTS_RUNTIME_VIRTIO_PCI_H_
#define VMM_TESTS_GUESTS_RUNTIME_VIRTIO_PCI_H_

#include <stdbool.h>
#include <stdint.h>

#include "runtime/ioapic.h"
#include "runtime/msix.h"
#include "runtime/virtio.h"

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_MODERN_DEVICE_BASE 0x1040  // + device type
#define VIRTIO_PCI_MAX_QUEUES 4

struct virtio_pci_dev {
  struct virtio_dev vdev;
  uint16_t bdf;
  uint64_t common;  // physical addresses of the structures
  uint64_t notify;
  uint64_t isr;
  uint64_t device;
  uint32_t notify_length;
  uint32_t notify_multiplier;
  uint32_t device_length;
  uint8_t pci_cfg_cap;  // 0 when absent
  bool has_msix;
  struct msix msix;
  uint64_t queue_notify[VIRTIO_PCI_MAX_QUEUES];
  // For irq_mode INTX: where INTA# arrives.
  struct ioapic ioapic;
  uint32_t intx_gsi;
};

// Fills `dev` from the function's capabilities (and enables memory decode
// and bus mastering). The caller then sets vdev.irq_mode, vector, apic_id,
// timeout_ms, ioapic and intx_gsi.
bool virtio_pci_probe(struct virtio_pci_dev* dev, uint16_t bdf,
                      const char** why);

// Reads and writes the common configuration through the PCI_CFG
// capability's window and checks that both paths agree.
bool virtio_pci_check_cfg_window(struct virtio_pci_dev* dev,
                                 const char** why);

#endif  // VMM_TESTS_GUESTS_RUNTIME_VIRTIO_PCI_H_
