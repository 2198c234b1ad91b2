// What a virtio device kind says about itself to the rest of vmm: its name,
// its short flag, its keys (type, default, one line of help), how a
// "key=value,..." string becomes its config, and how a config becomes a
// device. Each device folder defines one spec next to its config struct
// (block/block_config.h, ...); registry.cc lists them. The CLI (--disk,
// --device virtio-blk,..., --device help), --help, the library's VmConfig and
// the device manager all read specs: vmm/ has no per-device code.
//
// A device's config derives from VirtioDeviceConfig (which carries what every
// device has: transport= and addr=), and VmConfig holds them as DeviceConfig
// values:
//
//   vmm::DiskConfig disk;               // devices/virtio/block/block_config.h
//   disk.path = "root.img";
//   config.devices.push_back(disk);
#ifndef VMM_DEVICES_VIRTIO_DEVICE_SPEC_H_
#define VMM_DEVICES_VIRTIO_DEVICE_SPEC_H_

#include <concepts>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace vmm {

class Cancellation;
class EventLoop;
class VirtioDevice;
class VirtioDeviceSpec;

// How a virtio device is attached: a modern virtio-pci function, or a
// virtio-mmio slot (found by the guest through ACPI, or through the kernel
// command line with ACPI off).
enum class VirtioTransport { kPci, kMmio };

// PCI slots a device may ask for with addr= (slot 0 is the host bridge).
inline constexpr int kFirstPciSlot = 1;
inline constexpr int kLastPciSlot = 31;

// What every device's config carries; a device's own config derives from it.
struct VirtioDeviceConfig {
  using Transport = VirtioTransport;
  virtual ~VirtioDeviceConfig() = default;
  // The spec of this config's device kind (which parses, lists and creates it).
  virtual const VirtioDeviceSpec& spec() const = 0;
  // True when the device reads vmm's stdin (COM1 then does not).
  virtual bool uses_stdin() const { return false; }
  // True when another process maps guest RAM for this device (vhost-user):
  // the VM then backs its RAM with a memfd, as --memfd would.
  virtual bool needs_shared_memory() const { return false; }

  Transport transport = Transport::kPci;
  // addr=: the PCI slot (kFirstPciSlot..kLastPciSlot); nullopt: the lowest
  // free one. PCI only.
  std::optional<int> pci_slot;
  bool operator==(const VirtioDeviceConfig&) const = default;
};

// One device of a VmConfig: any VirtioDeviceConfig, held by value (copies
// share the immutable config).
class DeviceConfig {
 public:
  template <typename Config>
    requires std::derived_from<Config, VirtioDeviceConfig>
  DeviceConfig(Config config)  // NOLINT: implicit, so push_back(disk) reads well
      : config_(std::make_shared<const Config>(std::move(config))) {}

  const VirtioDeviceConfig& operator*() const { return *config_; }
  const VirtioDeviceConfig* operator->() const { return config_.get(); }
  // The config as its own type, or nullptr when it is another device's.
  template <typename Config>
  const Config* As() const {
    return dynamic_cast<const Config*>(config_.get());
  }

 private:
  std::shared_ptr<const VirtioDeviceConfig> config_;
};

// What a device factory may use of the VM being built.
class VirtioDeviceHost {
 public:
  virtual ~VirtioDeviceHost() = default;
  // The loop that runs the devices' queue work and their host-side I/O.
  virtual EventLoop& loop() const = 0;
  // A one-line notice for the user (e.g. "created tap vm0; it is down ...").
  virtual void Notice(absl::string_view line) const = 0;
  // What cuts start-up short (the user's Ctrl-C): a factory that waits on
  // something outside vmm (a vhost-user back-end's answers) stops waiting
  // when it is cancelled. Null when nothing can cancel; valid only during
  // the factory's call.
  virtual const Cancellation* cancellation() const { return nullptr; }
};

// One key of a device's option string, as `--device NAME,help` lists it.
// Owned strings, so that help can be built from the device's own constants.
struct DeviceKey {
  std::string name;      // "path"
  std::string value;     // what it takes: "PATH", "on|off", "1..16"; empty: a bare word
  std::string fallback;  // the default, in words; "required" when it must be given
  std::string help;      // one line
};

