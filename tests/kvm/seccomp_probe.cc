// A program for seccomp_test.cc: runs hello.elf through the library with the
// given seccomp mode, and makes a system call no vCPU thread may make
// (socket) from the serial sink, which runs on the vCPU thread. Prints
// "socket: <result>" and the exit reason; under enforcement the kernel kills
// it with SIGSYS before it can print.
//
//   seccomp_probe <hello.elf> on|log|off
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>

#include "vmm/vmm.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: seccomp_probe <hello.elf> on|log|off\n");
    return 2;
  }
  const std::string mode = argv[2];
  vmm::VmConfig config;
  config.kernel_path = argv[1];
  config.memory_bytes = 64ull << 20;
  config.cmdline = "exit=0";
  config.seccomp = mode == "off"   ? vmm::SeccompMode::kOff
                   : mode == "log" ? vmm::SeccompMode::kLog
                                   : vmm::SeccompMode::kEnforce;
  static std::atomic<bool> probed{false};
  config.serial.mode = vmm::SerialConfig::Mode::kCallback;
  config.serial.sink = [](std::string_view) {
    if (probed.exchange(true)) return;
    long fd = syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
    std::printf("socket: %s\n", fd >= 0 ? "allowed" : std::strerror(errno));
    std::fflush(stdout);
    if (fd >= 0) close(static_cast<int>(fd));
  };
  auto vm = vmm::Vm::Create(std::move(config));
  if (!vm.ok()) {
    std::fprintf(stderr, "%s\n", std::string(vm.status().message()).c_str());
    return 1;
  }
  vmm::ExitStatus status = (*vm)->Run();
  std::printf("exit: %d\n", status.ProcessExitCode());
  return 0;
}
