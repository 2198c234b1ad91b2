// evil.elf: a malicious virtio-blk driver. It attacks one disk (the
// "victim") in the way its command line names, checks from the guest side
// how the device reacted, then shows the VMM is still whole: the victim
// comes back after a reset, and a second, well-behaved disk (the "good"
// one, initialised before the attack and live throughout it) reads and
// writes correctly.
//
// Command line:
//   attack=NAME        one of the attacks in kAttacks below (reset_race
//                      and bar_race need two CPUs, desc_straddles_hole
//                      more than 3 GiB of RAM)
//   victim=pci|mmio    the transport of the attacked disk             [pci]
// The victim is the first virtio-blk found on that transport, the good disk
// the first other one (PCI functions on bus 0 by device ID through ECAM at
// 0xe0000000, then virtio-mmio slots at 0xd0000000 + i * 0x1000). The host
// gives them the serials "victim" and "good" and images holding the
// blk_pattern.h pattern of disk 0 (victim) and disk 1 (good).
//
// What the device must do (virtio 1.2): a driver that breaks the ring
// protocol gets DEVICE_NEEDS_RESET and no used entry; a bad request gets an
// error status (IOERR/UNSUPP) with nothing written; a register write the
// driver is not allowed to make is refused (reads back what the device
// keeps). Nothing the guest does may write the images except its valid
// writes.
//
// Output: "evil: check <what>: ok" or "evil: check <what>: FAIL" per check,
// then "evil: <attack>: all <n> checks ok" or "evil: <attack>: <f> of <n>
// checks FAILED".
// Exit (debug-exit value): 0 all checks passed; 100 a check failed;
// 102 the two disks were not found; 103 bad command line.
#include "evil.h"
#include "runtime/guest.h"
#include "runtime/irq.h"
#include "runtime/pci.h"
#include "runtime/string.h"

#define EXIT_NO_DISKS 102

static __attribute__((noreturn)) void bad_cmdline(const char* what) {
  console_printf("evil: FAIL: bad command line: %s\n", what);
  guest_debug_exit(GUEST_EXIT_BAD_CMDLINE);
}

// --- Discovery --------------------------------------------------------------

static bool take_pci(struct disk* d, uint16_t bdf) {
  const char* why = "";
  if (!virtio_pci_probe(&d->pci, bdf, &why)) {
    console_printf("evil: pci %02x:%02x.%u: %s\n", PCI_BUS(bdf), PCI_DEV(bdf),
                   PCI_FN(bdf), why);
    return false;
  }
  d->dev = &d->pci.vdev;
  d->is_pci = true;
  return true;
}

static void find_disks(bool victim_on_pci) {
  static struct pci_function functions[32];
  pci_select(PCI_ACCESS_ECAM, ECAM_BASE);
  uint32_t n = pci_enumerate(PCI_ACCESS_ECAM, 1, functions, 32);
  for (uint32_t i = 0; i < n; ++i) {
    if (functions[i].vendor != VIRTIO_PCI_VENDOR ||
        functions[i].device != VIRTIO_PCI_MODERN_DEVICE_BASE + VIRTIO_ID_BLOCK) {
      continue;
    }
    if (victim_on_pci && victim.dev == 0) {
      take_pci(&victim, functions[i].bdf);
    } else if (good.dev == 0) {
      take_pci(&good, functions[i].bdf);
    }
  }
  for (uint32_t slot = 0; slot < MMIO_SLOTS; ++slot) {
    struct disk* d = !victim_on_pci && victim.dev == 0 ? &victim
                     : good.dev == 0                   ? &good
                                                       : 0;
    if (d == 0) break;
    const char* why = "";
    if (virtio_mmio_probe(&d->mmio, MMIO_BASE + slot * MMIO_STRIDE, slot,
                          MMIO_GSI + slot, &why) != VIRTIO_MMIO_FOUND ||
        d->mmio.vdev.device_type != VIRTIO_ID_BLOCK) {
      continue;
    }
    d->dev = &d->mmio.vdev;
    d->is_pci = false;
  }
  if (victim.dev == 0 || good.dev == 0) {
    console_printf("evil: FAIL: need a victim disk on %s and a second disk\n",
                   victim_on_pci ? "pci" : "mmio");
    guest_debug_exit(EXIT_NO_DISKS);
  }
  victim.name = "victim";
  good.name = "good";
  struct disk* both[2] = {&victim, &good};
  for (int i = 0; i < 2; ++i) {
    struct virtio_dev* dev = both[i]->dev;
    dev->irq_mode = VIRTIO_IRQ_POLL;
    dev->vector = (uint8_t)(IRQ_DEVICE_VECTOR_BASE + i);
    dev->apic_id = 0;
    dev->timeout_ms = 2000;
    dev->irq_count = 0;
    for (int k = 0; k < 8; ++k) dev->location[k] = 0;
  }
}
struct attack {
  const char* name;
  void (*run)(void);
  bool pci_only;
};

