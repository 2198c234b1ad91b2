// The values the command line's flags take, parsed (vmm/cli.h): byte sizes
// (--memory), durations (--timeout, --shutdown-grace) and serial modes
// (--serial). The flags themselves are in cli.cc.
#include <cstdint>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/strings/string_view.h"
#include "vmm/cli.h"

namespace vmm::cli {

absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[digits]))) {
    ++digits;
  }
  if (digits == 0) {
    return absl::InvalidArgumentError("expected a size such as 512M, 2G or 1048576");
  }
  uint64_t number = 0;
  if (!absl::SimpleAtoi(text.substr(0, digits), &number)) {
    return absl::InvalidArgumentError("size does not fit in 64 bits");
  }
  absl::string_view suffix = text.substr(digits);
  int shift = 0;
  if (!suffix.empty()) {
    switch (absl::ascii_toupper(static_cast<unsigned char>(suffix[0]))) {
      case 'K': shift = 10; break;
      case 'M': shift = 20; break;
      case 'G': shift = 30; break;
      case 'T': shift = 40; break;
      default: shift = -1; break;
    }
    absl::string_view rest = suffix.substr(1);
    if (shift < 0 || !(rest.empty() || rest == "B" || rest == "iB" || rest == "b" ||
                       rest == "ib" || rest == "IB")) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown size suffix '", suffix, "' (use K, M, G or T)"));
    }
  }
  if (number == 0) return absl::InvalidArgumentError("size must be greater than zero");
  if (number > (std::numeric_limits<uint64_t>::max() >> shift)) {
    return absl::InvalidArgumentError("size does not fit in 64 bits");
  }
  return number << shift;
}

absl::StatusOr<SerialConfig> ParseSerialSpec(absl::string_view text) {
  SerialConfig config;
  if (text == "stdio") {
    config.mode = SerialConfig::Mode::kStdio;
  } else if (text == "off") {
    config.mode = SerialConfig::Mode::kOff;
  } else if (text == "pty") {
    config.mode = SerialConfig::Mode::kPty;
  } else if (absl::ConsumePrefix(&text, "file=") || text == "file") {
    if (text.empty() || text == "file") {
      return absl::InvalidArgumentError("file= needs a path, e.g. file=console.log");
    }
    config.mode = SerialConfig::Mode::kFile;
    config.path = std::string(text);
  } else if (absl::ConsumePrefix(&text, "socket=") || text == "socket") {
    if (text.empty() || text == "socket") {
      return absl::InvalidArgumentError("socket= needs a path, e.g. socket=/tmp/com1.sock");
    }
    config.mode = SerialConfig::Mode::kSocket;
    config.path = std::string(text);
  } else {
    return absl::InvalidArgumentError("expected stdio, file=PATH, socket=PATH, pty or off");
  }
  return config;
}

absl::StatusOr<absl::Duration> ParseTimeout(absl::string_view text) {
  // "none" is how the default (no timeout) prints; accept it back.
  if (text == "none") return absl::InfiniteDuration();
  absl::Duration timeout;
  // A plain decimal number is seconds; digits and at most one dot only, so
  // "inf", "nan", "1e9" and signs are rejected.
  const bool plain_number =
      !text.empty() && text.find_first_not_of("0123456789.") == absl::string_view::npos &&
      text.find('.') == text.rfind('.') && text != ".";
  if (plain_number) {
    double seconds = 0;
    if (!absl::SimpleAtod(text, &seconds)) {
      return absl::InvalidArgumentError("expected seconds, e.g. 30 or 0.5");
    }
    timeout = absl::Seconds(seconds);
  } else if (text.empty() || text[0] == '-' || text[0] == '+' ||
             !absl::ParseDuration(text, &timeout)) {
    if (!text.empty() && text[0] == '-') {
      return absl::InvalidArgumentError("timeout must be greater than zero");
    }
    return absl::InvalidArgumentError("expected seconds, e.g. 30, 0.5 or 2m");
  }
  if (timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeout must be greater than zero");
  }
  if (timeout == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError("timeout must be finite (omit --timeout for none)");
  }
  return timeout;
}

}  // namespace vmm::cli
