#include "vmm/host_root/host_root.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "arch/x86_64/loader/bzimage.h"
#include "base/status_macros.h"
#include "devices/virtio/console/console_config.h"
#include "devices/virtio/fs/fs_config.h"
#include "vmm/host_root/cpio.h"
#include "vmm/host_root/init_program.h"
#include "vmm/host_root/kernel_modules.h"

namespace vmm::host_root {
namespace {

constexpr const char* kVirtiofsdPaths[] = {"/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd",
                                           "/usr/local/lib/vmm/virtiofsd"};

absl::Status Errno(absl::string_view what) { return absl::ErrnoToStatus(errno, what); }

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

absl::StatusOr<std::string> ReadFile(const std::string& path, size_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::string bytes(limit, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(limit));
  bytes.resize(static_cast<size_t>(in.gcount()));
  return bytes;
}

std::string Dirname(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

// Runs `argv` and returns what it printed on stdout and stderr (the first
// 64 KiB), for probing a program's options.
std::string Probe(const std::vector<std::string>& argv) {
  // Built before fork: the child of a threaded process may only make
  // async-signal-safe calls (no malloc).
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return "";
  const pid_t pid = ::fork();
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // vmm blocks its stop signals
    ::dup2(pipe_fds[1], 1);
    ::dup2(pipe_fds[1], 2);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while (pid > 0 && out.size() < 65536 && (n = ::read(pipe_fds[0], buf, sizeof(buf))) > 0) {
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);
  if (pid > 0) ::waitpid(pid, nullptr, 0);
  return out;
}

struct Virtiofsd {
  std::string path;
  bool rust = false;  // Debian's virtiofsd (Rust): --shared-dir, --readonly
};

absl::StatusOr<Virtiofsd> FindVirtiofsd(const std::string& given) {
  Virtiofsd d;
  if (!given.empty()) {
    if (::access(given.c_str(), X_OK) != 0) {
      return absl::NotFoundError(absl::StrCat("--virtiofsd ", given, ": not an executable"));
    }
    d.path = given;
  } else {
    for (const char* path : kVirtiofsdPaths) {
      if (::access(path, X_OK) == 0) {
        d.path = path;
        break;
      }
    }
    if (d.path.empty()) {
      return absl::NotFoundError(
          "--host-root needs virtiofsd: install Debian's virtiofsd package (apt-get install "
          "virtiofsd), or give --virtiofsd PATH");
    }
  }
  d.rust = absl::StrContains(Probe({d.path, "--help"}), "--shared-dir");
  return d;
}

// The kernel's module tree: --modules, else one next to the kernel (as
// tests/linux/fetch-kernel leaves it), else the host's for that release.
absl::StatusOr<std::string> ModuleTree(const HostRootOptions& options, const std::string& kernel) {
  if (!options.modules_dir.empty()) {
    if (!IsDirectory(options.modules_dir)) {
      return absl::NotFoundError(absl::StrCat("--modules ", options.modules_dir,
                                              ": no such directory"));
    }
    return options.modules_dir;
  }
  ASSIGN_OR_RETURN(std::string head, ReadFile(kernel, 1 << 20));
  absl::StatusOr<std::string> release = x86_64::BzImageKernelRelease(
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(head.data()), head.size()));
  if (!release.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        kernel, ": cannot tell its release (", release.status().message(),
        "): give --modules DIR (its /lib/modules/RELEASE tree)"));
  }
  const std::string dir = Dirname(kernel);
  for (const std::string& candidate :
       {absl::StrCat(dir, "/lib/modules/", *release), absl::StrCat(dir, "/../lib/modules/", *release),
        absl::StrCat("/lib/modules/", *release)}) {
    if (::access(absl::StrCat(candidate, "/modules.dep").c_str(), R_OK) == 0) return candidate;
  }
  return absl::NotFoundError(absl::StrCat(
      "no module tree for kernel ", *release, " (looked next to ", kernel,
      " and in /lib/modules/", *release, "): give --modules DIR"));
}

