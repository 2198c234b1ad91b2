// Fuzzes virtio-rng request handling: request chains (well-formed ones built from the input,
// and raw ring contents from ring_ops.h) filled from injected entropy that the input can make
// fail, with and without a rate limit on a clock the input moves (forwards and back), the
// retry timer firing (when scheduled, and spuriously), config space accesses, and
// reset/re-activation in the middle. Entropy is only ever written inside guest RAM, and a
// scheduled retry is never later than the bucket needs.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/time/time.h"
#include "devices/virtio/rng/virtio_rng.h"
#include "tests/fuzz/device_driver.h"
#include "tests/fuzz/fuzz_util.h"

namespace vmm::fuzz {
namespace {

struct Host {
  const GuestMemory* mem = nullptr;
  absl::Time now = absl::UnixEpoch() + absl::Hours(1);
  bool entropy_fails = false;
  bool retry_scheduled = false;
  uint64_t filled = 0;
};

void AddRequest(DeviceDriver& d, FuzzedDataProvider& in) {
  std::vector<Segment> segs;
  if (in.ConsumeIntegralInRange<int>(0, 7) == 0) segs.push_back(Readable({1, 2, 3, 4}));
  const int pieces = in.ConsumeIntegralInRange<int>(1, 3);
  for (int i = 0; i < pieces; ++i) {
    segs.push_back(Writable(in.ConsumeBool() ? in.ConsumeIntegralInRange<uint32_t>(0, 64)
                                             : in.ConsumeIntegralInRange<uint32_t>(0, 0x3000)));
  }
  d.AddChain(0, segs, in);
}

}  // namespace
}  // namespace vmm::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vmm;
  using namespace vmm::fuzz;
  const GuestMemory& mem = ZeroedSmallMemory();
  FuzzedDataProvider in(data, size);

  Host host;
  host.mem = &mem;
  VirtioRngOptions options;
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0:
      options.rate_limit_bytes_per_second = 0;
      break;
    case 1:
      options.rate_limit_bytes_per_second = in.ConsumeIntegralInRange<uint64_t>(1, 64);
      break;
    case 2:
      options.rate_limit_bytes_per_second = in.ConsumeIntegralInRange<uint64_t>(1, 1 << 20);
      break;
    default:
      options.rate_limit_bytes_per_second = in.ConsumeIntegral<uint64_t>();  // clamped
      break;
  }
  options.entropy = [&host](absl::Span<uint8_t> out) {
    FUZZ_CHECK(!out.empty());
    const iovec v{out.data(), out.size()};
    CheckIovecsInGuestRam(*host.mem, absl::MakeConstSpan(&v, 1));
    if (host.entropy_fails) return false;
    std::memset(out.data(), 0x5a, out.size());
    host.filled += out.size();
    return true;
  };
  options.clock = [&host] { return host.now; };
  options.schedule_retry = [&host](absl::Duration delay) {
    FUZZ_CHECK(delay > absl::ZeroDuration() && delay <= absl::Seconds(1));
    host.retry_scheduled = true;
  };
  VirtioRng rng(std::move(options));
  DeviceDriver driver(mem, rng);
  driver.Activate(in);

  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 10)) {
      case 0:
      case 1:
        AddRequest(driver, in);
        break;
      case 2:
        driver.RawStep(in);
        break;
      case 3:
      case 4:
        rng.ProcessQueue(driver.ConsumeQueue(in));
        break;
      case 5:  // time passes (or the clock steps back)
        if (in.ConsumeIntegralInRange<int>(0, 7) == 0) {
          host.now -= absl::Nanoseconds(in.ConsumeIntegralInRange<int64_t>(0, 2'000'000'000));
        } else {
          host.now += absl::Nanoseconds(in.ConsumeIntegralInRange<int64_t>(0, 3'000'000'000));
        }
        break;
      case 6:  // the retry timer fires (a spurious one too)
        if (host.retry_scheduled || in.ConsumeBool()) {
          host.retry_scheduled = false;
          rng.OnRetryTimer();
        }
        break;
      case 7:
        host.entropy_fails = in.ConsumeIntegralInRange<int>(0, 3) == 0;
        break;
      case 8:
        for (uint8_t b : FuzzConfigRead(rng, in, 0x20).bytes) {
          FUZZ_CHECK(b == 0);  // no configuration space
        }
        break;
      case 9:
        FuzzConfigWrite(rng, in, 0x20);
        break;
      default:  // the driver resets the device and starts it again
        rng.Reset();
        driver.Activate(in);
        break;
    }
  }
  rng.Reset();
  return 0;
}
