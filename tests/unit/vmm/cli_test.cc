#include "vmm/cli.h"

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "devices/virtio/block/block_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/vmm/cli_test_util.h"

namespace vmm::cli {
namespace {

using ::testing::HasSubstr;
using namespace ::vmm::cli::testing;  // NOLINT: the shared helpers


// --- Running ---

TEST(CliTest, KernelAloneGivesLibraryDefaults) {
  absl::StatusOr<CliRequest> request = Parse({"--kernel", "/boot/vmlinuz"});
  ASSERT_TRUE(request.ok()) << request.status();
  ASSERT_EQ(request->action, Action::kRun);
  const VmConfig& config = request->config;
  const VmConfig defaults;
  EXPECT_EQ(config.kernel_path, "/boot/vmlinuz");
  EXPECT_EQ(config.initrd_path, "");
  EXPECT_EQ(config.cmdline, "");
  EXPECT_EQ(config.memory_bytes, defaults.memory_bytes);
  EXPECT_EQ(config.cpus, defaults.cpus);
  EXPECT_EQ(config.serial.mode, SerialConfig::Mode::kStdio);
  EXPECT_EQ(config.timeout, absl::InfiniteDuration());
  EXPECT_FALSE(config.memfd_backed);
}

TEST(CliTest, EveryFlagReachesTheConfigInSpaceForm) {
  VmConfig config = ParseRun({"--initrd", "initrd.img", "--cmdline", "console=ttyS0 quiet",
                              "--memory", "1G", "--cpus", "4", "--serial", "file=out.log",
                              "--timeout", "2.5", "--memfd"});
  EXPECT_EQ(config.kernel_path, "k");
  EXPECT_EQ(config.initrd_path, "initrd.img");
  EXPECT_EQ(config.cmdline, "console=ttyS0 quiet");
  EXPECT_EQ(config.memory_bytes, 1ull << 30);
  EXPECT_EQ(config.cpus, 4);
  EXPECT_EQ(config.serial.mode, SerialConfig::Mode::kFile);
  EXPECT_EQ(config.serial.path, "out.log");
  EXPECT_EQ(config.timeout, absl::Milliseconds(2500));
  EXPECT_TRUE(config.memfd_backed);
}

TEST(CliTest, EveryFlagReachesTheConfigInEqualsForm) {
  absl::StatusOr<CliRequest> request =
      Parse({"--kernel=bz", "--initrd=rd", "--cmdline=root=/dev/vda rw", "--memory=64M",
             "--cpus=2", "--serial=off", "--timeout=10", "--memfd=true"});
  ASSERT_TRUE(request.ok()) << request.status();
  const VmConfig& config = request->config;
  EXPECT_EQ(config.kernel_path, "bz");
  EXPECT_EQ(config.initrd_path, "rd");
  EXPECT_EQ(config.cmdline, "root=/dev/vda rw");  // only the first '=' splits
  EXPECT_EQ(config.memory_bytes, 64ull << 20);
  EXPECT_EQ(config.cpus, 2);
  EXPECT_EQ(config.serial.mode, SerialConfig::Mode::kOff);
  EXPECT_EQ(config.timeout, absl::Seconds(10));
  EXPECT_TRUE(config.memfd_backed);
}

TEST(CliTest, SingleDashFlagsWorkLikeDoubleDash) {
  VmConfig config = ParseRun({"-cpus", "3", "-memory=2M"});
  EXPECT_EQ(config.cpus, 3);
  EXPECT_EQ(config.memory_bytes, 2ull << 20);
}

TEST(CliTest, BooleanMemfdCanBeTurnedOffAndDoesNotEatTheNextArgument) {
  EXPECT_FALSE(ParseRun({"--memfd=false"}).memfd_backed);
  EXPECT_FALSE(ParseRun({"--nomemfd"}).memfd_backed);
  VmConfig config = ParseRun({"--memfd", "--cpus", "2"});
  EXPECT_TRUE(config.memfd_backed);
  EXPECT_EQ(config.cpus, 2);
}

// Issue 17, item 6: the second of two --kernel (or --memory, --cpus) flags
// used to win silently; every flag is now given at most once, as devices are.
TEST(CliTest, AFlagGivenTwiceIsAnError) {
  ExpectUsageError({"--kernel", "a", "--kernel", "b"}, "--kernel is given twice");
  ExpectUsageError({"--kernel", "k", "--cpus", "2", "--cpus=5"}, "--cpus is given twice");
  ExpectUsageError({"--kernel", "k", "--memfd", "--nomemfd"}, "--memfd is given twice");
  ExpectUsageError({"--kernel", "k", "--memory", "1G", "--memory", "2G", "--cpus", "x"},
                   "--memory is given twice");  // the first error is the one reported
}

TEST(CliTest, EachParseStartsFromDefaults) {
  ParseRun({"--cpus", "8", "--memfd", "--initrd", "x", "--timeout", "1"});
  VmConfig config = ParseRun({});
  EXPECT_EQ(config.cpus, 1);
  EXPECT_FALSE(config.memfd_backed);
  EXPECT_EQ(config.initrd_path, "");
  EXPECT_EQ(config.timeout, absl::InfiniteDuration());
}

TEST(CliTest, ValueMayStartWithDashInSpaceForm) {
  EXPECT_EQ(ParseRun({"--cmdline", "-v"}).cmdline, "-v");
}

TEST(CliTest, EmptyCmdlineAndInitrdAreAllowed) {
  VmConfig config = ParseRun({"--cmdline=", "--initrd="});
  EXPECT_EQ(config.cmdline, "");
  EXPECT_EQ(config.initrd_path, "");
}

TEST(CliTest, CpusAcceptsTheWholeRange) {
  EXPECT_EQ(ParseRun({"--cpus", "1"}).cpus, 1);
  EXPECT_EQ(ParseRun({"--cpus", "37"}).cpus, 37);
  EXPECT_EQ(kMaxVcpus, 37) << "the MP table's room, what Vm::Create accepts";
}

// --- Help and version ---

TEST(CliTest, DiskFlagRepeatsAndKeepsOrder) {
  absl::StatusOr<CliRequest> request =
      Parse({"--kernel", "k", "--disk", "path=a.img", "--disk=path=b.img,transport=mmio"});
  ASSERT_TRUE(request.ok()) << request.status();
  const std::vector<DiskConfig> disks = DevicesOf<DiskConfig>(request->config);
  ASSERT_EQ(disks.size(), 2u);
  EXPECT_EQ(disks[0].path, "a.img");
  EXPECT_EQ(disks[1].path, "b.img");
  EXPECT_EQ(disks[1].transport, DiskConfig::Transport::kMmio);
  EXPECT_TRUE(DevicesOf<DiskConfig>(Parse({"--kernel", "k"})->config).empty())
      << "no disks carried over";
}

TEST(CliTest, BadDiskSpecIsAUsageErrorNamingTheFlag) {
  absl::StatusOr<CliRequest> request = Parse({"--kernel", "k", "--disk", "path=a,bogus=1"});
  ASSERT_FALSE(request.ok());
  EXPECT_THAT(std::string(request.status().message()), HasSubstr("--disk"));
  EXPECT_THAT(std::string(request.status().message()), HasSubstr("bogus"));
}

TEST(CliTest, AcpiIsOnByDefaultAndCanBeTurnedOff) {
  EXPECT_TRUE(Parse({"--kernel", "k"})->config.acpi);
  EXPECT_FALSE(Parse({"--kernel", "k", "--acpi", "off"})->config.acpi);
  EXPECT_TRUE(Parse({"--kernel", "k", "--acpi=on"})->config.acpi);
  absl::StatusOr<CliRequest> bad = Parse({"--kernel", "k", "--acpi", "maybe"});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("on or off"));
}

TEST(CliTest, OnRebootExitsByDefaultAndCanRestart) {
  using Action = VmConfig::RebootAction;
  EXPECT_EQ(Parse({"--kernel", "k"})->config.on_reboot, Action::kExit);
  EXPECT_EQ(Parse({"--kernel", "k", "--on-reboot", "restart"})->config.on_reboot,
            Action::kRestart);
  EXPECT_EQ(Parse({"--kernel", "k", "--on-reboot=exit"})->config.on_reboot, Action::kExit);
  absl::StatusOr<CliRequest> bad = Parse({"--kernel", "k", "--on-reboot", "again"});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("--on-reboot"));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("exit or restart"));
  // The absl spelling is not a second way in.
  EXPECT_FALSE(Parse({"--kernel", "k", "--on_reboot", "restart"}).ok());
}

