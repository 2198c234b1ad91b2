#include "devices/virtio/device_spec.h"

#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace vmm {
namespace device_spec_internal {
namespace {


// "5", "0x1f", "05.0" (QEMU's slot.function, function 0).
std::optional<int> ParsePciSlot(absl::string_view text) {
  int slot = 0;
  if (absl::ConsumeSuffix(&text, ".0")) {
    if (text.empty() || !absl::SimpleHexAtoi(text, &slot)) return std::nullopt;
  } else if (absl::StartsWith(text, "0x") || absl::StartsWith(text, "0X")) {
    if (!absl::SimpleHexAtoi(text, &slot)) return std::nullopt;
  } else if (text.empty() || text.find_first_not_of("0123456789") != absl::string_view::npos ||
             !absl::SimpleAtoi(text, &slot)) {
    return std::nullopt;
  }
  if (slot < kFirstPciSlot || slot > kLastPciSlot) return std::nullopt;
  return slot;
}

}  // namespace

absl::Span<const DeviceKey> CommonKeys() {
  static const std::vector<DeviceKey>* const keys = new std::vector<DeviceKey>{
      {"transport", "pci|mmio", "pci",
       "a virtio-pci function, or a virtio-mmio slot (found through ACPI, or the kernel "
       "command line with --acpi off)"},
      {"addr", "SLOT", "the lowest free slot",
       absl::StrFormat("the PCI slot, %d..%d (decimal, 0x hex, or QEMU's 05.0); PCI only",
                       kFirstPciSlot, kLastPciSlot)},
  };
  return *keys;
}

absl::StatusOr<std::vector<Item>> SplitOptions(absl::string_view options) {
  std::vector<Item> items;
  if (options.empty()) return items;
  absl::flat_hash_set<std::string> seen;
  for (absl::string_view text : absl::StrSplit(options, ',')) {
    Item item;
    const size_t eq = text.find('=');
    item.has_value = eq != absl::string_view::npos;
    item.key = std::string(text.substr(0, eq));
    if (item.has_value) item.value = std::string(text.substr(eq + 1));
    if (item.key.empty()) {
      return absl::InvalidArgumentError(
          text.empty() ? std::string("empty option (two commas, or one at an end)")
                       : absl::StrCat("'", text, "': expected key=value"));
    }
    if (!seen.insert(item.key).second) {
      return absl::InvalidArgumentError(absl::StrCat("'", item.key, "' given twice"));
    }
    items.push_back(std::move(item));
  }
  return items;
}

absl::Status CheckExactlyOne(const std::vector<Item>& items,
                             const std::vector<std::string>& group,
                             absl::Span<const DeviceKey> keys) {
  int given = 0;
  for (const Item& item : items) {
    for (const std::string& name : group) given += item.key == name;
  }
  if (given == 1) return absl::OkStatus();
  std::vector<std::string> forms;
  for (const std::string& name : group) {
    std::string form = name;
    for (const DeviceKey& key : keys) {
      if (key.name == name && !key.value.empty()) form = absl::StrCat(name, "=", key.value);
    }
    forms.push_back(std::move(form));
  }
  if (forms.size() == 1) return absl::InvalidArgumentError(absl::StrCat(forms[0], " is required"));
  return absl::InvalidArgumentError(
      absl::StrCat(given == 0 ? "expected one of " : "give only one of ",
                   absl::StrJoin(forms, ", ")));
}

absl::Status ApplyCommonKey(const Item& item, VirtioDeviceConfig& config) {
  if (item.key == "transport") {
    if (item.value == "pci") {
      config.transport = VirtioTransport::kPci;
    } else if (item.value == "mmio") {
      config.transport = VirtioTransport::kMmio;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("'transport=", item.value, "': expected pci or mmio"));
    }
    return absl::OkStatus();
  }
  if (item.key == "addr") {
    std::optional<int> slot = ParsePciSlot(item.value);
    if (!slot) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "'addr=%s': expected a PCI slot from %d to %d", item.value, kFirstPciSlot,
          kLastPciSlot));
    }
    config.pci_slot = slot;
    return absl::OkStatus();
  }
  return absl::NotFoundError(item.key);
}

absl::Status CheckCommon(const VirtioDeviceConfig& config) {
  if (config.pci_slot && config.transport != VirtioTransport::kPci) {
    return absl::InvalidArgumentError(
        "'addr=' picks a PCI slot: it needs transport=pci (a virtio-mmio device has none)");
  }
  return absl::OkStatus();
}

absl::Status UnknownKey(absl::string_view key, absl::Span<const DeviceKey> keys) {
  std::vector<absl::string_view> names;
  for (const DeviceKey& k : keys) names.push_back(k.name);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown key '", key, "' (expected ", absl::StrJoin(names, ", "), ")"));
}

}  // namespace device_spec_internal

absl::StatusOr<bool> ParseOnOff(absl::string_view key, absl::string_view value) {
  if (value == "on" || value == "true" || value == "yes" || value == "1") return true;
  if (value == "off" || value == "false" || value == "no" || value == "0") return false;
  return absl::InvalidArgumentError(absl::StrCat("'", key, "=", value, "': expected on or off"));
}

absl::StatusOr<int> ParseReconnectSeconds(absl::string_view value) {
  int seconds = -1;
  if (!absl::SimpleAtoi(value, &seconds) || seconds < 0 || seconds > 3600) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'reconnect=", value, "': expected seconds between tries, 1 to 3600 (0: off)"));
  }
  return seconds;
}

std::string VirtioDeviceSpec::Help() const {
  std::string text = absl::StrCat(name(), " (--", flag(), " OPTIONS is --device ", name(),
                                  ",OPTIONS): ", summary(), "\n",
                                  repeatable() ? "Any number per VM." : "At most one per VM.",
                                  present_by_default() ? " Present unless turned off." : "",
                                  "\nOptions, comma-separated:\n");
  for (const DeviceKey& key : keys()) {
    const std::string left =
        key.value.empty() ? std::string(key.name) : absl::StrCat(key.name, "=", key.value);
    absl::StrAppend(&text, absl::StrFormat("  %-22s %s", left, key.help));
    if (key.fallback == "required") {
      absl::StrAppend(&text, " (required)");
    } else if (!key.fallback.empty()) {
      absl::StrAppend(&text, " (default: ", key.fallback, ")");
    }
    absl::StrAppend(&text, "\n");
  }
  return text;
}

}  // namespace vmm
