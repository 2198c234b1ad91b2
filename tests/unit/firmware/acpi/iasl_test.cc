// Cross-checks the tables with ACPICA's iasl (Debian: acpica-tools) when it
// is installed: each table must disassemble without errors, and the
// disassembly must compile back (optimizations off) to the same bytes, so
// every length, opcode and descriptor is as iasl understands them.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "firmware/acpi/acpi_tables.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vmm::firmware::acpi {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::optional<std::string> FindIasl() {
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path ? path : "/usr/bin:/bin", ':')) {
    std::string candidate = std::string(dir) + "/iasl";
    if (!dir.empty() && access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

struct CommandResult {
  int exit_status = -1;
  std::string output;  // stdout and stderr
};

CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, n);
  const int status = pclose(pipe);
  result.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const std::string& path, const uint8_t* data, size_t size) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  ASSERT_TRUE(out.good()) << path;
}

// Short failure messages: the disassembly is thousands of lines.
void ExpectHas(const std::string& dsdt, const std::string& text) {
  EXPECT_NE(dsdt.find(text), std::string::npos) << "DSDT disassembly lacks: " << text;
}
void ExpectLacks(const std::string& dsdt, const std::string& text) {
  EXPECT_EQ(dsdt.find(text), std::string::npos) << "DSDT disassembly has: " << text;
}

class IaslTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::optional<std::string> iasl = FindIasl();
    if (!iasl) {
      GTEST_SKIP() << "iasl not found in PATH (Debian package acpica-tools): "
                      "skipping the disassembly cross-check";
    }
    iasl_ = *iasl;
    std::string tmpl = ::testing::TempDir() + "acpi_iasl_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  // A failing run keeps its directory for inspection.
  void TearDown() override {
    if (!dir_.empty() && !HasFailure()) RunCommand("rm -rf '" + dir_ + "'");
  }

  // Disassembles every table of `platform` but the RSDP (iasl only reads
  // tables with a standard header) and compiles each back. Returns the
  // DSDT's disassembly.
  std::string CheckTables(const AcpiPlatform& platform) {
    auto tables = BuildAcpiTables(platform);
    EXPECT_TRUE(tables.ok()) << tables.status();
    if (!tables.ok()) return "";
    std::string dsdt_source;
    for (const auto& t : tables->tables) {
      if (t.signature == "RSD PTR ") continue;
      SCOPED_TRACE(t.signature);
      const uint8_t* bytes = tables->bytes.data() + (t.address - tables->base);
      const std::string base = dir_ + "/" + t.signature;
      WriteFile(base + ".dat", bytes, t.size);

      CommandResult dis = RunCommand("cd '" + dir_ + "' && '" + iasl_ + "' -d " + t.signature + ".dat");
      EXPECT_EQ(dis.exit_status, 0) << dis.output;
      EXPECT_THAT(dis.output, Not(HasSubstr("Error"))) << dis.output;
      const std::string source = ReadFile(base + ".dsl");
      EXPECT_THAT(source, Not(HasSubstr("Error")));
      EXPECT_THAT(source, Not(HasSubstr("Invalid")));
      EXPECT_THAT(source, Not(HasSubstr("****")));  // iasl's marker for table problems
      if (t.signature == "DSDT") dsdt_source = source;

      // -oa: no optimizations, so the compiler emits the encodings we chose.
      CommandResult comp = RunCommand("cd '" + dir_ + "' && '" + iasl_ + "' -oa -p " + t.signature +
                               "_rt " + t.signature + ".dsl");
      EXPECT_EQ(comp.exit_status, 0) << comp.output;
      EXPECT_THAT(comp.output, HasSubstr("0 Errors, 0 Warnings")) << comp.output;
      const std::string recompiled = ReadFile(dir_ + "/" + t.signature + "_rt.aml");
      // The header's compiler ID/revision and checksum differ; the body must not.
      const std::string original(reinterpret_cast<const char*>(bytes), t.size);
      EXPECT_EQ(recompiled.size(), original.size());
      EXPECT_TRUE(recompiled.size() > 36 && recompiled.substr(36) == original.substr(36))
          << t.signature << " does not compile back to the same bytes";
    }
    return dsdt_source;
  }

  std::string iasl_;
  std::string dir_;
};

TEST_F(IaslTest, TypicalVmTablesDisassembleAndCompileBack) {
  AcpiPlatform platform;
  platform.cpus = 4;
  platform.ram_end = 8ull << 30;
  platform.virtio_mmio_slots = {0, 2};
  platform.pvpanic = true;
  platform.power_button = true;
  const std::string dsdt = CheckTables(platform);
  ExpectHas(dsdt, "_S5, Package (0x04)");
  ExpectHas(dsdt, "Device (PCI0)");
  ExpectHas(dsdt, "EisaId (\"PNP0A08\")");
  ExpectHas(dsdt, "Name (_PRT, Package (0x80)");
  ExpectHas(dsdt, "Device (MBRD)");
  ExpectHas(dsdt, "Device (VR00)");
  ExpectHas(dsdt, "Device (VR02)");
  ExpectLacks(dsdt, "Device (VR01)");
  ExpectHas(dsdt, "\"LNRO0005\"");
  ExpectHas(dsdt, "Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive");
  ExpectHas(dsdt, "Device (PEVT)");
  ExpectHas(dsdt, "\"QEMU0001\"");
  ExpectHas(dsdt, "EisaId (\"PNP0B00\")");
  ExpectHas(dsdt, "Device (C003)");
  // The power button and the GED that presses it (issue 14), as iasl reads
  // them back.
  ExpectHas(dsdt, "Device (PWRB)");
  ExpectHas(dsdt, "EisaId (\"PNP0C0C\")");
  ExpectHas(dsdt, "Device (GED0)");
  ExpectHas(dsdt, "\"ACPI0013\"");
  ExpectHas(dsdt, "Method (_EVT, 1, NotSerialized)");
  ExpectHas(dsdt, "If ((Arg0 == 0x07))");
  ExpectHas(dsdt, "Notify (\\_SB.PWRB, 0x80)");
}

TEST_F(IaslTest, LargestVmTablesDisassembleAndCompileBack) {
  AcpiPlatform platform;
  platform.cpus = kAcpiMaxCpus;
  platform.ram_end = 1ull << 40;
  for (uint32_t i = 0; i < 8; ++i) platform.virtio_mmio_slots.push_back(i);
  platform.pvpanic = true;
  const std::string dsdt = CheckTables(platform);
  ExpectHas(dsdt, "Device (C0FD)");
  ExpectHas(dsdt, "Device (VR07)");
}

TEST_F(IaslTest, MinimalVmTablesDisassembleAndCompileBack) {
  AcpiPlatform platform;
  platform.pci = false;
  platform.serial = platform.i8042 = platform.rtc = platform.pvpanic = false;
  const std::string dsdt = CheckTables(platform);
  ExpectLacks(dsdt, "PCI0");
  ExpectHas(dsdt, "Device (MBRD)");
}

}  // namespace
}  // namespace vmm::firmware::acpi
