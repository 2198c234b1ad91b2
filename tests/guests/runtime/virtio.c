#include "runtime/virtio.h"

#include "runtime/deadline.h"
#include "runtime/irq.h"

#define CONFIG_GENERATION_TRIES 16

const char* virtio_irq_mode_name(enum virtio_irq_mode mode) {
  switch (mode) {
    case VIRTIO_IRQ_POLL:
      return "poll";
    case VIRTIO_IRQ_MSIX:
      return "msix";
    case VIRTIO_IRQ_INTX:
      return "intx";
    case VIRTIO_IRQ_GSI:
      return "mmio-irq";
  }
  return "?";
}

bool virtio_reset(struct virtio_dev* dev, const char** why) {
  dev->ops->set_status(dev, 0);
  struct deadline deadline = deadline_start(DEADLINE_DEFAULT_TICKS);
  while (dev->ops->get_status(dev) != 0) {
    if (deadline_expired(&deadline)) {
      *why = "device status did not read 0 after reset";
      return false;
    }
    cpu_relax();
  }
  return true;
}

void virtio_set_failed(struct virtio_dev* dev) {
  dev->ops->set_status(dev, dev->ops->get_status(dev) | VIRTIO_STATUS_FAILED);
}

static void irq_handler(void* arg) {
  struct virtio_dev* dev = arg;
  dev->ops->irq_ack(dev);
  dev->irq_count = dev->irq_count + 1;
}

bool virtio_negotiate(struct virtio_dev* dev, uint64_t wanted,
                      const char** why) {
  if (!virtio_reset(dev, why)) return false;
  uint8_t status = VIRTIO_STATUS_ACKNOWLEDGE;
  dev->ops->set_status(dev, status);
  status |= VIRTIO_STATUS_DRIVER;
  dev->ops->set_status(dev, status);

  dev->offered = dev->ops->device_features(dev);
  if ((dev->offered & VIRTIO_F_VERSION_1) == 0) {
    *why = "device does not offer VERSION_1";
    virtio_set_failed(dev);
    return false;
  }
  dev->negotiated = dev->offered & (wanted | VIRTIO_F_VERSION_1);
  dev->ops->set_driver_features(dev, dev->negotiated);
  status |= VIRTIO_STATUS_FEATURES_OK;
  dev->ops->set_status(dev, status);
  if ((dev->ops->get_status(dev) & VIRTIO_STATUS_FEATURES_OK) == 0) {
    *why = "device did not accept the features (FEATURES_OK cleared)";
    virtio_set_failed(dev);
    return false;
  }

  if (dev->irq_mode != VIRTIO_IRQ_POLL) {
    irq_set_handler(dev->vector, irq_handler, dev);
  }
  if (!dev->ops->irq_setup(dev, why)) {
    virtio_set_failed(dev);
    return false;
  }
  return true;
}

bool virtio_driver_ok(struct virtio_dev* dev, const char** why) {
  uint8_t status = dev->ops->get_status(dev);
  dev->ops->set_status(dev, status | VIRTIO_STATUS_DRIVER_OK);
  status = dev->ops->get_status(dev);
  if (status & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)) {
    *why = "device reports NEEDS_RESET or FAILED after DRIVER_OK";
    return false;
  }
  if ((status & VIRTIO_STATUS_DRIVER_OK) == 0) {
    *why = "DRIVER_OK did not stick";
    return false;
  }
  return true;
}

uint32_t virtio_config_read(struct virtio_dev* dev, uint32_t offset,
                            uint32_t width) {
  return dev->ops->config_read(dev, offset, width);
}

uint64_t virtio_config_read64(struct virtio_dev* dev, uint32_t offset) {
  uint64_t value = 0;
  for (int i = 0; i < CONFIG_GENERATION_TRIES; ++i) {
    uint32_t before = dev->ops->config_generation(dev);
    uint32_t low = dev->ops->config_read(dev, offset, 4);
    uint32_t high = dev->ops->config_read(dev, offset + 4, 4);
    value = ((uint64_t)high << 32) | low;
    if (dev->ops->config_generation(dev) == before) break;
  }
  return value;
}
