// --host-root's host side without a VM: the initramfs it writes (a cpio
// newc archive Linux unpacks, read back here by a small reader), the kernel
// modules it picks from a module tree, how the guest's status word becomes
// vmm's exit status, and the command line's rules.
#include "vmm/host_root/host_root.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "vmm/cli.h"
#include "vmm/host_root/cpio.h"
#include "vmm/host_root/init_program.h"
#include "vmm/host_root/kernel_modules.h"

namespace vmm::host_root {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct CpioEntry {
  uint32_t mode = 0;
  uint32_t rdev_major = 0, rdev_minor = 0;
  std::string data;
};

// Reads a newc archive as the kernel's unpacker does (hex fields, names and
// data padded to 4 bytes, ended by TRAILER!!!); fails the test on anything
// malformed.
std::map<std::string, CpioEntry> ReadCpio(const std::string& archive) {
  std::map<std::string, CpioEntry> entries;
  size_t at = 0;
  auto field = [&](int i) {
    uint32_t v = 0;
    EXPECT_TRUE(absl::SimpleHexAtoi(archive.substr(at + 6 + 8 * i, 8), &v));
    return v;
  };
  while (at + 110 <= archive.size()) {
    EXPECT_EQ(archive.substr(at, 6), "070701") << "at " << at;
    const uint32_t mode = field(1), size = field(6), rmaj = field(9), rmin = field(10),
                   namesize = field(11);
    const std::string name = archive.substr(at + 110, namesize - 1);
    EXPECT_EQ(archive[at + 110 + namesize - 1], '\0');
    at = (at + 110 + namesize + 3) & ~size_t{3};
    if (name == "TRAILER!!!") {
      EXPECT_EQ(archive.size(), at) << "bytes after the trailer";
      return entries;
    }
    entries[name] = {mode, rmaj, rmin, archive.substr(at, size)};
    at = (at + size + 3) & ~size_t{3};
  }
  ADD_FAILURE() << "no trailer";
  return entries;
}

TEST(CpioWriterTest, WritesWhatTheKernelUnpacks) {
  CpioWriter cpio;
  cpio.Directory("dev");
  cpio.CharDevice("dev/console", 5, 1);
  cpio.File("init", "#!", 0755);
  cpio.File("odd", "12345");
  const std::string archive = cpio.Finish();
  EXPECT_EQ(archive.size() % 4, 0u);
  std::map<std::string, CpioEntry> entries = ReadCpio(archive);
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries["dev"].mode, S_IFDIR | 0755u);
  EXPECT_EQ(entries["dev/console"].mode, S_IFCHR | 0600u);
  EXPECT_EQ(entries["dev/console"].rdev_major, 5u);
  EXPECT_EQ(entries["dev/console"].rdev_minor, 1u);
  EXPECT_EQ(entries["init"].mode, S_IFREG | 0755u);
  EXPECT_EQ(entries["init"].data, "#!");
  EXPECT_EQ(entries["odd"].data, "12345");
}

TEST(InitramfsTest, HoldsTheInitTheModulesAndTheCommand) {
  InitramfsInputs in;
  in.command = {"sh", "-c", "exit 7"};
  in.rw = {{"vmmrw0", "/home/me/src"}};
  in.cwd = "/home/me/src";
  in.env = {"PATH=/bin", "TERM=dumb"};
  in.uid = "1000";
  in.gid = "100";
  in.modules = {{"fuse.ko", "FUSE"}, {"virtiofs.ko", "VFS"}};
  std::map<std::string, CpioEntry> entries = ReadCpio(BuildInitramfs(in));
  EXPECT_EQ(entries["init"].data, std::string(InitProgram()));
  EXPECT_EQ(entries["init"].data.substr(0, 4), "\x7f" "ELF") << "the embedded program";
  EXPECT_EQ(entries["init"].mode & 0777, 0755u);
  EXPECT_EQ(entries["dev/console"].rdev_major, 5u);
  EXPECT_EQ(entries["vmm/modules/fuse.ko"].data, "FUSE");
  std::vector<std::string> records = absl::StrSplit(entries["vmm/config"].data, '\0');
  ASSERT_FALSE(records.empty());
  records.pop_back();  // after the last NUL
  EXPECT_THAT(records, ElementsAre("module=fuse.ko", "module=virtiofs.ko", "arg=sh", "arg=-c",
                                   "arg=exit 7", "env=PATH=/bin", "env=TERM=dumb",
                                   "rw=vmmrw0:/home/me/src", "cwd=/home/me/src", "uid=1000",
                                   "gid=100", "stdin_tty=0", "console=vport", "stdout_tty=0",
                                   "verbose=0"));
}

class ModuleTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/vmm-modules-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { (void)std::system(("rm -rf " + dir_).c_str()); }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name) << text;
  }
  std::vector<std::string> Names(const std::vector<KernelModule>& modules) {
    std::vector<std::string> names;
    for (const KernelModule& m : modules) names.push_back(m.name);
    return names;
  }
  std::string dir_;
};

