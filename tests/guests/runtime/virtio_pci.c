#include "runtime/virtio_pci.h"

#include "runtime/console.h"
#include "runtime/io.h"
#include "runtime/paging.h"
#include "runtime/pci.h"

// struct virtio_pci_cap (4.1.4)
#define CAP_CFG_TYPE 3
#define CAP_BAR 4
#define CAP_OFFSET 8
#define CAP_LENGTH 12
#define CAP_NOTIFY_MULTIPLIER 16
#define CAP_PCI_CFG_DATA 16
#define CFG_TYPE_COMMON 1
#define CFG_TYPE_NOTIFY 2
#define CFG_TYPE_ISR 3
#define CFG_TYPE_DEVICE 4
#define CFG_TYPE_PCI 5

// struct virtio_pci_common_cfg (4.1.4.3)
#define COMMON_DEVICE_FEATURE_SELECT 0
#define COMMON_DEVICE_FEATURE 4
#define COMMON_DRIVER_FEATURE_SELECT 8
#define COMMON_DRIVER_FEATURE 12
#define COMMON_CONFIG_MSIX_VECTOR 16
#define COMMON_NUM_QUEUES 18
#define COMMON_DEVICE_STATUS 20
#define COMMON_CONFIG_GENERATION 21
#define COMMON_QUEUE_SELECT 22
#define COMMON_QUEUE_SIZE 24
#define COMMON_QUEUE_MSIX_VECTOR 26
#define COMMON_QUEUE_ENABLE 28
#define COMMON_QUEUE_NOTIFY_OFF 30
#define COMMON_QUEUE_DESC 32
#define COMMON_QUEUE_DRIVER 40
#define COMMON_QUEUE_DEVICE 48
#define COMMON_MIN_LENGTH 56
#define VIRTIO_MSI_NO_VECTOR 0xffff

#define AS_PCI(d) ((struct virtio_pci_dev*)(d))

static uint8_t get_status(struct virtio_dev* d) {
  return mmio_read8(AS_PCI(d)->common + COMMON_DEVICE_STATUS);
}

static void set_status(struct virtio_dev* d, uint8_t status) {
  mmio_write8(AS_PCI(d)->common + COMMON_DEVICE_STATUS, status);
}

static uint64_t device_features(struct virtio_dev* d) {
  uint64_t common = AS_PCI(d)->common;
  mmio_write32(common + COMMON_DEVICE_FEATURE_SELECT, 0);
  uint64_t low = mmio_read32(common + COMMON_DEVICE_FEATURE);
  mmio_write32(common + COMMON_DEVICE_FEATURE_SELECT, 1);
  uint64_t high = mmio_read32(common + COMMON_DEVICE_FEATURE);
  return (high << 32) | low;
}

static void set_driver_features(struct virtio_dev* d, uint64_t features) {
  uint64_t common = AS_PCI(d)->common;
  mmio_write32(common + COMMON_DRIVER_FEATURE_SELECT, 0);
  mmio_write32(common + COMMON_DRIVER_FEATURE, (uint32_t)features);
  mmio_write32(common + COMMON_DRIVER_FEATURE_SELECT, 1);
  mmio_write32(common + COMMON_DRIVER_FEATURE, (uint32_t)(features >> 32));
}

static uint32_t config_generation(struct virtio_dev* d) {
  return mmio_read8(AS_PCI(d)->common + COMMON_CONFIG_GENERATION);
}

static uint32_t config_read(struct virtio_dev* d, uint32_t offset,
                            uint32_t width) {
  struct virtio_pci_dev* dev = AS_PCI(d);
  if (offset + width > dev->device_length) return 0;
  uint64_t address = dev->device + offset;
  if (width == 1) return mmio_read8(address);
  if (width == 2) return mmio_read16(address);
  return mmio_read32(address);
}

