// A cpio archive in the "newc" format (Documentation/driver-api/
// early-userspace/buffer-format.rst), what Linux unpacks as an initramfs:
// host_root.cc writes the --host-root guest's one with it.
#ifndef VMM_VMM_HOST_ROOT_CPIO_H_
#define VMM_VMM_HOST_ROOT_CPIO_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace vmm::host_root {

class CpioWriter {
 public:
  // Paths are relative ("init", "lib/modules/fuse.ko"); parents first.
  void Directory(absl::string_view path, uint32_t mode = 0755);
  void File(absl::string_view path, absl::string_view data, uint32_t mode = 0644);
  void CharDevice(absl::string_view path, uint32_t major, uint32_t minor, uint32_t mode = 0600);
  // The archive, ended by its trailer. The writer is empty afterwards.
  std::string Finish();

 private:
  void Entry(absl::string_view path, uint32_t mode, absl::string_view data, uint32_t rdev_major,
             uint32_t rdev_minor);

  std::string out_;
  uint32_t next_inode_ = 1;
};

}  // namespace vmm::host_root

#endif  // VMM_VMM_HOST_ROOT_CPIO_H_
