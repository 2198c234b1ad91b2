#include "devices/virtio/console/console_config.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "devices/chardev/chardev.h"
#include "devices/virtio/console/virtio_console.h"

namespace vmm {
namespace {

using Spec = DeviceSpecOf<ConsoleConfig>;
using Mode = ConsoleConfig::Mode;

absl::Status SetMode(ConsoleConfig& console, Mode mode, absl::string_view key,
                     absl::string_view path) {
  if ((mode == Mode::kFile || mode == Mode::kSocket) && path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("'", key, "=' needs a path"));
  }
  console.mode = mode;
  console.path = std::string(path);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<VirtioDevice>> CreateConsole(const ConsoleConfig& console,
                                                            VirtioDeviceHost& host) {
  absl::StatusOr<std::unique_ptr<Chardev>> backend;
  switch (console.mode) {
    case Mode::kOff:
      return nullptr;
    case Mode::kStdio:
      backend = MakeStdioChardev(host.loop());
      break;
    case Mode::kFile:
      backend = MakeFileChardev(console.path, host.loop());
      break;
    case Mode::kSocket:
      backend = MakeSocketChardev(console.path, host.loop());
      break;
    case Mode::kPty:
      backend = MakePtyChardev(host.loop());
      break;
  }
  if (!backend.ok()) {
    return absl::Status(backend.status().code(),
                        absl::StrCat("console: ", backend.status().message()));
  }
  if (console.mode == Mode::kPty) host.Notice(absl::StrCat("hvc0 is on ", (*backend)->path()));
  return std::shared_ptr<VirtioDevice>(
      VirtioConsole::Create(std::move(*backend), {.generic_port = console.generic_port, .input_port = console.input_port}));
}

}  // namespace

const VirtioDeviceSpec& VirtioConsoleSpec() {
  static const Spec spec(Spec::Definition{
      .name = "virtio-console",
      .flag = "console",
      .summary = "the guest's hvc0, to vmm's stdio, a file, a Unix socket or a pty",
      .repeatable = false,
      .keys =
          {
              {{"stdio", "", "", "vmm's stdin and stdout (COM1 then gets no input)"},
               [](absl::string_view, ConsoleConfig& c) {
                 return SetMode(c, Mode::kStdio, "stdio", "");
               }},
              {{"file", "PATH", "", "output appended to PATH, no input"},
               [](absl::string_view value, ConsoleConfig& c) {
                 return SetMode(c, Mode::kFile, "file", value);
               }},
              {{"socket", "PATH", "",
                "a Unix socket vmm listens on, one client at a time, both ways"},
               [](absl::string_view value, ConsoleConfig& c) {
                 return SetMode(c, Mode::kSocket, "socket", value);
               }},
              {{"pty", "", "", "a new pseudo-terminal (its /dev/pts/N is named on stderr)"},
               [](absl::string_view, ConsoleConfig& c) {
                 return SetMode(c, Mode::kPty, "pty", "");
               }},
              {{"off", "", "", "no device (the default)"},
               [](absl::string_view, ConsoleConfig& c) {
                 return SetMode(c, Mode::kOff, "off", "");
               }},
          },
      .exactly_one_of = {{"stdio", "file", "socket", "pty", "off"}},
      .create = CreateConsole,
  });
  return spec;
}

const VirtioDeviceSpec& ConsoleConfig::spec() const { return VirtioConsoleSpec(); }

}  // namespace vmm