TEST(CliTest, DeviceFlagsKeepTheirOrderAndNonRepeatableOnesRefuseASecondUse) {
  absl::StatusOr<CliRequest> request =
      Parse({"--kernel", "k", "--disk", "path=a", "--memory", "64M", "--disk",
             "path=b,transport=mmio"});
  ASSERT_TRUE(request.ok()) << request.status();
  const std::vector<DiskConfig> disks = DevicesOf<DiskConfig>(request->config);
  ASSERT_EQ(disks.size(), 2u);
  EXPECT_EQ(disks[0].path, "a");
  EXPECT_EQ(disks[1].path, "b");
  EXPECT_EQ(disks[1].transport, VirtioTransport::kMmio);
  ExpectUsageError({"--kernel", "k", "--console", "stdio", "--console", "off"},
                   "virtio-console (--console) may be given only once");
  absl::StatusOr<CliRequest> missing = Parse({"--kernel", "k", "--disk"});
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("--disk needs a value"));
}

TEST(CliTest, DecompressChoosesWhoUnpacksTheKernel) {
  EXPECT_EQ(Parse({"--kernel", "k"})->config.kernel_decompression,
            VmConfig::KernelDecompression::kAuto);
  EXPECT_EQ(Parse({"--kernel", "k", "--decompress", "vmm"})->config.kernel_decompression,
            VmConfig::KernelDecompression::kVmm);
  EXPECT_EQ(Parse({"--kernel", "k", "--decompress=guest"})->config.kernel_decompression,
            VmConfig::KernelDecompression::kGuest);
  absl::StatusOr<CliRequest> bad = Parse({"--kernel", "k", "--decompress", "host"});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("expected auto, vmm or guest"));
}

