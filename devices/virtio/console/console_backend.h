// Where the virtio console's bytes go and come from: stdio, a file (output
// only), a Unix socket the VMM listens on (one client at a time), or nothing.
//
// The device drives a backend with non-blocking calls and asks to be told
// when trying again is worthwhile, so nothing is ever buffered on the host:
// bytes the host cannot take stay in the guest's transmit buffers, and host
// input stays in the kernel until the guest has posted receive buffers.
//
// Threads: every call (and every callback) happens on the event-loop thread,
// except Start() and the destructor.
#ifndef VMM_DEVICES_VIRTIO_CONSOLE_CONSOLE_BACKEND_H_
#define VMM_DEVICES_VIRTIO_CONSOLE_CONSOLE_BACKEND_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/event_loop.h"
#include "base/unique_fd.h"

namespace vmm {

class ConsoleBackend {
 public:
  struct Callbacks {
    std::function<void()> readable;  // input may be there: call Read
    std::function<void()> writable;  // output may be accepted again: call Write
    std::function<void()> resized;   // the terminal's size changed: see TerminalSize
  };
  virtual ~ConsoleBackend() = default;

  // Once, before any other call.
  virtual void Start(Callbacks callbacks) = 0;
  // Up to out.size() bytes of input; 0 when there is none now (the backend
  // deals with end of input and disconnected clients itself).
  virtual size_t Read(absl::Span<uint8_t> out) = 0;
  // How many of `bytes` were taken; fewer (0 included) means "would block":
  // call again after the writable callback. Output nobody can receive (no
  // client, a closed stdout) is taken and dropped.
  virtual size_t Write(absl::Span<const uint8_t> bytes) = 0;
  // Whether the readable / writable callbacks should run (level-triggered).
  virtual void WatchInput(bool watch) = 0;
  virtual void WatchOutput(bool watch) = 0;
  // Terminal size (cols, rows) when the output is a terminal.
  virtual std::optional<std::pair<uint16_t, uint16_t>> TerminalSize() const {
    return std::nullopt;
  }
};

// stdin/stdout. When stdout is a terminal, SIGWINCH is blocked in the
// calling thread (threads it starts later inherit that) and read from a
// signalfd, so the guest learns about resizes; the mask is restored when the
// backend goes.
absl::StatusOr<std::unique_ptr<ConsoleBackend>> MakeStdioConsoleBackend(EventLoop& loop);
// Appends to `path` (created 0644); no input.
absl::StatusOr<std::unique_ptr<ConsoleBackend>> MakeFileConsoleBackend(const std::string& path,
                                                                       EventLoop& loop);
// Listens on a Unix stream socket at `path` (an existing socket file there is
// replaced). One client at a time: a second one waits in the backlog until
// the first disconnects; a disconnect is not an error.
absl::StatusOr<std::unique_ptr<ConsoleBackend>> MakeSocketConsoleBackend(const std::string& path,
                                                                         EventLoop& loop);

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_CONSOLE_CONSOLE_BACKEND_H_
