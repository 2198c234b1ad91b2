// Host byte streams behind the guest's consoles (QEMU calls them chardevs):
// stdio, a file (output only), a Unix socket the VMM listens on (one client
// at a time), a pseudo-terminal, or a callback (output only, for the
// library). The 16550 UART (COM1) and virtio-console both talk to one.
//
// A device drives a chardev with non-blocking calls and asks to be told when
// trying again is worthwhile, so nothing is buffered on the host: bytes the
// host cannot take stay in the device (the UART's transmit FIFO, the guest's
// transmit buffers), and host input stays in the kernel until the device has
// room for it.
//
// Threads: Read, Write and the Watch calls may come from any thread but never
// at the same time (the device serialises them under its lock); callbacks run
// on the event-loop thread, never inside one of those calls, and may call
// back into the chardev. Start and Stop run on the loop thread or while the
// loop does not run.
#ifndef VMM_DEVICES_CHARDEV_CHARDEV_H_
#define VMM_DEVICES_CHARDEV_CHARDEV_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/event_loop.h"

namespace vmm {

class Chardev {
 public:
  struct Callbacks {
    std::function<void()> readable;  // input may be there: call Read
    std::function<void()> writable;  // output may be accepted again: call Write
    std::function<void()> resized;   // the terminal's size changed: see TerminalSize
  };
  virtual ~Chardev() = default;

  // Before any other call. After Stop() a chardev can be started again by a
  // new user (a rebooted machine's UART): a socket client or a pty reader
  // stays connected across that.
  virtual void Start(Callbacks callbacks) = 0;
  // No callback runs once this returns, and nothing is watched.
  virtual void Stop() = 0;
  // Up to out.size() bytes of input; 0 when there is none now (the chardev
  // deals with end of input and disconnected clients itself).
  virtual size_t Read(absl::Span<uint8_t> out) = 0;
  // True once input has ended for good (stdin at its end, or closed), for a
  // device that can tell its driver (virtio-console's input port). A socket
  // client leaving is no end: another may connect.
  virtual bool InputEnded() const { return false; }
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
  // Where a user finds it, when that is not something they named: a pty's
  // /dev/pts/N. Empty otherwise.
  virtual std::string path() const { return ""; }
};

// stdin/stdout (input only with `with_input`: stdin has one reader). When
// stdout is a terminal, SIGWINCH is blocked in the calling thread (threads it
// starts later inherit that) and read from a signalfd, so a console learns
// about resizes; the mask is restored when the chardev goes.
absl::StatusOr<std::unique_ptr<Chardev>> MakeStdioChardev(EventLoop& loop, bool with_input = true);
// Appends to `path` (created 0644), written through (a reader of the file
// sees each byte as the guest sends it); no input.
absl::StatusOr<std::unique_ptr<Chardev>> MakeFileChardev(const std::string& path,
                                                         EventLoop& loop);
// Listens on a Unix stream socket at `path` (a stale socket there is
// replaced; a live one, another VM's, is refused). One client at a time: a
// second one waits in the backlog until the first disconnects; a disconnect
// is not an error.
absl::StatusOr<std::unique_ptr<Chardev>> MakeSocketChardev(const std::string& path,
                                                           EventLoop& loop);
// A new pseudo-terminal in raw mode; path() names its /dev/pts/N for the user
// (`screen /dev/pts/N`). Output is dropped while nobody has it open, and a
// reader that opens it later sees the guest from then on; whether one did is
// checked every kPtyReconnectPollMs while nobody has it open.
absl::StatusOr<std::unique_ptr<Chardev>> MakePtyChardev(EventLoop& loop);
inline constexpr int kPtyReconnectPollMs = 250;
// Output that would block on a pty is also retried this often (the kernel
// does not always wake a pty's writer when its reader makes room).
inline constexpr int kPtyOutputRetryMs = 20;
// Output handed to `sink` (on the thread that writes); input is what the
// host program sends with SendInput, from any thread. The input waits in a
// pipe (the kernel's 64 KiB) until the device reads it; what does not fit
// is refused, not buffered without bound.
class CallbackChardev : public Chardev {
 public:
  // `loop` runs the readable callback; null: no input (SendInput takes none).
  static absl::StatusOr<std::unique_ptr<CallbackChardev>> Create(
      std::function<void(std::string_view)> sink, EventLoop* loop);
  ~CallbackChardev() override;

  // How many of `bytes` were taken (0 when the pipe is full or there is no
  // input). Safe from any thread.
  size_t SendInput(std::string_view bytes);

  void Start(Callbacks callbacks) override;
  void Stop() override;
  size_t Read(absl::Span<uint8_t> out) override;
  size_t Write(absl::Span<const uint8_t> bytes) override;
  void WatchInput(bool watch) override;
  void WatchOutput(bool) override {}

 private:
  struct Input;
  CallbackChardev(std::function<void(std::string_view)> sink, std::unique_ptr<Input> input);
  const std::function<void(std::string_view)> sink_;
  std::unique_ptr<Input> input_;  // null without a loop
  Callbacks callbacks_;
};
// A CallbackChardev without input.
std::unique_ptr<Chardev> MakeCallbackChardev(std::function<void(std::string_view)> sink);

}  // namespace vmm

#endif  // VMM_DEVICES_CHARDEV_CHARDEV_H_