TEST(CliTest, StatsIsOffByDefaultAndOnWithTheFlag) {
  EXPECT_FALSE(Parse({"--kernel", "k"})->print_stats);
  EXPECT_TRUE(Parse({"--kernel", "k", "--stats"})->print_stats);
  EXPECT_FALSE(Parse({"--kernel", "k", "--nostats"})->print_stats);
}

TEST(CliTest, StatsLineReportsLatencyRssAndExits) {
  VmStats stats;
  stats.create_started = absl::FromUnixSeconds(1000);
  stats.first_kvm_run = stats.create_started + absl::Milliseconds(4);
  stats.rss_at_first_run_bytes = 3 << 20;
  stats.pio_exits = 12;
  stats.mmio_exits = 3;
  std::string line = StatsLine(stats);
  EXPECT_THAT(line, HasSubstr("4.000 ms after Vm::Create began"));
  EXPECT_THAT(line, HasSubstr("RSS then 3.0 MiB"));
  EXPECT_THAT(line, HasSubstr("12 pio, 3 mmio"));
  EXPECT_THAT(line, HasSubstr("; 0 virtio devices needed reset; 0 restarts"));
  stats.emulation_assists = 7;
  stats.emulation_user_ud = 2;
  EXPECT_THAT(StatsLine(stats), HasSubstr("; 7 emulation assists, 2 #UD to guest programs"));
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_THAT(StatsLine(VmStats{}), HasSubstr("first KVM_RUN never"));
}

