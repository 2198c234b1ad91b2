// What the CLI tests share: parsing a command line, and picking one device
// kind's configs out of a VmConfig.
#ifndef VMM_TESTS_UNIT_VMM_CLI_TEST_UTIL_H_
#define VMM_TESTS_UNIT_VMM_CLI_TEST_UTIL_H_

#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "vmm/cli.h"

namespace vmm::cli::testing {

using Action = CliRequest::Action;

// Runs ParseCommandLine on `vmm <args...>`.
inline absl::StatusOr<CliRequest> Parse(std::initializer_list<std::string> args) {
  std::vector<std::string> storage = {"vmm"};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  return ParseCommandLine(static_cast<int>(storage.size()), argv.data());
}

// Parses `--kernel k <args...>` and returns the config, failing the test if
// the line was rejected.
inline VmConfig ParseRun(std::initializer_list<std::string> args) {
  std::vector<std::string> all = {"--kernel", "k"};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv = {const_cast<char*>("vmm")};
  for (std::string& arg : all) argv.push_back(arg.data());
  absl::StatusOr<CliRequest> request = ParseCommandLine(static_cast<int>(argv.size()), argv.data());
  EXPECT_TRUE(request.ok()) << request.status();
  if (!request.ok()) return VmConfig{};
  EXPECT_EQ(request->action, Action::kRun);
  return request->config;
}

// The configs of one device kind in `config`, in order.
template <typename Config>
inline std::vector<Config> DevicesOf(const VmConfig& config) {
  std::vector<Config> found;
  for (const DeviceConfig& device : config.devices) {
    if (const Config* typed = device.As<Config>()) found.push_back(*typed);
  }
  return found;
}

// Expects the line to be rejected as bad usage with `fragment` in the message.
inline void ExpectUsageError(std::initializer_list<std::string> args, const std::string& fragment) {
  absl::StatusOr<CliRequest> request = Parse(args);
  ASSERT_FALSE(request.ok()) << "accepted a bad command line";
  EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(request.status().message()), ::testing::HasSubstr(fragment));
  EXPECT_FALSE(absl::StrContains(request.status().message(), "\n"));
}

}  // namespace vmm::cli::testing

#endif  // VMM_TESTS_UNIT_VMM_CLI_TEST_UTIL_H_
