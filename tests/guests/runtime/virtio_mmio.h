// The virtio-mmio transport, version 2 (virtio 1.x 4.2): one register
// window per device, one interrupt line.
#ifndef VMM_TESTS_GUESTS_RUNTIME_VIRTIO_MMIO_H_
#define VMM_TESTS_GUESTS_RUNTIME_VIRTIO_MMIO_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/ioapic.h"
#include "runtime/virtio.h"

#define VIRTIO_MMIO_MAGIC 0x74726976u  // "virt"

enum virtio_mmio_probe_result {
  VIRTIO_MMIO_EMPTY,        // no magic, or a placeholder with device ID 0
  VIRTIO_MMIO_FOUND,
  VIRTIO_MMIO_UNSUPPORTED,  // e.g. a legacy (version 1) device; *why says
};

struct virtio_mmio_dev {
  struct virtio_dev vdev;
  uint64_t base;
  uint32_t slot;
  uint32_t gsi;
  struct ioapic ioapic;  // where the GSI is routed for irq mode GSI
};

// Looks at the window at `base`; on FOUND, `dev` is ready for
// virtio_negotiate once the caller has set the irq fields and ioapic.
enum virtio_mmio_probe_result virtio_mmio_probe(struct virtio_mmio_dev* dev,
                                                uint64_t base, uint32_t slot,
                                                uint32_t gsi,
                                                const char** why);

// Parses Linux's `virtio_mmio.device=<size>@<base>:<irq>` value (size with
// an optional K/M suffix). False when malformed.
bool virtio_mmio_parse_device(const char* value, size_t len, uint64_t* size,
                              uint64_t* base, uint32_t* irq);

#endif  // VMM_TESTS_GUESTS_RUNTIME_VIRTIO_MMIO_H_
