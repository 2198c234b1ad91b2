// Puts a TTY into raw mode for the guest's serial console and restores it.
#ifndef VMM_VMM_TERMINAL_H_
#define VMM_VMM_TERMINAL_H_

#include <termios.h>

namespace vmm {

class RawTerminal {
 public:
  // Switches `fd` to raw mode if it is a TTY; otherwise does nothing.
  explicit RawTerminal(int fd);
  // Restores the saved mode.
  ~RawTerminal();
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

  bool active() const { return active_; }

 private:
  int fd_;
  bool active_ = false;
  termios saved_{};
};

}  // namespace vmm

#endif  // VMM_VMM_TERMINAL_H_