// Starts one virtiofsd serving `dir` on `socket`, its stderr into `log`.
absl::StatusOr<pid_t> StartVirtiofsd(const Virtiofsd& d, const std::string& dir,
                                     const std::string& socket, bool read_only,
                                     const std::string& log) {
  std::vector<std::string> argv = {d.path, absl::StrCat("--socket-path=", socket)};
  // Its namespace sandbox pivot_root()s into the shared directory, which
  // fails for "/" (EBUSY: seen with QEMU 7.2's); chroot(2) into "/" is what
  // there is to do for the whole root.
  const bool whole_root = dir == "/";
  if (d.rust) {
    argv.insert(argv.end(), {absl::StrCat("--shared-dir=", dir), "--cache=auto"});
    if (read_only) argv.push_back("--readonly");
    if (whole_root) argv.push_back("--sandbox=chroot");
  } else {
    argv.insert(argv.end(), {"-o", absl::StrCat("source=", dir), "-o", "cache=auto"});
    if (whole_root) argv.insert(argv.end(), {"-o", "sandbox=chroot"});
  }
  // Built before fork: the child of a threaded process may only make
  // async-signal-safe calls (no malloc).
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (log_fd < 0) return Errno(absl::StrCat("cannot create ", log));
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    return Errno("fork (virtiofsd)");
  }
  if (pid == 0) {
    // It must not outlive vmm, however vmm ends.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // vmm blocks its stop signals
    const int null_fd = ::open("/dev/null", O_RDWR);
    ::dup2(null_fd, 0);
    ::dup2(null_fd, 1);
    ::dup2(log_fd, 2);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(log_fd);
  return pid;
}

// Waits (up to 10 s) for `pid`'s socket; its last log line if it died.
absl::Status WaitForSocket(pid_t pid, const std::string& socket, const std::string& log) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    struct stat st;
    if (::stat(socket.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) return absl::OkStatus();
    int status;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      std::string last = ReadFile(log, 1 << 16).value_or("");
      std::vector<std::string> lines = absl::StrSplit(last, '\n', absl::SkipWhitespace());
      return absl::UnavailableError(absl::StrCat(
          "virtiofsd exited before serving ", socket,
          lines.empty() ? "" : absl::StrCat(": ", lines.back())));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::DeadlineExceededError(absl::StrCat("virtiofsd did not create ", socket, " in 10 s"));
}

}  // namespace

std::vector<std::string> WantedModules() {
  return {"virtio_pci", "virtiofs", "overlay", "virtio_console"};
}
std::vector<std::string> OptionalModules() { return {"pvpanic_mmio"}; }

std::string BuildInitramfs(const InitramfsInputs& in) {
  std::string config;
  auto record = [&config](absl::string_view key, absl::string_view value) {
    absl::StrAppend(&config, key, "=", value);
    config.push_back('\0');
  };
  for (const auto& [file, bytes] : in.modules) record("module", file);
  for (const std::string& arg : in.command) record("arg", arg);
  for (const std::string& env : in.env) record("env", env);
  for (const auto& [tag, dir] : in.rw) record("rw", absl::StrCat(tag, ":", dir));
  record("cwd", in.cwd);
  if (!in.uid.empty()) record("uid", in.uid);
  if (!in.gid.empty()) record("gid", in.gid);
  record("stdin_tty", in.stdin_tty ? "1" : "0");
  record("console", in.stdin_tty ? "hvc" : "vport");
  record("stdout_tty", in.stdout_tty ? "1" : "0");
  record("verbose", in.verbose ? "1" : "0");

  CpioWriter cpio;
  for (const char* dir : {"dev", "vmm", "vmm/modules", "vmm/lower", "vmm/rw", "vmm/root"}) {
    cpio.Directory(dir);
  }
  cpio.CharDevice("dev/console", 5, 1);
  cpio.File("init", InitProgram(), 0755);
  cpio.File("vmm/config", config);
  for (const auto& [file, bytes] : in.modules) cpio.File(absl::StrCat("vmm/modules/", file), bytes);
  return cpio.Finish();
}