TEST(CliTest, DeviceStatsLineNamesTheDeviceAndEveryCounterInOrder) {
  DeviceInfo device;
  device.kind = "virtio-net";
  device.transport = "pci";
  device.address = "0000:00:02.0";
  device.counters = {{"notify_exits", 5}, {"tx_dropped", 0}, {"rx_frames", 123456789012}};
  EXPECT_EQ(DeviceStatsLine(device),
            "vmm: stats: virtio-net (pci 0000:00:02.0): notify_exits=5 tx_dropped=0 "
            "rx_frames=123456789012");
}

TEST(CliTest, HelpIsARequestNotAnError) {
  for (const char* flag : {"--help", "-h", "-help"}) {
    absl::StatusOr<CliRequest> request = Parse({flag});
    ASSERT_TRUE(request.ok()) << flag << ": " << request.status();
    EXPECT_EQ(request->action, Action::kPrintHelp) << flag;
  }
}

TEST(CliTest, HelpWinsOverOtherErrorsOnTheLine) {
  absl::StatusOr<CliRequest> request = Parse({"--bogus", "--memory=0", "--help"});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->action, Action::kPrintHelp);
}

TEST(CliTest, VersionIsARequest) {
  absl::StatusOr<CliRequest> request = Parse({"--version"});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->action, Action::kPrintVersion);
}

TEST(CliTest, VersionTextIsNameAndVersion) {
  EXPECT_TRUE(absl::StartsWith(VersionText(), "vmm 0.")) << VersionText();
  EXPECT_TRUE(absl::EndsWith(VersionText(), "\n"));
}

TEST(CliTest, HelpTextDocumentsEveryFlagAndItsDefault) {
  const std::string help = HelpText();
  for (const char* flag : {"--kernel PATH", "--initrd PATH", "--cmdline STR", "--memory SIZE",
                           "--cpus N", "--serial MODE", "--timeout SECONDS", "--memfd",
                           "--help", "--version"}) {
    EXPECT_THAT(help, HasSubstr(flag));
  }
  EXPECT_THAT(help, HasSubstr("Default: 512M"));
  EXPECT_THAT(help, HasSubstr("Default: stdio"));
  EXPECT_THAT(help, HasSubstr("Exit status"));
}

TEST(CliTest, HelpAndVersionTakeNoValue) {
  ExpectUsageError({"--help=yes"}, "--help takes no value");
  ExpectUsageError({"--version=1"}, "--version takes no value");
}

// --- Bad usage ---

TEST(CliTest, MissingKernelIsRejected) {
  ExpectUsageError({}, "--kernel PATH is required");
  ExpectUsageError({"--memory", "1G"}, "--kernel PATH is required");
  ExpectUsageError({"--kernel="}, "--kernel PATH is required");
}

// A restore needs no kernel: the snapshot's memory holds the guest's.
TEST(CliTest, RestoreNeedsNoKernel) {
  absl::StatusOr<CliRequest> request = Parse({"--restore", "/var/snap", "--memory", "64M"});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->config.restore_from, "/var/snap");
  EXPECT_TRUE(request->config.kernel_path.empty());
}

TEST(CliTest, UnknownFlagIsRejectedByName) {
  ExpectUsageError({"--kernel", "k", "--bogus"}, "unknown flag '--bogus'");
  ExpectUsageError({"--kernel", "k", "--bogus=1"}, "unknown flag '--bogus=1'");
}

TEST(CliTest, AbslBuiltinFlagsAreNotOurs) {
  ExpectUsageError({"--kernel", "k", "--flagfile=/etc/passwd"}, "unknown flag");
  ExpectUsageError({"--kernel", "k", "--helpfull"}, "unknown flag");
}

TEST(CliTest, NoPrefixOnlyNegatesBooleans) {
  ExpectUsageError({"--kernel", "k", "--nocpus"}, "unknown flag");
  ExpectUsageError({"--kernel", "k", "--nomemfd=true"}, "--nomemfd takes no value");
}

