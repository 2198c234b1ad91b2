// Fuzzes the command-line front end: the input, split at NUL or newline bytes, is argv for
// ParseCommandLine (flags, device options, sizes, serial and timeout values); the first
// argument also goes to each value parser and each device kind's parser on its own.
#include <cstdint>
#include <string>
#include <vector>

#include "vmm/cli.h"
#include "devices/virtio/registry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vmm::cli;
  std::vector<std::string> args = {"vmm"};
  std::string current;
  for (size_t i = 0; i < size && args.size() < 64; ++i) {
    if (data[i] == 0 || data[i] == '\n') {
      args.push_back(std::move(current));
      current.clear();
    } else {
      current.push_back(static_cast<char>(data[i]));
    }
  }
  if (!current.empty()) args.push_back(std::move(current));
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  auto request = ParseCommandLine(static_cast<int>(args.size()), argv.data());
  if (!request.ok()) {
    (void)ExitCodeForError(request.status());
    (void)UsageErrorLine(request.status());
  }
  if (args.size() > 1) {
    absl::string_view first = args[1];
    for (const vmm::VirtioDeviceSpec* spec : vmm::VirtioDeviceSpecs()) (void)spec->Parse(first);
    (void)ParseByteSize(first);
    (void)ParseSerialSpec(first);
    (void)ParseTimeout(first);
  }
  return 0;
}