static uint16_t queue_max_size(struct virtio_dev* d, uint16_t queue) {
  uint64_t common = AS_PCI(d)->common;
  if (queue >= VIRTIO_PCI_MAX_QUEUES ||
      queue >= mmio_read16(common + COMMON_NUM_QUEUES)) {
    return 0;
  }
  mmio_write16(common + COMMON_QUEUE_SELECT, queue);
  return mmio_read16(common + COMMON_QUEUE_SIZE);
}

static void write64(uint64_t address, uint64_t value) {
  mmio_write32(address, (uint32_t)value);
  mmio_write32(address + 4, (uint32_t)(value >> 32));
}

static bool queue_enable(struct virtio_dev* d, uint16_t queue, uint16_t size,
                         uint64_t desc, uint64_t avail, uint64_t used,
                         const char** why) {
  struct virtio_pci_dev* dev = AS_PCI(d);
  uint64_t common = dev->common;
  mmio_write16(common + COMMON_QUEUE_SELECT, queue);
  if (mmio_read16(common + COMMON_QUEUE_ENABLE) != 0) {
    *why = "queue_enable is not 0 after reset";
    return false;
  }
  mmio_write16(common + COMMON_QUEUE_SIZE, size);
  if (mmio_read16(common + COMMON_QUEUE_SIZE) != size) {
    *why = "queue_size does not keep the size written";
    return false;
  }
  if (d->irq_mode == VIRTIO_IRQ_MSIX) {
    uint16_t entry = dev->msix.table_size > 1 ? 1 : 0;
    mmio_write16(common + COMMON_QUEUE_MSIX_VECTOR, entry);
    if (mmio_read16(common + COMMON_QUEUE_MSIX_VECTOR) != entry) {
      *why = "device refused the queue's MSI-X vector";
      return false;
    }
  }
  write64(common + COMMON_QUEUE_DESC, desc);
  write64(common + COMMON_QUEUE_DRIVER, avail);
  write64(common + COMMON_QUEUE_DEVICE, used);
  uint64_t notify_off = (uint64_t)mmio_read16(common + COMMON_QUEUE_NOTIFY_OFF) *
                        dev->notify_multiplier;
  if (notify_off + 2 > dev->notify_length) {
    *why = "queue_notify_off * multiplier is outside the notify structure";
    return false;
  }
  dev->queue_notify[queue] = dev->notify + notify_off;
  mmio_write16(common + COMMON_QUEUE_ENABLE, 1);
  if (mmio_read16(common + COMMON_QUEUE_ENABLE) != 1) {
    *why = "queue_enable did not stick";
    return false;
  }
  return true;
}

static void notify(struct virtio_dev* d, uint16_t queue) {
  mmio_write16(AS_PCI(d)->queue_notify[queue], queue);
}

static bool irq_setup(struct virtio_dev* d, const char** why) {
  struct virtio_pci_dev* dev = AS_PCI(d);
  switch (d->irq_mode) {
    case VIRTIO_IRQ_POLL:
      if (dev->has_msix) msix_disable(&dev->msix);
      return true;
    case VIRTIO_IRQ_MSIX: {
      if (!dev->has_msix) {
        *why = "irq=msix but the function has no usable MSI-X";
        return false;
      }
      // Linux's layout: entry 0 for configuration changes, 1 for the queue
      // (both to our one vector); a one-entry table shares entry 0.
      uint16_t entries = dev->msix.table_size > 1 ? 2 : 1;
      for (uint16_t i = 0; i < entries; ++i) {
        msix_set_entry(&dev->msix, i, d->apic_id, d->vector);
        msix_unmask_entry(&dev->msix, i);
      }
      msix_enable(&dev->msix);
      mmio_write16(dev->common + COMMON_CONFIG_MSIX_VECTOR, 0);
      if (mmio_read16(dev->common + COMMON_CONFIG_MSIX_VECTOR) != 0) {
        *why = "device refused the configuration MSI-X vector";
        return false;
      }
      return true;
    }
    case VIRTIO_IRQ_INTX: {
      if (pci_read8(dev->bdf, PCI_INTERRUPT_PIN) == 0) {
        *why = "irq=intx but the function has no interrupt pin";
        return false;
      }
      if (dev->has_msix) msix_disable(&dev->msix);
      uint16_t command = pci_read16(dev->bdf, PCI_COMMAND);
      pci_write16(dev->bdf, PCI_COMMAND, command & ~PCI_COMMAND_INTX_DISABLE);
      if (!ioapic_route(&dev->ioapic, dev->intx_gsi, d->vector, d->apic_id,
                        true, true)) {
        *why = "INTx GSI is not a pin of the IOAPIC";
        return false;
      }
      return true;
    }
    case VIRTIO_IRQ_GSI:
      break;
  }
  *why = "irq mode not supported by virtio-pci";
  return false;
}