class VirtioDeviceSpec {
 public:
  virtual ~VirtioDeviceSpec() = default;

  // "virtio-blk": the name `--device` takes.
  virtual absl::string_view name() const = 0;
  // "disk": the short flag (--disk SPEC is --device virtio-blk,SPEC).
  virtual absl::string_view flag() const = 0;
  // One line for `--device help` and --help.
  virtual absl::string_view summary() const = 0;
  // A VM may have any number (disks) or at most one (console).
  virtual bool repeatable() const = 0;
  // Present unless the user turns it off (rng): its default config is in
  // VmConfig's device list from the start.
  virtual bool present_by_default() const = 0;
  // The keys, including transport= and addr= that every device has.
  virtual absl::Span<const DeviceKey> keys() const = 0;

  // "key=value,..." (the keys above; bare words where a key takes none) into
  // this device's config. InvalidArgument naming the key or value at fault.
  virtual absl::StatusOr<DeviceConfig> Parse(absl::string_view options) const = 0;
  // The config with every key at its default (for present_by_default kinds).
  virtual DeviceConfig DefaultConfig() const = 0;
  // Builds the device `config` (this spec's own kind) describes; nullptr
  // when the config says "none" (--console off, --rng off). Errors name the
  // device and the cause (a missing image, a tap that cannot be opened).
  virtual absl::StatusOr<std::shared_ptr<VirtioDevice>> Create(
      const VirtioDeviceConfig& config, VirtioDeviceHost& host) const = 0;

  // `--device NAME,help`: the name, summary and one line per key.
  std::string Help() const;
};

// Building blocks for the specs' key parsers.
// on/true/yes/1 or off/false/no/0; the error quotes "key=value".
absl::StatusOr<bool> ParseOnOff(absl::string_view key, absl::string_view value);
// A vhost-user device's `reconnect=SECONDS` (1..3600; 0 is off): how often
// to try the back-end's socket again after it went away.
absl::StatusOr<int> ParseReconnectSeconds(absl::string_view value);

// A spec over one config type: a table of keys, each with the function that
// applies its value, an optional check across keys, and the factory. Each
// device folder defines one as a function-local static (block_config.cc).
template <typename Config>
  requires std::derived_from<Config, VirtioDeviceConfig>
class DeviceSpecOf final : public VirtioDeviceSpec {
 public:
  struct Key {
    DeviceKey key;
    // Applies `value` ("" for a bare word) to the config; InvalidArgument
    // quoting "key=value" when it does not fit.
    absl::Status (*apply)(absl::string_view value, Config& config);
  };
  struct Definition {
    absl::string_view name;
    absl::string_view flag;
    absl::string_view summary;
    bool repeatable = false;
    bool present_by_default = false;
    std::vector<Key> keys;
    // Groups of keys of which exactly one must be given (console: stdio,
    // file, socket, off; net: tap, fd).
    std::vector<std::vector<std::string>> exactly_one_of;
    // Rules across keys (required keys, exclusive ones), run after every key
    // is applied; may be null.
    absl::Status (*check)(Config& config) = nullptr;
    absl::StatusOr<std::shared_ptr<VirtioDevice>> (*create)(const Config& config,
                                                            VirtioDeviceHost& host) = nullptr;
  };

  explicit DeviceSpecOf(Definition definition);

  absl::string_view name() const override { return def_.name; }
  absl::string_view flag() const override { return def_.flag; }
  absl::string_view summary() const override { return def_.summary; }
  bool repeatable() const override { return def_.repeatable; }
  bool present_by_default() const override { return def_.present_by_default; }
  absl::Span<const DeviceKey> keys() const override { return listed_; }
  absl::StatusOr<DeviceConfig> Parse(absl::string_view options) const override;
  DeviceConfig DefaultConfig() const override { return Config{}; }
  absl::StatusOr<std::shared_ptr<VirtioDevice>> Create(const VirtioDeviceConfig& config,
                                                       VirtioDeviceHost& host) const override;

