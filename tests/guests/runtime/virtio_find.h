// Finds the virtio devices of one type for the small single-device test
// guests (rng.c, console.c, vsock.c): modern virtio-pci functions on bus 0 (ECAM) and
// virtio-mmio slots found by probing. Devices are polled, or interrupt
// driven: MSI-X on PCI, the slot's GSI (16 + slot, IOAPIC at its default
// address) on virtio-mmio — the caller has called irq_init first.
#ifndef VMM_TESTS_GUESTS_RUNTIME_VIRTIO_FIND_H_
#define VMM_TESTS_GUESTS_RUNTIME_VIRTIO_FIND_H_

#include <stdbool.h>
#include <stdint.h>

#include "runtime/virtio.h"

#define VIRTIO_FIND_MAX 8

struct virtio_find_options {
  bool pci;    // look on PCI bus 0 through ECAM at 0xe0000000
  bool mmio;   // probe the 8 virtio-mmio slots at 0xd0000000
  uint32_t timeout_ms;
  bool interrupts;
  uint8_t apic_id;  // where interrupts go
};

// The options the single-device guests take on their command line: pci=off,
// mmio=off, timeout_ms=N (1..600000, default 5000) and irq=on, which also
// sets up the interrupt controller here. False for a malformed value, whose
// key is then in *bad_key.
bool virtio_find_options_from_cmdline(const char* cmdline, struct virtio_find_options* o,
                                      const char** bad_key);

// Fills out[] with up to VIRTIO_FIND_MAX devices of `type` (PCI first, then
// virtio-mmio), each ready for virtio_negotiate; returns how many. A device
// that cannot be probed is reported on the console and counted in *failed.
uint32_t virtio_find(uint32_t type, const struct virtio_find_options* options,
                     struct virtio_dev** out, uint32_t* failed);

#endif  // VMM_TESTS_GUESTS_RUNTIME_VIRTIO_FIND_H_
