// virtio-console's config and spec: --console / --device virtio-console.
#ifndef VMM_DEVICES_VIRTIO_CONSOLE_CONSOLE_CONFIG_H_
#define VMM_DEVICES_VIRTIO_CONSOLE_CONSOLE_CONFIG_H_

#include <string>

#include "devices/virtio/device_spec.h"

namespace vmm {

// The virtio-console device (port 0, hvc0 in Linux).
struct ConsoleConfig : VirtioDeviceConfig {
  const VirtioDeviceSpec& spec() const override;
  bool uses_stdin() const override { return mode == Mode::kStdio; }

  enum class Mode {
    kOff,     // no virtio-console device
    kStdio,   // output to stdout, input from stdin (then COM1 does not read stdin)
    kFile,    // output appended to `path`, no input
    kSocket,  // a Unix stream socket at `path`; one client at a time, both ways
    kPty,     // a new pseudo-terminal, both ways; its /dev/pts/N is given as a notice
  };
  Mode mode = Mode::kOff;
  std::string path;
  // Port 0 as a plain byte stream (/dev/vportNp0 in Linux) rather than the
  // console (hvc0), with the end of input passed on (VirtioConsoleOptions).
  // Set by --host-root for a stdin that is not a terminal; no flag.
  bool generic_port = false;
  // Input on a port of its own whose end is passed on (VirtioConsoleOptions);
  // with generic_port, for --host-root.
  bool input_port = false;
  bool operator==(const ConsoleConfig&) const = default;
};

const VirtioDeviceSpec& VirtioConsoleSpec();

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_CONSOLE_CONSOLE_CONFIG_H_