static void irq_ack(struct virtio_dev* d) {
  // Reading the ISR clears it and deasserts INTx; MSI-X needs nothing.
  if (d->irq_mode == VIRTIO_IRQ_INTX) (void)mmio_read8(AS_PCI(d)->isr);
}

static const struct virtio_transport_ops ops = {
    .get_status = get_status,
    .set_status = set_status,
    .device_features = device_features,
    .set_driver_features = set_driver_features,
    .config_generation = config_generation,
    .config_read = config_read,
    .queue_max_size = queue_max_size,
    .queue_enable = queue_enable,
    .notify = notify,
    .irq_setup = irq_setup,
    .irq_ack = irq_ack,
};

// Resolves one capability's BAR + offset to a physical address, checking
// that the structure lies inside the BAR.
static bool locate(uint16_t bdf, uint8_t cap, uint64_t* address,
                   uint32_t* length, const char** why) {
  uint8_t bar_index = pci_read8(bdf, cap + CAP_BAR);
  uint32_t offset = pci_read32(bdf, cap + CAP_OFFSET);
  *length = pci_read32(bdf, cap + CAP_LENGTH);
  struct pci_bar bar;
  if (bar_index > 5 || !pci_bar_read(bdf, bar_index, &bar) || bar.is_io) {
    *why = "a virtio capability names no memory BAR";
    return false;
  }
  if (bar.address == 0 || bar.size == 0) {
    *why = "a virtio capability's BAR is not assigned";
    return false;
  }
  if ((uint64_t)offset + *length > bar.size) {
    *why = "a virtio structure extends past the end of its BAR";
    return false;
  }
  if (!paging_map_mmio(bar.address, bar.size)) {
    *why = "cannot map a BAR above 4 GiB";
    return false;
  }
  *address = bar.address + offset;
  return true;
}

