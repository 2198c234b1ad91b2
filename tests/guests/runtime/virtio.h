// The transport-independent part of a virtio 1.x driver: device status
// handshake, feature negotiation, configuration reads and interrupt
// plumbing. Transports (virtio_pci.c, virtio_mmio.c) embed struct
// virtio_dev and fill in its ops.
#ifndef VMM_TESTS_GUESTS_RUNTIME_VIRTIO_H_
#define VMM_TESTS_GUESTS_RUNTIME_VIRTIO_H_

#include <stdbool.h>
#include <stdint.h>

#define VIRTIO_F_INDIRECT_DESC (1ull << 28)
#define VIRTIO_F_EVENT_IDX (1ull << 29)
#define VIRTIO_F_VERSION_1 (1ull << 32)

#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

#define VIRTIO_ID_BLOCK 2

// How a device tells us that it used buffers.
enum virtio_irq_mode {
  VIRTIO_IRQ_POLL,  // nobody tells: the driver polls the used ring
  VIRTIO_IRQ_MSIX,  // PCI MSI-X
  VIRTIO_IRQ_INTX,  // PCI INTx through the IOAPIC (level, active low)
  VIRTIO_IRQ_GSI,   // virtio-mmio's interrupt line through the IOAPIC (edge)
};
const char* virtio_irq_mode_name(enum virtio_irq_mode mode);

struct virtio_dev;

struct virtio_transport_ops {
  uint8_t (*get_status)(struct virtio_dev* dev);
  void (*set_status)(struct virtio_dev* dev, uint8_t status);
  uint64_t (*device_features)(struct virtio_dev* dev);
  void (*set_driver_features)(struct virtio_dev* dev, uint64_t features);
  uint32_t (*config_generation)(struct virtio_dev* dev);
  // width 1, 2 or 4; offsets past the device's config read as 0.
  uint32_t (*config_read)(struct virtio_dev* dev, uint32_t offset,
                          uint32_t width);
  // 0 when the queue does not exist.
  uint16_t (*queue_max_size)(struct virtio_dev* dev, uint16_t queue);
  bool (*queue_enable)(struct virtio_dev* dev, uint16_t queue, uint16_t size,
                       uint64_t desc, uint64_t avail, uint64_t used,
                       const char** why);
  void (*notify)(struct virtio_dev* dev, uint16_t queue);
  // Prepares the interrupt path for dev->irq_mode (after each reset).
  bool (*irq_setup)(struct virtio_dev* dev, const char** why);
  // Called from the interrupt handler: acknowledge at the device.
  void (*irq_ack)(struct virtio_dev* dev);
};

struct virtio_dev {
  const struct virtio_transport_ops* ops;
  const char* transport;  // "pci" or "mmio"
  char location[16];      // "00:03.0" or the slot number
  uint32_t device_type;
  uint64_t offered;     // device features
  uint64_t negotiated;  // what FEATURES_OK accepted
  enum virtio_irq_mode irq_mode;
  uint8_t vector;  // CPU vector of the device's interrupts
  uint8_t apic_id;  // the CPU they go to
  uint32_t timeout_ms;  // bound of every wait on this device
  volatile uint32_t irq_count;
};

// Writes 0 to the status and waits (bounded) until it reads back 0.
bool virtio_reset(struct virtio_dev* dev, const char** why);

// Reset, ACKNOWLEDGE, DRIVER, then negotiates `wanted` & offered (VERSION_1
// is required) and checks that FEATURES_OK sticks. Also sets up the
// interrupt path for dev->irq_mode. On failure sets FAILED.
bool virtio_negotiate(struct virtio_dev* dev, uint64_t wanted,
                      const char** why);

// DRIVER_OK; false when the device then reports NEEDS_RESET or FAILED.
bool virtio_driver_ok(struct virtio_dev* dev, const char** why);

void virtio_set_failed(struct virtio_dev* dev);

// Device configuration reads. 64-bit fields are two 32-bit reads, retried
// until the configuration generation is stable.
uint32_t virtio_config_read(struct virtio_dev* dev, uint32_t offset,
                            uint32_t width);
uint64_t virtio_config_read64(struct virtio_dev* dev, uint32_t offset);

#endif  // VMM_TESTS_GUESTS_RUNTIME_VIRTIO_H_
