// virtio-fs end to end: the real `vmm` binary with `--fs`, virtiofsd serving
// a directory this test wrote, and fs.elf as the guest's FUSE client (INIT,
// LOOKUP, OPEN, READ) over virtio-pci with MSI-X and over virtio-mmio with
// the slot's interrupt: kicks go from KVM's ioeventfds to virtiofsd, its
// completions come back as the guest's interrupts.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/backend_process.h"
#include "tests/kvm/subprocess.h"

namespace vmm::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kContent[] = "written by the host for fs.elf";

struct FsVariant {
  const char* name;
  const char* fs_suffix;  // after --fs tag=,socket=
  const char* cmdline;    // fs.elf's
  const char* where;      // in its output
};

class FsTest : public ::testing::TestWithParam<FsVariant> {};

TEST_P(FsTest, TheGuestReadsTheHostsFileThroughVirtiofsd) {
  REQUIRE_KVM();
  const std::string virtiofsd = VirtiofsdPath();
  if (virtiofsd.empty()) {
    std::fprintf(stderr, "\n*** SKIPPED: no virtiofsd (tools/setup provides one) ***\n\n");
    GTEST_SKIP() << "SKIPPED: no virtiofsd";
  }
  const std::string dir = absl::StrCat(::testing::TempDir(), "/fs-", GetParam().name);
  const std::string share = dir + "/share", sock = dir + "/fs.sock";
  ::mkdir(dir.c_str(), 0755);
  ::mkdir(share.c_str(), 0755);
  ::unlink(sock.c_str());
  std::ofstream(share + "/hello.txt") << kContent;
  BackendProcess daemon;
  daemon.Start({virtiofsd, "--socket-path=" + sock, "-o", "source=" + share, "-o", "cache=none"},
               sock);
  ProcessResult r = RunProcess(
      {VmmBinary(), "--kernel", GuestPath("fs.elf"), "--memory", "64M", "--timeout", "60",
       "--fs", absl::StrCat("tag=hostshare,socket=", sock, GetParam().fs_suffix), "--cmdline",
       GetParam().cmdline},
      absl::Seconds(90));
  daemon.Stop();
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;  // debug-exit 0
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("fs ", GetParam().where)));
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("hello.txt: ", sizeof(kContent) - 1, " bytes \"",
                                            kContent, "\"")));
  EXPECT_THAT(r.out, HasSubstr("fs: ok"));
}

INSTANTIATE_TEST_SUITE_P(
    Transports, FsTest,
    ::testing::Values(FsVariant{"PciMsix", "", "mmio=off irq=on", "pci"},
                      FsVariant{"Mmio", ",transport=mmio", "pci=off irq=on", "mmio"}),
    [](const ::testing::TestParamInfo<FsVariant>& info) { return info.param.name; });

TEST(FsTest, NoVirtiofsdAtTheSocketIsAOneLineStartUpError) {
  REQUIRE_KVM();
  const std::string sock = ::testing::TempDir() + "/no-virtiofsd.sock";
  ::unlink(sock.c_str());
  ProcessResult r = RunProcess({VmmBinary(), "--kernel", GuestPath("fs.elf"), "--fs",
                                "tag=x,socket=" + sock},
                               absl::Seconds(30));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(sock));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

}  // namespace
}  // namespace vmm::testing