TEST(CliTest, PositionalArgumentsAreRejected) {
  ExpectUsageError({"--kernel", "k", "extra"}, "unexpected argument 'extra'");
  ExpectUsageError({"bzImage"}, "unexpected argument 'bzImage'");
  ExpectUsageError({"--kernel", "k", "-"}, "unexpected argument '-'");
  ExpectUsageError({"--kernel", "k", "--", "--cpus"}, "unexpected argument '--cpus'");
}

TEST(CliTest, DoubleDashAloneIsAccepted) {
  absl::StatusOr<CliRequest> request = Parse({"--kernel", "k", "--"});
  EXPECT_TRUE(request.ok()) << request.status();
}

TEST(CliTest, FlagWithoutValueAtTheEndIsRejected) {
  ExpectUsageError({"--kernel"}, "--kernel needs a value");
  ExpectUsageError({"--kernel", "k", "--memory"}, "--memory needs a value");
}

TEST(CliTest, BadMemoryIsRejectedWithTheValue) {
  ExpectUsageError({"--kernel", "k", "--memory", "lots"}, "invalid value 'lots' for --memory");
  ExpectUsageError({"--kernel", "k", "--memory=0"}, "greater than zero");
  ExpectUsageError({"--kernel", "k", "--memory=0M"}, "greater than zero");
  ExpectUsageError({"--kernel", "k", "--memory=20000000000G"}, "64 bits");
}

TEST(CliTest, CpusOutOfRangeIsRejected) {
  // The CLI says the limit Vm::Create would, before anything is opened.
  ExpectUsageError({"--kernel", "k", "--cpus", "0"}, "between 1 and 37");
  ExpectUsageError({"--kernel", "k", "--cpus", "38"}, "between 1 and 37");
  ExpectUsageError({"--kernel", "k", "--cpus", "255"}, "between 1 and 37");
  ExpectUsageError({"--kernel", "k", "--cpus=99999999999"}, "between 1 and 37");
  EXPECT_THAT(HelpText(), HasSubstr("Number of vCPUs, 1..37"));
}

TEST(CliTest, CpusMustBeAPlainNumber) {
  for (const char* bad : {"-1", "two", "1.5", "0x4", "", " 2", "+2"}) {
    ExpectUsageError({"--kernel", "k", std::string("--cpus=") + bad}, "--cpus");
  }
}

TEST(CliTest, BadSerialModeIsRejected) {
  ExpectUsageError({"--kernel", "k", "--serial", "tty"},
                   "expected stdio, file=PATH, socket=PATH, pty or off");
  ExpectUsageError({"--kernel", "k", "--serial", "socket="}, "socket= needs a path");
  ExpectUsageError({"--kernel", "k", "--serial", "file="}, "file= needs a path");
  ExpectUsageError({"--kernel", "k", "--serial", "file"}, "needs a path");
  ExpectUsageError({"--kernel", "k", "--serial="}, "--serial");
}

TEST(CliTest, NonPositiveTimeoutIsRejected) {
  ExpectUsageError({"--kernel", "k", "--timeout", "0"}, "greater than zero");
  ExpectUsageError({"--kernel", "k", "--timeout", "0.0"}, "greater than zero");
  ExpectUsageError({"--kernel", "k", "--timeout=-1"}, "greater than zero");
  ExpectUsageError({"--kernel", "k", "--timeout=-5s"}, "greater than zero");
}

// Issue 14: how long SIGTERM's power button waits; 0 means no wait.
TEST(CliTest, ShutdownGraceTakesSecondsOrZero) {
  EXPECT_EQ(Parse({"--kernel", "k"})->config.shutdown_grace, absl::Seconds(10));
  EXPECT_EQ(Parse({"--kernel", "k", "--shutdown-grace", "0"})->config.shutdown_grace,
            absl::ZeroDuration());
  EXPECT_EQ(Parse({"--kernel", "k", "--shutdown-grace", "2.5"})->config.shutdown_grace,
            absl::Milliseconds(2500));
  EXPECT_EQ(Parse({"--kernel", "k", "--shutdown-grace=1m"})->config.shutdown_grace,
            absl::Minutes(1));
  for (const char* bad : {"-1", "none", "inf", "soon", ""}) {
    ExpectUsageError({"--kernel", "k", "--shutdown-grace", bad}, "--shutdown-grace");
  }
}