absl::StatusOr<std::unique_ptr<HostRoot>> HostRoot::Prepare(const HostRootOptions& options,
                                                            VmConfig* config) {
  if (options.command.empty()) {
    return absl::InvalidArgumentError("--host-root needs a command after --");
  }
  if (config->kernel_path.empty()) return absl::InvalidArgumentError("--host-root needs --kernel");
  if (!config->initrd_path.empty()) {
    return absl::InvalidArgumentError("--host-root writes its own initramfs: drop --initrd");
  }
  InitramfsInputs in;
  in.command = options.command;
  in.verbose = options.verbose;
  in.stdin_tty = ::isatty(0) == 1;
  in.stdout_tty = ::isatty(1) == 1;
  char cwd[4096];
  in.cwd = ::getcwd(cwd, sizeof(cwd)) != nullptr ? cwd : "/";
  std::vector<std::string> rw_dirs = options.rw_dirs;
  if (rw_dirs.empty()) rw_dirs.push_back(in.cwd);
  for (std::string& dir : rw_dirs) {
    char real[PATH_MAX];
    if (::realpath(dir.c_str(), real) == nullptr || !IsDirectory(real)) {
      return absl::NotFoundError(absl::StrCat("--rw ", dir, ": no such directory"));
    }
    dir = real;
  }

  // The user the command runs as, and its environment.
  std::string home = "/root", user_name = "root";
  if (!options.user.empty()) {
    struct passwd* pw = nullptr;
    uint32_t uid;
    pw = absl::SimpleAtoi(options.user, &uid) ? ::getpwuid(uid) : ::getpwnam(options.user.c_str());
    if (pw == nullptr) {
      return absl::NotFoundError(absl::StrCat("--user ", options.user, ": no such user here"));
    }
    in.uid = absl::StrCat(pw->pw_uid);
    in.gid = absl::StrCat(pw->pw_gid);
    home = pw->pw_dir;
    user_name = pw->pw_name;
  }
  in.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            absl::StrCat("HOME=", home), absl::StrCat("USER=", user_name),
            absl::StrCat("LOGNAME=", user_name)};
  const char* term = std::getenv("TERM");
  in.env.push_back(absl::StrCat("TERM=", in.stdout_tty && term != nullptr ? term : "dumb"));
  for (const char* name : {"LANG", "LC_ALL"}) {
    if (const char* v = std::getenv(name)) in.env.push_back(absl::StrCat(name, "=", v));
  }

  // The kernel's modules.
  ASSIGN_OR_RETURN(std::string tree, ModuleTree(options, config->kernel_path));
  ASSIGN_OR_RETURN(std::vector<KernelModule> modules,
                   ResolveModules(tree, WantedModules(), OptionalModules()));
  for (const KernelModule& m : modules) {
    ASSIGN_OR_RETURN(std::string bytes, ReadModule(m));
    in.modules.emplace_back(absl::StrCat(m.name, ".ko"), std::move(bytes));
  }

  // The back-ends.
  ASSIGN_OR_RETURN(Virtiofsd virtiofsd, FindVirtiofsd(options.virtiofsd));
  std::unique_ptr<HostRoot> root(new HostRoot());
  char dir_template[] = "/tmp/vmm-host-root-XXXXXX";
  if (::mkdtemp(dir_template) == nullptr) return Errno("mkdtemp /tmp/vmm-host-root-XXXXXX");
  root->socket_dir_ = dir_template;
  std::vector<std::pair<std::string, std::string>> shares = {{"vmmroot", "/"}};
  for (size_t i = 0; i < rw_dirs.size(); ++i) {
    shares.emplace_back(absl::StrCat("vmmrw", i), rw_dirs[i]);
    in.rw.emplace_back(absl::StrCat("vmmrw", i), rw_dirs[i]);
  }
  for (const auto& [tag, dir] : shares) {
    const std::string socket = absl::StrCat(root->socket_dir_, "/", tag, ".sock");
    const std::string log = absl::StrCat(root->socket_dir_, "/", tag, ".log");
    root->files_.insert(root->files_.end(), {socket, log});
    ASSIGN_OR_RETURN(pid_t pid, StartVirtiofsd(virtiofsd, dir, socket, tag == "vmmroot", log));
    root->daemons_.push_back(pid);
    RETURN_IF_ERROR(WaitForSocket(pid, socket, log));
    FsConfig fs;
    fs.tag = tag;
    fs.socket_path = socket;
    config->devices.push_back(fs);
  }

  // The initramfs, in a memfd the loader opens by its /proc path.
  const std::string image = BuildInitramfs(in);
  root->initramfs_.Reset(::memfd_create("vmm-host-root-initramfs", MFD_CLOEXEC));
  if (!root->initramfs_.valid()) return Errno("memfd_create (the initramfs)");
  for (size_t done = 0; done < image.size();) {
    const ssize_t n = ::write(root->initramfs_.get(), image.data() + done, image.size() - done);
    if (n <= 0) return Errno("writing the initramfs");
    done += static_cast<size_t>(n);
  }
  config->initrd_path = absl::StrCat("/proc/self/fd/", root->initramfs_.get());
  // For bench/nested-boot, which boots QEMU with the same initramfs.
  if (const char* save = std::getenv("VMM_HOST_ROOT_SAVE_INITRAMFS"); save != nullptr && *save) {
    std::ofstream(save, std::ios::binary | std::ios::trunc) << image;
  }
  // The command's stdio is a virtio console on vmm's (hvc0: input is taken
  // only as the guest has room, so nothing typed or piped early is lost);
  // the kernel's messages and the init's own lines go to COM1, on vmm's
  // stderr: apart from the command's output.
  for (const DeviceConfig& device : config->devices) {
    if (const auto* console = dynamic_cast<const ConsoleConfig*>(&*device);
        console != nullptr && console->mode != ConsoleConfig::Mode::kOff) {
      return absl::InvalidArgumentError(
          "--host-root gives the command the virtio console: drop --console");
    }
  }
  std::erase_if(config->devices, [](const DeviceConfig& device) {
    return dynamic_cast<const ConsoleConfig*>(&*device) != nullptr;
  });
  ConsoleConfig console;
  console.mode = ConsoleConfig::Mode::kStdio;
  // A terminal gets a terminal (hvc0); a pipe or file gets a byte stream
  // that ends when vmm's stdin does (/dev/vportNp0).
  console.generic_port = console.input_port = !in.stdin_tty;
  config->devices.push_back(console);
  if (config->serial.mode == SerialConfig::Mode::kStdio) {
    config->serial.mode = SerialConfig::Mode::kFile;
    config->serial.path = "/dev/stderr";
  }
  config->cmdline = absl::StrCat("console=ttyS0 panic=-1 ",
                                 options.verbose ? "" : "quiet loglevel=1 ", config->cmdline);
  return root;
}

void HostRoot::RemoveFiles() {
  for (const std::string& file : files_) ::unlink(file.c_str());
  files_.clear();
  if (!socket_dir_.empty()) ::rmdir(socket_dir_.c_str());
  socket_dir_.clear();
}

void HostRoot::VmCreated() {
  RemoveFiles();
  daemons_.clear();
}

HostRoot::~HostRoot() {
  for (pid_t pid : daemons_) {
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
  }
  RemoveFiles();
}

int HostRoot::ExitCode(const ExitStatus& status, std::string* message) {
  message->clear();
  if (status.reason == ExitStatus::Reason::kDebugExit &&
      (status.debug_code & 0xffff0000u) == kExitMagic) {
    const uint32_t word = status.debug_code & 0xffffu;
    if (word & kInitFailed) {
      *message = "the guest's init could not run the command (its line is above)";
      return kExitInitFailed;
    }
    return static_cast<int>(word & 0xff);
  }
  return status.ProcessExitCode();
}

}  // namespace vmm::host_root
