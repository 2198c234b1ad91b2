// What `vmm --host-root ... -- CMD` asked for (vmm/cli.cc fills it;
// host_root.h acts on it).
#ifndef VMM_VMM_HOST_ROOT_OPTIONS_H_
#define VMM_VMM_HOST_ROOT_OPTIONS_H_

#include <string>
#include <vector>

namespace vmm::host_root {

struct HostRootOptions {
  bool enabled = false;               // --host-root
  std::vector<std::string> command;   // after --
  std::vector<std::string> rw_dirs;   // --rw DIR...; empty: the current directory
  std::string modules_dir;            // --modules DIR; empty: found from the kernel
  std::string user;                   // --user NAME|UID; empty: root
  bool verbose = false;               // --verbose: the guest's boot messages
  std::string virtiofsd;              // --virtiofsd PATH; empty: searched
};

}  // namespace vmm::host_root

#endif  // VMM_VMM_HOST_ROOT_OPTIONS_H_