TEST(CliTest, BadMemfdValueIsRejected) {
  ExpectUsageError({"--kernel", "k", "--memfd=maybe"}, "invalid value 'maybe' for --memfd");
}

TEST(CliTest, FirstErrorIsReported) {
  ExpectUsageError({"--cpus=0", "--bogus"}, "--cpus");
}

// --- Value parsers ---

TEST(ParseByteSizeTest, PlainBytes) {
  EXPECT_EQ(ParseByteSize("4096").value(), 4096u);
  EXPECT_EQ(ParseByteSize("1").value(), 1u);
  EXPECT_EQ(ParseByteSize("18446744073709551615").value(), UINT64_MAX);
}

TEST(ParseByteSizeTest, BinarySuffixesInEveryAcceptedSpelling) {
  struct Case {
    const char* text;
    uint64_t bytes;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"64K", 64ull << 10},  {"64k", 64ull << 10},  {"64KB", 64ull << 10},
           {"64KiB", 64ull << 10}, {"512M", 512ull << 20}, {"512m", 512ull << 20},
           {"512MB", 512ull << 20}, {"512MiB", 512ull << 20}, {"512mib", 512ull << 20},
           {"2G", 2ull << 30},    {"2g", 2ull << 30},    {"2GiB", 2ull << 30},
           {"2GB", 2ull << 30},   {"1T", 1ull << 40},    {"1TiB", 1ull << 40}}) {
    absl::StatusOr<uint64_t> bytes = ParseByteSize(c.text);
    ASSERT_TRUE(bytes.ok()) << c.text << ": " << bytes.status();
    EXPECT_EQ(*bytes, c.bytes) << c.text;
  }
}

TEST(ParseByteSizeTest, RejectsZeroGarbageAndOverflow) {
  for (const char* bad : {"", "0", "0G", "M", "abc", "12X", "12MiBs", "1.5G", "-1", "+1",
                          " 1M", "1M ", "1 M", "0x100", "16E", "16777216T",
                          "18446744073709551616", "99999999999999999999999"}) {
    EXPECT_FALSE(ParseByteSize(bad).ok()) << "accepted '" << bad << "'";
  }
}

TEST(ParseByteSizeTest, LargestValueThatFitsWithSuffixIsAccepted) {
  EXPECT_EQ(ParseByteSize("16777215T").value(), 16777215ull << 40);
  EXPECT_FALSE(ParseByteSize("17179869184G").ok());  // 2^34 GiB = 2^64
}

TEST(ParseSerialSpecTest, AcceptsEachMode) {
  EXPECT_EQ(ParseSerialSpec("stdio")->mode, SerialConfig::Mode::kStdio);
  EXPECT_EQ(ParseSerialSpec("off")->mode, SerialConfig::Mode::kOff);
  absl::StatusOr<SerialConfig> file = ParseSerialSpec("file=/tmp/a=b.log");
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(file->mode, SerialConfig::Mode::kFile);
  EXPECT_EQ(file->path, "/tmp/a=b.log");
  absl::StatusOr<SerialConfig> socket = ParseSerialSpec("socket=/run/com1.sock");
  ASSERT_TRUE(socket.ok());
  EXPECT_EQ(socket->mode, SerialConfig::Mode::kSocket);
  EXPECT_EQ(socket->path, "/run/com1.sock");
  EXPECT_EQ(ParseSerialSpec("pty")->mode, SerialConfig::Mode::kPty);
}

TEST(ParseSerialSpecTest, RejectsUnknownModesAndEmptyPath) {
  for (const char* bad : {"", "STDIO", "file", "file=", "socket", "socket=", "callback", "stdio ",
                          "tty", "pty=x"}) {
    EXPECT_FALSE(ParseSerialSpec(bad).ok()) << "accepted '" << bad << "'";
  }
}

