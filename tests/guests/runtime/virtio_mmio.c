#include "runtime/virtio_mmio.h"

#include "runtime/cmdline.h"
#include "runtime/io.h"

#define REG_MAGIC 0x000
#define REG_VERSION 0x004
#define REG_DEVICE_ID 0x008
#define REG_DEVICE_FEATURES 0x010
#define REG_DEVICE_FEATURES_SEL 0x014
#define REG_DRIVER_FEATURES 0x020
#define REG_DRIVER_FEATURES_SEL 0x024
#define REG_QUEUE_SEL 0x030
#define REG_QUEUE_NUM_MAX 0x034
#define REG_QUEUE_NUM 0x038
#define REG_QUEUE_READY 0x044
#define REG_QUEUE_NOTIFY 0x050
#define REG_INTERRUPT_STATUS 0x060
#define REG_INTERRUPT_ACK 0x064
#define REG_STATUS 0x070
#define REG_QUEUE_DESC_LOW 0x080
#define REG_QUEUE_DESC_HIGH 0x084
#define REG_QUEUE_DRIVER_LOW 0x090
#define REG_QUEUE_DRIVER_HIGH 0x094
#define REG_QUEUE_DEVICE_LOW 0x0a0
#define REG_QUEUE_DEVICE_HIGH 0x0a4
#define REG_CONFIG_GENERATION 0x0fc
#define REG_CONFIG 0x100
#define CONFIG_MAX 0x100  // the config space we allow ourselves to read

#define AS_MMIO(d) ((struct virtio_mmio_dev*)(d))

static uint32_t reg_read(struct virtio_dev* d, uint32_t reg) {
  return mmio_read32(AS_MMIO(d)->base + reg);
}

static void reg_write(struct virtio_dev* d, uint32_t reg, uint32_t value) {
  mmio_write32(AS_MMIO(d)->base + reg, value);
}

static uint8_t get_status(struct virtio_dev* d) {
  return (uint8_t)reg_read(d, REG_STATUS);
}

static void set_status(struct virtio_dev* d, uint8_t status) {
  reg_write(d, REG_STATUS, status);
}

static uint64_t device_features(struct virtio_dev* d) {
  reg_write(d, REG_DEVICE_FEATURES_SEL, 0);
  uint64_t low = reg_read(d, REG_DEVICE_FEATURES);
  reg_write(d, REG_DEVICE_FEATURES_SEL, 1);
  uint64_t high = reg_read(d, REG_DEVICE_FEATURES);
  return (high << 32) | low;
}

static void set_driver_features(struct virtio_dev* d, uint64_t features) {
  reg_write(d, REG_DRIVER_FEATURES_SEL, 0);
  reg_write(d, REG_DRIVER_FEATURES, (uint32_t)features);
  reg_write(d, REG_DRIVER_FEATURES_SEL, 1);
  reg_write(d, REG_DRIVER_FEATURES, (uint32_t)(features >> 32));
}

static uint32_t config_generation(struct virtio_dev* d) {
  return reg_read(d, REG_CONFIG_GENERATION);
}

static uint32_t config_read(struct virtio_dev* d, uint32_t offset,
                            uint32_t width) {
  if (offset + width > CONFIG_MAX) return 0;
  uint64_t address = AS_MMIO(d)->base + REG_CONFIG + offset;
  if (width == 1) return mmio_read8(address);
  if (width == 2) return mmio_read16(address);
  return mmio_read32(address);
}

static uint16_t queue_max_size(struct virtio_dev* d, uint16_t queue) {
  reg_write(d, REG_QUEUE_SEL, queue);
  uint32_t max = reg_read(d, REG_QUEUE_NUM_MAX);
  return max > 0xffff ? 0xffff : (uint16_t)max;
}