static const struct attack kAttacks[] = {
    {"desc_outside_ram", attack_desc_outside_ram, false},
    {"desc_mmio_hole", attack_desc_mmio_hole, false},
    {"desc_straddles_hole", attack_desc_straddles_hole, false},
    {"len_wrap", attack_len_wrap, false},
    {"desc_loop", attack_desc_loop, false},
    {"chain_too_long", attack_chain_too_long, false},
    {"nested_indirect", attack_nested_indirect, false},
    {"avail_jump", attack_avail_jump, false},
    {"avail_head_out_of_range", attack_avail_head_out_of_range, false},
    {"readable_after_writable", attack_readable_after_writable, false},
    {"qsize_not_pow2", attack_qsize_not_pow2, false},
    {"queue_outside_ram", attack_queue_outside_ram, false},
    {"enable_before_features_ok", attack_enable_before_features_ok, false},
    {"notify_unready", attack_notify_unready, false},
    {"features_after_ok", attack_features_after_ok, false},
    {"queue_regs_while_live", attack_queue_regs_while_live, false},
    {"reset_mid_io", attack_reset_mid_io, false},
    {"reset_race", attack_reset_race, false},
    {"notify_flood", attack_notify_flood, false},
    {"status_storm", attack_status_storm, false},
    {"msix_bad_address", attack_msix_bad_address, true},
    {"bar_on_ram", attack_bar_on_ram, true},
    {"bar_on_device", attack_bar_on_device, true},
    {"bar_race", attack_bar_race, true},
    {"pci_readonly_writes", attack_pci_readonly_writes, true},
    {"pci_cfg_window", attack_pci_cfg_window, true},
    {"config_port_garbage", attack_config_port_garbage, true},
    {"blk_sector_overflow", attack_blk_sector_overflow, false},
    {"blk_write_readonly", attack_blk_write_readonly, false},
    {"getid_oversize", attack_getid_oversize, false},
};

void guest_main(const struct hvm_start_info* info) {
  const char* cmdline = pvh_cmdline(info);
  console_printf("evil: cmdline: %s\n", cmdline);
  size_t len = 0;
  const char* name = cmdline_find(cmdline, "attack", &len);
  if (name == 0) bad_cmdline("attack=NAME missing");
  const struct attack* attack = 0;
  for (size_t i = 0; i < sizeof(kAttacks) / sizeof(kAttacks[0]); ++i) {
    const char* n = kAttacks[i].name;
    size_t k = 0;
    while (n[k] != '\0' && k < len && n[k] == name[k]) ++k;
    if (n[k] == '\0' && k == len) attack = &kAttacks[i];
  }
  if (attack == 0) bad_cmdline("unknown attack");
  bool victim_on_pci = !cmdline_equals(cmdline, "victim", "mmio");
  if (attack->pci_only && !victim_on_pci) bad_cmdline("this attack needs victim=pci");

  memset(&victim, 0, sizeof(victim));
  memset(&good, 0, sizeof(good));
  find_disks(victim_on_pci);

  // Both disks up; the good one does some work before the attack.
  check(init_disk(&good, &kDefaultOptions), "good disk initialised (%s)", good.dev->transport);
  check(init_disk(&victim, &kDefaultOptions), "victim initialised (%s)",
        victim.dev->transport);
  check(memcmp(victim.blk.serial, "victim", 7) == 0 && memcmp(good.blk.serial, "good", 5) == 0,
        "serials: victim \"%s\", good \"%s\"", victim.blk.serial, good.blk.serial);
  check(write_pattern(&good, GOOD_PATTERN, GOOD_FIRST, GOOD_COUNT / 2),
        "good disk: write before the attack");

  console_printf("evil: attack %s on the %s victim\n", attack->name, victim.dev->transport);
  attack->run();

  // The good disk never noticed.
  check((status_of(&good) & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)) == 0 &&
            (status_of(&good) & VIRTIO_STATUS_DRIVER_OK) != 0,
        "good disk status untouched");
  check(write_pattern(&good, GOOD_PATTERN, GOOD_FIRST + GOOD_COUNT / 2, GOOD_COUNT / 2),
        "good disk: write after the attack");
  uint8_t status = 0xff;
  check(request(&good, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, 0, &status, 0) &&
            status == VIRTIO_BLK_S_OK,
        "good disk: flush");
  check(read_and_compare(&good, GOOD_PATTERN, GEN_HOST, 0, GOOD_FIRST) &&
            read_and_compare(&good, GOOD_PATTERN, GEN_GUEST, GOOD_FIRST, GOOD_COUNT),
        "good disk: reads back the host's and its own data");

  // The victim recovers through a reset.
  const char* why = "";
  victim.dev->irq_mode = VIRTIO_IRQ_POLL;
  check(virtio_reset(victim.dev, &why), "victim reset reads back 0");
  check(init_disk(&victim, &kDefaultOptions) &&
            read_and_compare(&victim, VICTIM_PATTERN, GEN_HOST, 0, 4),
        "victim serves again after the reset");
  virtio_reset(victim.dev, &why);

  uint8_t vector = 0;
  uint32_t unexpected = irq_unexpected(&vector);
  check(unexpected == 0, "no interrupts on unexpected vectors (%u)", unexpected);
  if (failures != 0) {
    console_printf("evil: %s: %u of %u checks FAILED\n", attack->name, failures, checks);
    guest_debug_exit(GUEST_EXIT_FAILURE);
  }
  console_printf("evil: %s: all %u checks ok\n", attack->name, checks);
  guest_debug_exit(0);
}