TEST(ParseTimeoutTest, DecimalSecondsAndDurations) {
  EXPECT_EQ(ParseTimeout("30").value(), absl::Seconds(30));
  EXPECT_EQ(ParseTimeout("0.5").value(), absl::Milliseconds(500));
  EXPECT_EQ(ParseTimeout(".25").value(), absl::Milliseconds(250));
  EXPECT_EQ(ParseTimeout("90s").value(), absl::Seconds(90));
  EXPECT_EQ(ParseTimeout("2m").value(), absl::Minutes(2));
  EXPECT_EQ(ParseTimeout("1h30m").value(), absl::Minutes(90));
  EXPECT_EQ(ParseTimeout("none").value(), absl::InfiniteDuration());
}

TEST(ParseTimeoutTest, RejectsNonPositiveInfiniteAndGarbage) {
  for (const char* bad : {"", "0", "0.0", "0s", "-1", "-0.5", "+1", "inf", "nan", "1e3",
                          "1..2", ".", "abc", "10 s", "1x", "99999999999999999999999999"}) {
    EXPECT_FALSE(ParseTimeout(bad).ok()) << "accepted '" << bad << "'";
  }
}

// --- Exit codes and error lines ---

TEST(ExitCodeTest, UserInputErrorsExitWithUsageCode) {
  for (absl::Status status : {absl::InvalidArgumentError("not a bzImage"),
                              absl::NotFoundError("kernel: no such file"),
                              absl::FailedPreconditionError("memory too small"),
                              absl::OutOfRangeError("too many cpus"),
                              absl::AlreadyExistsError("x"),
                              // Issue 17, item 5: a disk image vmm may not open for writing.
                              absl::PermissionDeniedError("disk image a.img: cannot open it"),
                              // Issue 15: a damaged snapshot given to --restore.
                              absl::DataLossError("state file truncated")}) {
    EXPECT_EQ(ExitCodeForError(status), 2) << status;
  }
}

TEST(ExitCodeTest, RuntimeFailuresExitWithOne) {
  for (absl::Status status :
       {absl::UnavailableError("/dev/kvm: no such file"),
        absl::UnavailableError("no permission to open /dev/kvm"),
        absl::InternalError("KVM_RUN"), absl::UnknownError("?"), absl::ResourceExhaustedError("m"),
        absl::DeadlineExceededError(""), absl::AbortedError(""),
        absl::UnimplementedError(""), absl::UnauthenticatedError("")}) {
    EXPECT_EQ(ExitCodeForError(status), 1) << status;
  }
}

// Issue 17, item 1: a stop signal that cuts start-up short exits as a
// stopped run does (130), not as a failure.
TEST(ExitCodeTest, StartUpCancelledByASignalExits130) {
  EXPECT_EQ(ExitCodeForError(absl::CancelledError("start-up interrupted by SIGINT")), 130);
  EXPECT_EQ(kExitInterrupted, 130);
}

TEST(ExitCodeTest, ConstantsMatchTheMapping) {
  EXPECT_EQ(kExitUsage, 2);
  EXPECT_EQ(kExitVmmFailure, 1);
}

TEST(ErrorLineTest, UsageErrorPointsAtHelp) {
  EXPECT_EQ(UsageErrorLine(absl::InvalidArgumentError("unknown flag '--x'")),
            "vmm: unknown flag '--x'; see --help");
}

TEST(ErrorLineTest, OtherErrorsArePrefixedOnly) {
  EXPECT_EQ(ErrorLine(absl::NotFoundError("kernel 'bz': No such file or directory")),
            "vmm: kernel 'bz': No such file or directory");
}

TEST(ErrorLineTest, MultiLineMessagesBecomeOneLine) {
  EXPECT_EQ(ErrorLine(absl::InternalError("a\nb")), "vmm: a; b");
  EXPECT_EQ(ErrorLine(absl::InternalError("")), "vmm: INTERNAL");
}

}  // namespace
}  // namespace vmm::cli