 private:
  Definition def_;
  std::vector<DeviceKey> listed_;  // def_.keys' descriptions, then the common keys
};

namespace device_spec_internal {
// The keys every device has (transport=, addr=).
absl::Span<const DeviceKey> CommonKeys();
// Splits "a=1,b,c=3" into (key, value, has '=') items; refuses empty items and
// repeated keys.
struct Item {
  std::string key;
  std::string value;
  bool has_value = false;
};
absl::StatusOr<std::vector<Item>> SplitOptions(absl::string_view options);
// Exactly one of `group` among `items`, else InvalidArgument "give one of
// stdio, file=PATH, ...".
absl::Status CheckExactlyOne(const std::vector<Item>& items,
                             const std::vector<std::string>& group,
                             absl::Span<const DeviceKey> keys);
// Applies a common key to `config`; NotFound when `key` is not one.
absl::Status ApplyCommonKey(const Item& item, VirtioDeviceConfig& config);
// addr= without transport=pci, and the like.
absl::Status CheckCommon(const VirtioDeviceConfig& config);
// "unknown key 'x' (expected a, b, c)".
absl::Status UnknownKey(absl::string_view key, absl::Span<const DeviceKey> keys);
}  // namespace device_spec_internal

template <typename Config>
  requires std::derived_from<Config, VirtioDeviceConfig>
DeviceSpecOf<Config>::DeviceSpecOf(Definition definition) : def_(std::move(definition)) {
  for (const Key& key : def_.keys) listed_.push_back(key.key);
  for (const DeviceKey& key : device_spec_internal::CommonKeys()) listed_.push_back(key);
}

template <typename Config>
  requires std::derived_from<Config, VirtioDeviceConfig>
absl::StatusOr<DeviceConfig> DeviceSpecOf<Config>::Parse(absl::string_view options) const {
  namespace internal = device_spec_internal;
  absl::StatusOr<std::vector<internal::Item>> items = internal::SplitOptions(options);
  if (!items.ok()) return items.status();
  Config config;
  for (const internal::Item& item : *items) {
    const Key* found = nullptr;
    for (const Key& key : def_.keys) {
      if (key.key.name == item.key) found = &key;
    }
    if (found == nullptr) {
      absl::Status common = internal::ApplyCommonKey(item, config);
      if (absl::IsNotFound(common)) return internal::UnknownKey(item.key, listed_);
      if (!common.ok()) return common;
      continue;
    }
    const bool bare_word = found->key.value.empty();
    if (bare_word && item.has_value) {
      return absl::InvalidArgumentError(
          std::string("'") + item.key + "' takes no value");
    }
    if (!bare_word && !item.has_value) {
      return absl::InvalidArgumentError(std::string("'") + item.key + "': expected " +
                                        item.key + "=" + std::string(found->key.value));
    }
    if (absl::Status applied = found->apply(item.value, config); !applied.ok()) return applied;
  }
  for (const std::vector<std::string>& group : def_.exactly_one_of) {
    if (absl::Status one = internal::CheckExactlyOne(*items, group, listed_); !one.ok()) {
      return one;
    }
  }
  if (def_.check != nullptr) {
    if (absl::Status checked = def_.check(config); !checked.ok()) return checked;
  }
  if (absl::Status checked = internal::CheckCommon(config); !checked.ok()) return checked;
  return DeviceConfig(std::move(config));
}

template <typename Config>
  requires std::derived_from<Config, VirtioDeviceConfig>
absl::StatusOr<std::shared_ptr<VirtioDevice>> DeviceSpecOf<Config>::Create(
    const VirtioDeviceConfig& config, VirtioDeviceHost& host) const {
  const Config* own = dynamic_cast<const Config*>(&config);
  if (own == nullptr) {
    return absl::InternalError(std::string(def_.name) + ": handed another device's config");
  }
  return def_.create(*own, host);
}

}  // namespace vmm

#endif  // VMM_DEVICES_VIRTIO_DEVICE_SPEC_H_
