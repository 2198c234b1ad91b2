#include "runtime/virtio_find.h"

#include "runtime/cmdline.h"
#include "runtime/console.h"
#include "runtime/ioapic.h"
#include "runtime/irq.h"
#include "runtime/lapic.h"
#include "runtime/mp_table.h"
#include "runtime/pci.h"
#include "runtime/virtio_mmio.h"
#include "runtime/virtio_pci.h"

#define MAX_FUNCTIONS 64
#define MMIO_BASE 0xd0000000ull
#define MMIO_STRIDE 0x1000
#define MMIO_SLOTS 8
#define MMIO_GSI 16
#define ECAM_BASE 0xe0000000ull

static struct virtio_pci_dev pci_devs[VIRTIO_FIND_MAX];
static struct virtio_mmio_dev mmio_devs[VIRTIO_FIND_MAX];

static void set_common(struct virtio_dev* dev, const struct virtio_find_options* o,
                       enum virtio_irq_mode mode, uint32_t index) {
  dev->irq_mode = o->interrupts ? mode : VIRTIO_IRQ_POLL;
  dev->vector = (uint8_t)(IRQ_DEVICE_VECTOR_BASE + index);
  dev->apic_id = o->apic_id;
  dev->timeout_ms = o->timeout_ms;
  dev->irq_count = 0;
}

bool virtio_find_options_from_cmdline(const char* c, struct virtio_find_options* o,
                                      const char** bad_key) {
  uint64_t timeout_ms;
  if (!cmdline_u64_in_range(c, "timeout_ms", 5000, 1, 600000, &timeout_ms)) {
    *bad_key = "timeout_ms";
    return false;
  }
  *o = (struct virtio_find_options){
      .pci = !cmdline_equals(c, "pci", "off"),
      .mmio = !cmdline_equals(c, "mmio", "off"),
      .timeout_ms = (uint32_t)timeout_ms,
      .interrupts = cmdline_equals(c, "irq", "on"),
  };
  if (o->interrupts) {
    struct mp_info mp;
    const char* mp_why = "";
    if (!mp_find_cpus(&mp, &mp_why)) console_printf("mp: %s\n", mp_why);
    irq_init(mp.lapic_paddr);
    o->apic_id = (uint8_t)lapic_self_id();
  }
  return true;
}

uint32_t virtio_find(uint32_t type, const struct virtio_find_options* o,
                     struct virtio_dev** out, uint32_t* failed) {
  uint32_t n = 0;
  const char* why = "";
  if (o->pci) {
    static struct pci_function functions[MAX_FUNCTIONS];
    pci_select(PCI_ACCESS_ECAM, ECAM_BASE);
    uint32_t count = pci_enumerate(PCI_ACCESS_ECAM, 1, functions, MAX_FUNCTIONS);
    for (uint32_t i = 0; i < count && n < VIRTIO_FIND_MAX; ++i) {
      if (functions[i].vendor != VIRTIO_PCI_VENDOR ||
          functions[i].device != VIRTIO_PCI_MODERN_DEVICE_BASE + type) {
        continue;
      }
      struct virtio_pci_dev* dev = &pci_devs[n];
      if (!virtio_pci_probe(dev, functions[i].bdf, &why)) {
        console_printf("pci %04x: FAIL: %s\n", functions[i].bdf, why);
        ++*failed;
        continue;
      }
      dev->vdev.location[0] = 'p';
      dev->vdev.location[1] = 'c';
      dev->vdev.location[2] = 'i';
      dev->vdev.location[3] = '\0';
      set_common(&dev->vdev, o, VIRTIO_IRQ_MSIX, n);
      out[n++] = &dev->vdev;
    }
  }
  if (o->mmio) {
    uint32_t m = 0;
    for (uint32_t slot = 0; slot < MMIO_SLOTS && n < VIRTIO_FIND_MAX; ++slot) {
      struct virtio_mmio_dev* dev = &mmio_devs[m];
      enum virtio_mmio_probe_result r = virtio_mmio_probe(
          dev, MMIO_BASE + slot * MMIO_STRIDE, slot, MMIO_GSI + slot, &why);
      if (r == VIRTIO_MMIO_EMPTY) continue;
      if (r == VIRTIO_MMIO_UNSUPPORTED) {
        console_printf("mmio %u: FAIL: %s\n", slot, why);
        ++*failed;
        continue;
      }
      if (dev->vdev.device_type != type) continue;
      dev->vdev.location[0] = 'm';
      dev->vdev.location[1] = 'm';
      dev->vdev.location[2] = 'i';
      dev->vdev.location[3] = 'o';
      dev->vdev.location[4] = '\0';
      set_common(&dev->vdev, o, VIRTIO_IRQ_GSI, n);
      dev->ioapic.paddr = IOAPIC_DEFAULT_PADDR;
      dev->ioapic.gsi_base = 0;
      out[n++] = &dev->vdev;
      ++m;
    }
  }
  return n;
}
