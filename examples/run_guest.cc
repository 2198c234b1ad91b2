// Runs a guest through the library API and reports how it ended.
//
//   build/examples/run_guest build/tests/guests/hello.elf [cmdline]
#include <cstdio>
#include <string>

#include "vmm/vmm.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s KERNEL [CMDLINE]\n", argv[0]);
    return 2;
  }
  vmm::VmConfig config;
  config.kernel_path = argv[1];
  if (argc > 2) config.cmdline = argv[2];
  config.memory_bytes = 128 << 20;
  config.cpus = 1;
  config.timeout = absl::Seconds(60);
  size_t bytes = 0;
  config.serial.mode = vmm::SerialConfig::Mode::kCallback;
  config.serial.sink = [&bytes](std::string_view out) {
    bytes += out.size();
    std::fwrite(out.data(), 1, out.size(), stdout);
  };

  auto vm = vmm::Vm::Create(std::move(config));
  if (!vm.ok()) {
    std::fprintf(stderr, "run_guest: %s\n", std::string(vm.status().message()).c_str());
    return 1;
  }
  vmm::ExitStatus status = (*vm)->Run();
  std::printf("\nrun_guest: guest wrote %zu console bytes; exit code %d%s%s\n", bytes,
              status.ProcessExitCode(), status.message.empty() ? "" : ": ",
              status.message.c_str());
  return status.ProcessExitCode();
}