static bool queue_enable(struct virtio_dev* d, uint16_t queue, uint16_t size,
                         uint64_t desc, uint64_t avail, uint64_t used,
                         const char** why) {
  reg_write(d, REG_QUEUE_SEL, queue);
  if (reg_read(d, REG_QUEUE_READY) != 0) {
    *why = "QueueReady is not 0 after reset";
    return false;
  }
  reg_write(d, REG_QUEUE_NUM, size);
  reg_write(d, REG_QUEUE_DESC_LOW, (uint32_t)desc);
  reg_write(d, REG_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
  reg_write(d, REG_QUEUE_DRIVER_LOW, (uint32_t)avail);
  reg_write(d, REG_QUEUE_DRIVER_HIGH, (uint32_t)(avail >> 32));
  reg_write(d, REG_QUEUE_DEVICE_LOW, (uint32_t)used);
  reg_write(d, REG_QUEUE_DEVICE_HIGH, (uint32_t)(used >> 32));
  reg_write(d, REG_QUEUE_READY, 1);
  if (reg_read(d, REG_QUEUE_READY) != 1) {
    *why = "QueueReady did not stick";
    return false;
  }
  return true;
}

static void notify(struct virtio_dev* d, uint16_t queue) {
  reg_write(d, REG_QUEUE_NOTIFY, queue);
}

static bool irq_setup(struct virtio_dev* d, const char** why) {
  struct virtio_mmio_dev* dev = AS_MMIO(d);
  if (d->irq_mode == VIRTIO_IRQ_POLL) return true;
  if (d->irq_mode != VIRTIO_IRQ_GSI) {
    *why = "irq mode not supported by virtio-mmio";
    return false;
  }
  if (!ioapic_route(&dev->ioapic, dev->gsi, d->vector, d->apic_id, false,
                    false)) {
    *why = "the slot's GSI is not a pin of the IOAPIC";
    return false;
  }
  return true;
}

static void irq_ack(struct virtio_dev* d) {
  uint32_t status = reg_read(d, REG_INTERRUPT_STATUS);
  if (status != 0) reg_write(d, REG_INTERRUPT_ACK, status);
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

enum virtio_mmio_probe_result virtio_mmio_probe(struct virtio_mmio_dev* dev,
                                                uint64_t base, uint32_t slot,
                                                uint32_t gsi,
                                                const char** why) {
  dev->base = base;
  dev->slot = slot;
  dev->gsi = gsi;
  if (mmio_read32(base + REG_MAGIC) != VIRTIO_MMIO_MAGIC) {
    return VIRTIO_MMIO_EMPTY;
  }
  uint32_t device_id = mmio_read32(base + REG_DEVICE_ID);
  if (device_id == 0) return VIRTIO_MMIO_EMPTY;
  uint32_t version = mmio_read32(base + REG_VERSION);
  if (version != 2) {
    *why = version == 1 ? "legacy virtio-mmio (version 1) is not supported"
                        : "unknown virtio-mmio version";
    return VIRTIO_MMIO_UNSUPPORTED;
  }
  dev->vdev.ops = &ops;
  dev->vdev.transport = "mmio";
  dev->vdev.device_type = device_id;
  return VIRTIO_MMIO_FOUND;
}

// Splits "a<sep>b" at the first `sep`; false when there is none.
static bool split(const char* s, size_t len, char sep, size_t* at) {
  for (size_t i = 0; i < len; ++i) {
    if (s[i] == sep) {
      *at = i;
      return true;
    }
  }
  return false;
}

bool virtio_mmio_parse_device(const char* value, size_t len, uint64_t* size,
                              uint64_t* base, uint32_t* irq) {
  size_t at, colon;
  if (!split(value, len, '@', &at) || !split(value, len, ':', &colon) ||
      colon < at) {
    return false;
  }
  size_t size_len = at;
  uint64_t multiplier = 1;
  if (size_len > 0 && (value[size_len - 1] == 'K' || value[size_len - 1] == 'k')) {
    multiplier = 1024;
    --size_len;
  } else if (size_len > 0 &&
             (value[size_len - 1] == 'M' || value[size_len - 1] == 'm')) {
    multiplier = 1024 * 1024;
    --size_len;
  }
  uint64_t irq64;
  if (!parse_u64(value, size_len, size) ||
      !parse_u64(value + at + 1, colon - at - 1, base) ||
      !parse_u64(value + colon + 1, len - colon - 1, &irq64) ||
      irq64 > 0xffffffffu) {
    return false;
  }
  *size *= multiplier;
  *irq = (uint32_t)irq64;
  return true;
}
