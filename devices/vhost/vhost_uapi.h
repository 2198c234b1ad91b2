// linux/vhost.h's structures and ioctl numbers, restated: the kernel header
// pulls in linux/virtio_ring.h, whose inline vring_init is C that a C++
// compiler refuses. Same layout (checked below) and the same numbers
// (VHOST_VIRTIO 0xAF; _IOW/_IOR/_IOWR from linux/ioctl.h).
#ifndef VMM_DEVICES_VHOST_VHOST_UAPI_H_
#define VMM_DEVICES_VHOST_VHOST_UAPI_H_

#include <linux/ioctl.h>

#include <cstdint>

namespace vmm::vhost_uapi {

struct VringState {
  uint32_t index;
  uint32_t num;
};
struct VringFile {
  uint32_t index;
  int32_t fd;  // -1 unbinds
};
struct VringAddr {
  uint32_t index;
  uint32_t flags;
  uint64_t desc_user_addr;
  uint64_t used_user_addr;
  uint64_t avail_user_addr;
  uint64_t log_guest_addr;
};
struct MemoryRegion {
  uint64_t guest_phys_addr;
  uint64_t memory_size;
  uint64_t userspace_addr;
  uint64_t flags_padding;
};
struct Memory {
  uint32_t nregions;
  uint32_t padding;
  MemoryRegion regions[];
};
static_assert(sizeof(VringState) == 8 && sizeof(VringFile) == 8 && sizeof(VringAddr) == 40);
static_assert(sizeof(MemoryRegion) == 32 && sizeof(Memory) == 8);

inline constexpr unsigned kVirtio = 0xAF;
inline constexpr unsigned long kGetFeatures = _IOR(kVirtio, 0x00, uint64_t);
inline constexpr unsigned long kSetFeatures = _IOW(kVirtio, 0x00, uint64_t);
inline constexpr unsigned long kSetOwner = _IO(kVirtio, 0x01);
inline constexpr unsigned long kSetMemTable = _IOW(kVirtio, 0x03, Memory);
inline constexpr unsigned long kSetVringNum = _IOW(kVirtio, 0x10, VringState);
inline constexpr unsigned long kSetVringAddr = _IOW(kVirtio, 0x11, VringAddr);
inline constexpr unsigned long kSetVringBase = _IOW(kVirtio, 0x12, VringState);
inline constexpr unsigned long kGetVringBase = _IOWR(kVirtio, 0x12, VringState);
inline constexpr unsigned long kSetVringKick = _IOW(kVirtio, 0x20, VringFile);
inline constexpr unsigned long kSetVringCall = _IOW(kVirtio, 0x21, VringFile);
inline constexpr unsigned long kNetSetBackend = _IOW(kVirtio, 0x30, VringFile);
inline constexpr unsigned long kVsockSetGuestCid = _IOW(kVirtio, 0x60, uint64_t);
inline constexpr unsigned long kVsockSetRunning = _IOW(kVirtio, 0x61, int);

}  // namespace vmm::vhost_uapi

#endif  // VMM_DEVICES_VHOST_VHOST_UAPI_H_
