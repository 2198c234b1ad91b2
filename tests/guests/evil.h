// What the parts of evil.elf share: the two disks, the request and ring
// helpers the attacks are built from, the check reporter, and the attacks
// (evil_ring_attacks.c: descriptors, rings, queue and status registers;
// evil_device_attacks.c: PCI and virtio-blk requests). evil.c says what
// the guest does as a whole.
#ifndef VMM_TESTS_GUESTS_EVIL_H_
#define VMM_TESTS_GUESTS_EVIL_H_

#include <stdbool.h>
#include <stdint.h>

#include "runtime/virtio_blk.h"
#include "runtime/virtio_mmio.h"
#include "runtime/virtio_pci.h"

#define ECAM_BASE 0xe0000000u
#define MMIO_BASE 0xd0000000u
#define MMIO_STRIDE 0x1000u
#define MMIO_SLOTS 8
#define MMIO_GSI 16
#define LAPIC_PADDR 0xfee00000u

#define SECTOR VIRTIO_BLK_SECTOR_SIZE
#define VICTIM_PATTERN 0  // blk_pattern.h disk index of each image
#define GOOD_PATTERN 1
#define GEN_HOST 0
#define GEN_GUEST 1
// The good disk: generation 1 goes to [8, 12) before the attack and to
// [12, 16) after it.
#define GOOD_FIRST 8
#define GOOD_COUNT 8
// reset_mid_io writes generation 1 to [32, 64) of the victim.
#define RESET_FIRST 32
#define RESET_COUNT 32
#define SMALL_QUEUE 16

// virtio_pci common configuration offsets used directly.
#define COMMON_DRIVER_FEATURE_SELECT 8
#define COMMON_DRIVER_FEATURE 12
#define COMMON_CONFIG_MSIX_VECTOR 16
#define COMMON_DEVICE_STATUS 20
#define COMMON_QUEUE_SELECT 22
#define COMMON_QUEUE_MSIX_VECTOR 26
#define COMMON_QUEUE_DESC 32
#define VIRTIO_MSI_NO_VECTOR 0xffff
#define MMIO_REG_QUEUE_NOTIFY 0x050
#define MMIO_REG_QUEUE_SEL 0x030
#define MMIO_REG_QUEUE_DESC_LOW 0x080

struct disk {
  const char* name;
  struct virtio_dev* dev;
  struct virtio_pci_dev pci;
  struct virtio_mmio_dev mmio;
  bool is_pci;
  struct virtio_blk blk;
};

struct request {
  struct {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
  } header;
  struct {
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags;
  } segment;
  volatile uint8_t status;
};

extern struct disk victim, good;
// Device-visible scratch memory (never the stack).
extern uint8_t buffer[RESET_COUNT * SECTOR];
extern struct virtq_desc table[2048];  // indirect tables the attacks build
extern struct request requests[RESET_COUNT];
extern const struct virtio_blk_options kDefaultOptions;  // queue size 16
extern uint32_t checks, failures;

// Prints "evil: check <what>: ok" or ": FAIL" and counts it.
void check(bool ok, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

bool init_disk(struct disk* d, const struct virtio_blk_options* options);
uint8_t status_of(struct disk* d);
uint16_t used_idx(const struct virtq* vq);
// Waits (bounded, ~0.5 s) until the device shows DEVICE_NEEDS_RESET.
bool wait_needs_reset(struct disk* d);
// Gives the device time to act on a notify it should ignore.
void settle(void);
// Places `head` in the next avail slot, publishes it and notifies.
void raw_publish(struct virtq* vq, uint16_t head);
void set_desc(struct virtq_desc* d, const volatile void* addr, uint32_t len,
              uint16_t flags, uint16_t next);
// requests[i] with a header for (type, sector) and status 0xff.
struct request* prepare(uint32_t i, uint32_t type, uint64_t sector);
// Runs one well-formed request: header, `len` bytes at `data` (none when len
// is 0), a DISCARD/WRITE_ZEROES segment when `segment`, status. False when
// it does not come back.
bool request(struct disk* d, uint32_t type, uint64_t sector, void* data,
             uint32_t len, bool segment, uint32_t num_sectors, uint8_t* status,
             uint32_t* used_len);
void fill_pattern(uint8_t* buf, uint32_t disk, uint32_t gen, uint64_t first,
                  uint32_t count);
bool sector_is(const uint8_t* buf, uint32_t disk, uint32_t gen, uint64_t sector);
// Reads `count` sectors from `first` and compares with generation `gen`.
bool read_and_compare(struct disk* d, uint32_t disk, uint32_t gen,
                      uint64_t first, uint32_t count);
bool write_pattern(struct disk* d, uint32_t disk, uint64_t first, uint32_t count);
// Negotiates `features` (& offered) on the victim without setting up a queue.
bool negotiate_only(uint64_t features);
// A three-descriptor request whose data descriptor is (addr, len, flags):
// publishes it and expects DEVICE_NEEDS_RESET, no used entry, no status.
void expect_broken_chain(const char* what, uint32_t type, uint64_t addr,
                         uint32_t len, uint16_t data_flags);
// One request on the victim; its status must be want1 or want2.
void expect_status(const char* what, uint32_t type, uint64_t sector, void* data,
                   uint32_t len, bool segment, uint32_t num, uint8_t want1,
                   uint8_t want2);

// The attacks. Each starts with both disks initialised (kDefaultOptions)
// and may leave the victim in any state: evil.c resets it afterwards.
void attack_desc_outside_ram(void);
void attack_desc_mmio_hole(void);
void attack_len_wrap(void);
void attack_desc_loop(void);
void attack_chain_too_long(void);
void attack_nested_indirect(void);
void attack_avail_jump(void);
void attack_avail_head_out_of_range(void);
void attack_readable_after_writable(void);
void attack_qsize_not_pow2(void);
void attack_queue_outside_ram(void);
void attack_enable_before_features_ok(void);
void attack_notify_unready(void);
void attack_features_after_ok(void);
void attack_queue_regs_while_live(void);
void attack_reset_mid_io(void);
void attack_status_storm(void);
void attack_msix_bad_address(void);
void attack_bar_on_ram(void);
void attack_bar_on_device(void);
void attack_pci_readonly_writes(void);
void attack_blk_sector_overflow(void);
void attack_blk_write_readonly(void);
void attack_getid_oversize(void);
void attack_pci_cfg_window(void);
void attack_reset_race(void);  // needs 2 CPUs
void attack_bar_race(void);    // needs 2 CPUs
void attack_notify_flood(void);  // needs 2 CPUs
void attack_desc_straddles_hole(void);  // needs > 3 GiB of RAM
void attack_config_port_garbage(void);

#endif  // VMM_TESTS_GUESTS_EVIL_H_
