#include "devices/virtio/rng/rng_config.h"

#include <memory>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "devices/virtio/rng/virtio_rng.h"

namespace vmm {
namespace {

using Spec = DeviceSpecOf<RngConfig>;

absl::StatusOr<std::shared_ptr<VirtioDevice>> CreateRng(const RngConfig& rng,
                                                        VirtioDeviceHost& host) {
  if (!rng.enabled) return nullptr;
  VirtioRngOptions options;
  options.rate_limit_bytes_per_second = rng.rate_limit_bytes_per_second;
  absl::StatusOr<std::shared_ptr<VirtioRng>> device =
      VirtioRng::Create(std::move(options), host.loop());
  if (!device.ok()) return device.status();
  return std::shared_ptr<VirtioDevice>(std::move(*device));
}

}  // namespace

const VirtioDeviceSpec& VirtioRngSpec() {
  static const Spec spec(Spec::Definition{
      .name = "virtio-rng",
      .flag = "rng",
      .summary = "entropy for the guest (/dev/hwrng), from the host's getrandom()",
      .repeatable = false,
      .present_by_default = true,
      .keys =
          {
              {{"on", "", "", "the device, no rate limit"},
               [](absl::string_view, RngConfig& rng) {
                 rng.enabled = true;
                 return absl::OkStatus();
               }},
              {{"off", "", "", "no device"},
               [](absl::string_view, RngConfig& rng) {
                 rng.enabled = false;
                 return absl::OkStatus();
               }},
              {{"rate", "BYTES_PER_SEC", "no limit",
                absl::StrCat("at most this many bytes a second, 1..", VirtioRng::kMaxRate)},
               [](absl::string_view value, RngConfig& rng) {
                 if (!absl::SimpleAtoi(value, &rng.rate_limit_bytes_per_second) ||
                     rng.rate_limit_bytes_per_second == 0 ||
                     rng.rate_limit_bytes_per_second > VirtioRng::kMaxRate) {
                   return absl::InvalidArgumentError(absl::StrCat(
                       "'rate=", value, "': expected bytes per second, 1 to ",
                       VirtioRng::kMaxRate));
                 }
                 return absl::OkStatus();
               }},
          },
      .check =
          [](RngConfig& rng) {
            if (!rng.enabled && rng.rate_limit_bytes_per_second != 0) {
              return absl::InvalidArgumentError("'off' takes no rate");
            }
            return absl::OkStatus();
          },
      .create = CreateRng,
  });
  return spec;
}

const VirtioDeviceSpec& RngConfig::spec() const { return VirtioRngSpec(); }

}  // namespace vmm
