// `vmm --kernel bzImage --host-root [--rw DIR]... -- CMD [ARGS...]` (issue
// 19): boots the kernel on the host's own root file system and runs one
// command in it, exiting with the command's status — what virtme-ng does
// with QEMU, in one process tree.
//
// How (Prepare, before the VM is created):
// - virtiofsd (Debian's, or QEMU 7.2's /usr/lib/qemu/virtiofsd) exports /
//   (read-only where that virtiofsd can: the Rust one's --readonly; the
//   guest mounts it read-only in any case) as virtio-fs tag "vmmroot", and
//   each --rw directory (default: the current one) read-write as
//   "vmmrw<N>". vmm starts them, waits for their sockets and ends them at
//   exit (they also die with vmm: PR_SET_PDEATHSIG).
// - An initramfs written into a memfd (cpio newc): our own static /init
//   (init/vmm_init.c, built with the project and embedded in vmm), the
//   kernel modules it needs that the kernel does not build in (virtio-pci,
//   virtio-fs, overlayfs, pvpanic; found in --modules DIR, else
//   <kernel's dir>/lib/modules/<release>, else /lib/modules/<release>), and
//   /vmm/config (the command, working directory, environment, user).
// - The kernel command line: the console on ttyS0, "quiet loglevel=1"
//   unless --verbose, panic=-1.
// - The command's stdio: a virtio console on vmm's stdio — hvc0 (a
//   terminal) when vmm's stdin is one, else plain byte streams: port 0
//   (/dev/vportNp0) for stdout/stderr and port 1 (/dev/vportNp1) for stdin,
//   whose host end closes at the end of vmm's stdin (the command sees end of
//   file); with MULTIPORT the device holds input until the guest has opened
//   its end, so nothing typed or piped early is lost. COM1 (the
//   kernel's messages, the init's own lines) goes to vmm's stderr.
// The init mounts the host's root read-only under a tmpfs overlay (writes
// stay in the guest), the --rw directories at their own paths, fresh /proc,
// /sys, /dev, /tmp and /run, switches root, runs the command on hvc0 (vmm's
// stdio) in the host's working directory, as --user if given, and reports
// its status through the debug-exit port as kExitMagic | status.
//
// vmm's exit status (ExitCode): the command's (0-255; 128+N for a signal),
// 125 when the init could not run it (its one line is on the console), and
// otherwise vmm's usual ones (4 kernel panic, 124 timeout, 1 vmm failure).
#ifndef VMM_VMM_HOST_ROOT_HOST_ROOT_H_
#define VMM_VMM_HOST_ROOT_HOST_ROOT_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "vmm/host_root/options.h"
#include "vmm/vmm.h"

namespace vmm::host_root {

// The status word the init writes to the debug-exit port.
inline constexpr uint32_t kExitMagic = 0x484f0000;  // "HO" << 16
inline constexpr uint32_t kInitFailed = 0x100;      // | a reason: the init failed
// vmm's exit status when the init could not run the command.
inline constexpr int kExitInitFailed = 125;

// The modules the init loads when the kernel has them as modules.
std::vector<std::string> WantedModules();
std::vector<std::string> OptionalModules();

// The initramfs for `options` (the init, `modules`' files, /vmm/config with
// `env` and `cwd`): exposed for tests.
struct InitramfsInputs {
  std::vector<std::string> command;
  std::vector<std::pair<std::string, std::string>> rw;  // tag, directory
  std::string cwd;
  std::vector<std::string> env;  // NAME=VALUE
  std::string uid, gid;          // empty: root
  bool stdin_tty = false, stdout_tty = false, verbose = false;
  std::vector<std::pair<std::string, std::string>> modules;  // file name, contents
};
std::string BuildInitramfs(const InitramfsInputs& inputs);

class HostRoot {
 public:
  // Sets `config` up to run options.command on the host's root: starts the
  // virtiofsd back-ends, writes the initramfs, adds the virtio-fs devices,
  // the command line and the console. Errors are one line: a kernel that is
  // not a bzImage or has no virtio-fs / overlayfs, a missing virtiofsd
  // (naming the package), a --rw directory that does not exist.
  static absl::StatusOr<std::unique_ptr<HostRoot>> Prepare(const HostRootOptions& options,
                                                           VmConfig* config);
  // The VM is created (its virtio-fs devices are connected): removes the
  // sockets and their directory now, and leaves the virtiofsd processes to
  // end with vmm (their connections close; PR_SET_PDEATHSIG) — vmm's run
  // thread is confined by then (seccomp: no kill, no unlink).
  void VmCreated();
  // Before VmCreated: ends the virtiofsd processes and removes the sockets.
  ~HostRoot();

  // vmm's exit status for how the guest ended; *message gets a line to
  // print for an init failure (empty otherwise).
  static int ExitCode(const ExitStatus& status, std::string* message);

 private:
  HostRoot() = default;

  void RemoveFiles();

  std::string socket_dir_;
  std::vector<std::string> files_;  // sockets and logs in socket_dir_
  std::vector<pid_t> daemons_;
  UniqueFd initramfs_;
};

}  // namespace vmm::host_root

#endif  // VMM_VMM_HOST_ROOT_HOST_ROOT_H_
