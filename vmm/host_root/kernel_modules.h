// The kernel modules a --host-root guest needs (virtio-pci, virtio-fs,
// overlayfs, ...), found in the kernel's own module tree (a
// /lib/modules/<release> directory: modules.dep, modules.builtin) with
// their dependencies, so that the initramfs can carry them.
#ifndef VMM_VMM_HOST_ROOT_KERNEL_MODULES_H_
#define VMM_VMM_HOST_ROOT_KERNEL_MODULES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace vmm::host_root {

struct KernelModule {
  std::string name;  // "virtiofs" ('-' written '_')
  std::string path;  // the .ko (or .ko.xz/.ko.gz) file in the tree
};

// What `wanted` needs from the module tree `dir`, in load order (each
// module after its dependencies, each once); modules the kernel builds in
// (modules.builtin) are left out. `optional` modules are added when the
// tree has them and skipped silently when it has not. A wanted module that
// is neither built in nor in the tree is NotFound naming it; a tree without
// modules.dep is NotFound naming the file.
absl::StatusOr<std::vector<KernelModule>> ResolveModules(const std::string& dir,
                                                         absl::Span<const std::string> wanted,
                                                         absl::Span<const std::string> optional);

// A module file's contents, decompressed (.ko.xz, .ko.gz; .ko as is):
// finit_module takes them as they are. Zstandard is refused by name.
absl::StatusOr<std::string> ReadModule(const KernelModule& module);

}  // namespace vmm::host_root

#endif  // VMM_VMM_HOST_ROOT_KERNEL_MODULES_H_
