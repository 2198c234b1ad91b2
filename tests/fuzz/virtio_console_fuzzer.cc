// Fuzzes virtio-console request handling: receive and transmit chains (well-formed ones
// built from the input, and raw ring contents from ring_ops.h), a fake backend whose input,
// output room (short writes, would-block) and terminal size the input controls, its
// readable/writable/resized callbacks, config space accesses, and reset/re-activation in the
// middle. Every span the device hands the backend must lie inside guest RAM.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "devices/chardev/chardev.h"
#include "devices/virtio/console/virtio_console.h"
#include "tests/fuzz/device_driver.h"
#include "tests/fuzz/fuzz_util.h"

namespace vmm::fuzz {
namespace {

class FuzzChardev : public Chardev {
 public:
  FuzzChardev(const GuestMemory& mem, std::optional<std::pair<uint16_t, uint16_t>> size)
      : mem_(mem), size_(size) {}

  void Stop() override { callbacks_ = {}; }
  void Start(Callbacks callbacks) override {
    FUZZ_CHECK(!started_);
    started_ = true;
    callbacks_ = std::move(callbacks);
  }
  size_t Read(absl::Span<uint8_t> out) override {
    FUZZ_CHECK(!out.empty());
    const iovec v{out.data(), out.size()};
    CheckIovecsInGuestRam(mem_, absl::MakeConstSpan(&v, 1));
    const size_t n = std::min(out.size(), input_);
    std::memset(out.data(), 'i', n);
    input_ -= n;
    return n;
  }
  size_t Write(absl::Span<const uint8_t> bytes) override {
    FUZZ_CHECK(!bytes.empty());
    const iovec v{const_cast<uint8_t*>(bytes.data()), bytes.size()};
    CheckIovecsInGuestRam(mem_, absl::MakeConstSpan(&v, 1));
    const size_t n = std::min(bytes.size(), room_);
    room_ -= n;
    return n;
  }
  void WatchInput(bool watch) override { watching_input = watch; }
  void WatchOutput(bool watch) override { watching_output = watch; }
  std::optional<std::pair<uint16_t, uint16_t>> TerminalSize() const override { return size_; }

  const Callbacks& callbacks() const { return callbacks_; }
  void AddInput(size_t n) { input_ = std::min<size_t>(input_ + n, 1 << 20); }
  void AddRoom(size_t n) { room_ = std::min<size_t>(room_ + n, 1 << 20); }
  void SetSize(std::optional<std::pair<uint16_t, uint16_t>> size) { size_ = size; }

  bool watching_input = false;
  bool watching_output = false;

 private:
  const GuestMemory& mem_;
  std::optional<std::pair<uint16_t, uint16_t>> size_;
  bool started_ = false;
  Callbacks callbacks_;
  size_t input_ = 0;  // host input bytes waiting
  size_t room_ = 0;   // bytes the host output takes before it would block
};

uint32_t ConsumeLen(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0:
      return 0;
    case 1:
      return in.ConsumeIntegralInRange<uint32_t>(1, 16);
    default:
      return in.ConsumeIntegralInRange<uint32_t>(0, 0x2400);  // around kMaxChunk
  }
}

void AddChain(DeviceDriver& d, uint16_t q, FuzzedDataProvider& in) {
  const bool device_writes = q == VirtioConsole::kReceiveQueue;
  std::vector<Segment> segs;
  const int pieces = in.ConsumeIntegralInRange<int>(1, 3);
  for (int i = 0; i < pieces; ++i) {
    // Mostly the right direction for the queue.
    const bool writable = in.ConsumeIntegralInRange<int>(0, 7) == 0 ? !device_writes : device_writes;
    if (writable) {
      segs.push_back(Writable(ConsumeLen(in)));
    } else {
      Segment s = Readable(in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 8)));
      s.len = std::max(s.len, ConsumeLen(in));
      segs.push_back(std::move(s));
    }
  }
  // Readable before writable, as chains must be (raw steps break that too).
  std::stable_partition(segs.begin(), segs.end(), [](const Segment& s) { return !s.writable; });
  d.AddChain(q, segs, in);
}

std::optional<std::pair<uint16_t, uint16_t>> ConsumeSize(FuzzedDataProvider& in) {
  if (in.ConsumeBool()) return std::nullopt;
  return std::make_pair(in.ConsumeIntegral<uint16_t>(), in.ConsumeIntegral<uint16_t>());
}

}  // namespace
}  // namespace vmm::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vmm;
  using namespace vmm::fuzz;
  const GuestMemory& mem = ZeroedSmallMemory();
  FuzzedDataProvider in(data, size);

  auto owned = std::make_unique<FuzzChardev>(mem, ConsumeSize(in));
  FuzzChardev* backend = owned.get();
  std::shared_ptr<VirtioConsole> console = VirtioConsole::Create(std::move(owned));
  DeviceDriver driver(mem, *console);
  driver.Activate(in);

  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 11)) {
      case 0:
      case 1:
        AddChain(driver, static_cast<uint16_t>(in.ConsumeIntegralInRange<int>(0, 1)), in);
        break;
      case 2:
        driver.RawStep(in);
        break;
      case 3:
      case 4:
        console->ProcessQueue(driver.ConsumeQueue(in));
        break;
      case 5:  // host input arrives; the backend calls back (even when not asked to)
        backend->AddInput(in.ConsumeIntegralInRange<size_t>(0, 0x3000));
        if (backend->watching_input || in.ConsumeBool()) backend->callbacks().readable();
        break;
      case 6:  // host output drains
        backend->AddRoom(in.ConsumeIntegralInRange<size_t>(0, 0x3000));
        if (backend->watching_output || in.ConsumeBool()) backend->callbacks().writable();
        break;
      case 7:
        backend->SetSize(ConsumeSize(in));
        backend->callbacks().resized();
        break;
      case 8:
        FuzzConfigRead(*console, in, 0x20);
        break;
      case 9:
        FuzzConfigWrite(*console, in, 0x20);
        break;
      default:  // the driver resets the device and starts it again
        console->Reset();
        driver.Activate(in);
        break;
    }
  }
  console->Reset();
  return 0;
}