// Each module after what it needs (modules.dep lists a module's
// dependencies, the last to be loaded first), each once; built-in ones left
// out; a '-' in a file name is a '_' in the module's.
TEST_F(ModuleTreeTest, ModulesComeAfterTheirDependenciesAndBuiltInOnesAreLeftOut) {
  Write("modules.dep",
        "kernel/fs/fuse/virtiofs.ko: kernel/fs/fuse/fuse.ko kernel/drivers/virtio/virtio_ring.ko "
        "kernel/drivers/virtio/virtio.ko\n"
        "kernel/fs/fuse/fuse.ko:\n"
        "kernel/drivers/virtio/virtio_ring.ko: kernel/drivers/virtio/virtio.ko\n"
        "kernel/drivers/virtio/virtio.ko:\n"
        "kernel/fs/overlayfs/overlay.ko:\n"
        "kernel/drivers/char/virtio-console.ko: kernel/drivers/virtio/virtio_ring.ko "
        "kernel/drivers/virtio/virtio.ko\n");
  Write("modules.builtin", "kernel/drivers/virtio/virtio_pci.ko\n");
  absl::StatusOr<std::vector<KernelModule>> modules =
      ResolveModules(dir_, {"virtio_pci", "virtiofs", "overlay", "virtio_console"}, {"pvpanic"});
  ASSERT_TRUE(modules.ok()) << modules.status();
  EXPECT_THAT(Names(*modules),
              ElementsAre("virtio", "virtio_ring", "fuse", "virtiofs", "overlay", "virtio_console"));
  EXPECT_EQ((*modules)[3].path, dir_ + "/kernel/fs/fuse/virtiofs.ko");
}

// What the kernel lacks is named; so is a tree without modules.dep.
TEST_F(ModuleTreeTest, AMissingModuleOrTreeIsNamed) {
  Write("modules.dep", "kernel/fs/fuse/fuse.ko:\n");
  absl::StatusOr<std::vector<KernelModule>> modules = ResolveModules(dir_, {"virtiofs"}, {});
  EXPECT_EQ(modules.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(modules.status().message()), HasSubstr("virtiofs"));
  modules = ResolveModules(dir_ + "/nothing", {"virtiofs"}, {});
  EXPECT_THAT(std::string(modules.status().message()), HasSubstr("modules.dep"));
}

// The guest's status word: the command's status, 125 when the init failed;
// anything else keeps vmm's own meaning (a plain debug-exit is 2v+1).
TEST(HostRootExitCodeTest, TheCommandsStatusIsVmmsAndAnInitFailureIs125) {
  std::string message;
  ExitStatus status;
  status.reason = ExitStatus::Reason::kDebugExit;
  status.debug_code = kExitMagic | 7;
  EXPECT_EQ(HostRoot::ExitCode(status, &message), 7);
  EXPECT_TRUE(message.empty());
  status.debug_code = kExitMagic | 0;
  EXPECT_EQ(HostRoot::ExitCode(status, &message), 0);
  status.debug_code = kExitMagic | 143;
  EXPECT_EQ(HostRoot::ExitCode(status, &message), 143);
  status.debug_code = kExitMagic | kInitFailed | 2;
  EXPECT_EQ(HostRoot::ExitCode(status, &message), kExitInitFailed);
  EXPECT_THAT(message, HasSubstr("could not run the command"));
  status.debug_code = 3;  // not the init's word
  EXPECT_EQ(HostRoot::ExitCode(status, &message), 7);
  status.reason = ExitStatus::Reason::kTimeout;
  EXPECT_EQ(HostRoot::ExitCode(status, &message), 124);
  status.reason = ExitStatus::Reason::kGuestPanic;
  EXPECT_EQ(HostRoot::ExitCode(status, &message), 4);
}

absl::StatusOr<cli::CliRequest> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "vmm");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return cli::ParseCommandLine(static_cast<int>(argv.size()), argv.data());
}

TEST(HostRootCliTest, TheCommandFollowsDashDashAndTheFlagsNeedHostRoot) {
  absl::StatusOr<cli::CliRequest> r = Parse(
      {"--kernel", "bz", "--host-root", "--rw", "/a", "--rw=/b", "--user", "nobody", "--verbose",
       "--", "sh", "-c", "--not-a-flag"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->host_root.enabled);
  EXPECT_THAT(r->host_root.rw_dirs, ElementsAre("/a", "/b"));
  EXPECT_EQ(r->host_root.user, "nobody");
  EXPECT_TRUE(r->host_root.verbose);
  EXPECT_THAT(r->host_root.command, ElementsAre("sh", "-c", "--not-a-flag"));
  for (const auto& [args, want] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--kernel", "bz", "--rw", "/a"}, "--rw needs --host-root"},
           {{"--kernel", "bz", "--", "ls"}, "needs --host-root"},
           {{"--kernel", "bz", "--host-root"}, "needs a command after --"},
       }) {
    absl::StatusOr<cli::CliRequest> bad = Parse(args);
    ASSERT_FALSE(bad.ok()) << args[2];
    EXPECT_THAT(std::string(bad.status().message()), HasSubstr(want));
  }
}

// Mistakes on the host side are one line before anything starts.
TEST(HostRootPrepareTest, BadInputIsOneLine) {
  HostRootOptions options;
  options.enabled = true;
  VmConfig config;
  config.kernel_path = "/nonexistent/bzImage";
  EXPECT_THAT(std::string(HostRoot::Prepare(options, &config).status().message()),
              HasSubstr("needs a command"));
  options.command = {"true"};
  options.rw_dirs = {"/no/such/dir"};
  absl::StatusOr<std::unique_ptr<HostRoot>> prepared = HostRoot::Prepare(options, &config);
  EXPECT_EQ(prepared.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(prepared.status().message()), HasSubstr("/no/such/dir"));
  options.rw_dirs.clear();
  options.user = "no-such-user-here";
  EXPECT_THAT(std::string(HostRoot::Prepare(options, &config).status().message()),
              HasSubstr("no-such-user-here"));
  options.user.clear();
  EXPECT_THAT(std::string(HostRoot::Prepare(options, &config).status().message()),
              HasSubstr("/nonexistent/bzImage"));
  config.initrd_path = "x";
  EXPECT_THAT(std::string(HostRoot::Prepare(options, &config).status().message()),
              HasSubstr("--initrd"));
}

}  // namespace
}  // namespace vmm::host_root