bool virtio_pci_probe(struct virtio_pci_dev* dev, uint16_t bdf,
                      const char** why) {
  dev->bdf = bdf;
  dev->common = dev->notify = dev->isr = dev->device = 0;
  dev->pci_cfg_cap = 0;
  uint32_t common_length = 0, isr_length = 0;
  for (uint8_t cap = pci_find_capability(bdf, PCI_CAP_ID_VENDOR, 0); cap != 0;
       cap = pci_find_capability(bdf, PCI_CAP_ID_VENDOR, cap)) {
    uint8_t type = pci_read8(bdf, cap + CAP_CFG_TYPE);
    bool ok = true;
    // The first capability of each type is the one to use (4.1.4.1).
    if (type == CFG_TYPE_COMMON && dev->common == 0) {
      ok = locate(bdf, cap, &dev->common, &common_length, why);
    } else if (type == CFG_TYPE_NOTIFY && dev->notify == 0) {
      ok = locate(bdf, cap, &dev->notify, &dev->notify_length, why);
      dev->notify_multiplier = pci_read32(bdf, cap + CAP_NOTIFY_MULTIPLIER);
    } else if (type == CFG_TYPE_ISR && dev->isr == 0) {
      ok = locate(bdf, cap, &dev->isr, &isr_length, why);
    } else if (type == CFG_TYPE_DEVICE && dev->device == 0) {
      ok = locate(bdf, cap, &dev->device, &dev->device_length, why);
    } else if (type == CFG_TYPE_PCI && dev->pci_cfg_cap == 0) {
      dev->pci_cfg_cap = cap;
    }
    if (!ok) return false;
  }
  if (dev->common == 0 || dev->notify == 0 || dev->isr == 0) {
    *why = "missing common, notify or ISR capability";
    return false;
  }
  if (common_length < COMMON_MIN_LENGTH || isr_length < 1) {
    *why = "common or ISR structure too short";
    return false;
  }
  const char* msix_why = "";
  dev->has_msix = msix_probe(bdf, &dev->msix, &msix_why);

  uint16_t command = pci_read16(bdf, PCI_COMMAND);
  pci_write16(bdf, PCI_COMMAND,
              command | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);

  dev->vdev.ops = &ops;
  dev->vdev.transport = "pci";
  uint16_t id = pci_read16(bdf, PCI_DEVICE_ID);
  dev->vdev.device_type = id >= VIRTIO_PCI_MODERN_DEVICE_BASE
                              ? (uint32_t)(id - VIRTIO_PCI_MODERN_DEVICE_BASE)
                              : 0;
  return true;
}

// Accesses `width` bytes at `offset` of the common structure through the
// PCI_CFG window (4.1.4.9).
static void window_select(struct virtio_pci_dev* dev, uint32_t offset,
                          uint32_t width) {
  uint8_t common_cap = 0;
  for (uint8_t cap = pci_find_capability(dev->bdf, PCI_CAP_ID_VENDOR, 0);
       cap != 0; cap = pci_find_capability(dev->bdf, PCI_CAP_ID_VENDOR, cap)) {
    if (pci_read8(dev->bdf, cap + CAP_CFG_TYPE) == CFG_TYPE_COMMON) {
      common_cap = cap;
      break;
    }
  }
  uint8_t bar = pci_read8(dev->bdf, common_cap + CAP_BAR);
  uint32_t base = pci_read32(dev->bdf, common_cap + CAP_OFFSET);
  pci_write8(dev->bdf, dev->pci_cfg_cap + CAP_BAR, bar);
  pci_write32(dev->bdf, dev->pci_cfg_cap + CAP_OFFSET, base + offset);
  pci_write32(dev->bdf, dev->pci_cfg_cap + CAP_LENGTH, width);
}

bool virtio_pci_check_cfg_window(struct virtio_pci_dev* dev,
                                 const char** why) {
  if (dev->pci_cfg_cap == 0) {
    *why = "no PCI_CFG capability";
    return false;
  }
  uint64_t common = dev->common;
  mmio_write32(common + COMMON_DEVICE_FEATURE_SELECT, 1);
  uint32_t direct = mmio_read32(common + COMMON_DEVICE_FEATURE);
  window_select(dev, COMMON_DEVICE_FEATURE, 4);
  uint32_t windowed = pci_read32(dev->bdf, dev->pci_cfg_cap + CAP_PCI_CFG_DATA);
  if (windowed != direct) {
    console_printf("virtio-pci: window read 0x%x, direct 0x%x\n", windowed,
                   direct);
    *why = "PCI_CFG window read differs from the direct read";
    return false;
  }
  window_select(dev, COMMON_DEVICE_FEATURE_SELECT, 4);
  pci_write32(dev->bdf, dev->pci_cfg_cap + CAP_PCI_CFG_DATA, 0);
  if (mmio_read32(common + COMMON_DEVICE_FEATURE_SELECT) != 0) {
    *why = "PCI_CFG window write did not reach device_feature_select";
    return false;
  }
  return true;
}
