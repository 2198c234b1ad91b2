// Fuzzes virtio-net request handling: transmit chains, receive buffers and control
// commands (well-formed ones built from the input, and raw ring contents from ring_ops.h)
// on one to three queue pairs, frames arriving from a fake backend (any length, read
// errors, refused writes), config space accesses, and reset/re-activation in the middle.
#include <fuzzer/FuzzedDataProvider.h>
#include <linux/if_tun.h>

#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <vector>

#include "devices/virtio/net/net_backend.h"
#include "devices/virtio/net/virtio_net.h"
#include "devices/virtio/net/virtio_net_spec.h"
#include "tests/fuzz/device_driver.h"
#include "tests/fuzz/fuzz_util.h"

namespace vmm::fuzz {
namespace {

constexpr uint64_t Bit(unsigned n) { return 1ull << n; }

// Frames to deliver per queue, from the input; sent frames are counted and dropped.
class FuzzNetBackend : public NetBackend {
 public:
  FuzzNetBackend(int queues, unsigned offloads)
      : rx_(static_cast<size_t>(queues)), offloads_(offloads) {}

  int queue_count() const override { return static_cast<int>(rx_.size()); }
  int rx_fd(int) const override { return -1; }  // no event loop in the fuzzer
  absl::StatusOr<size_t> ReadFrame(int q, absl::Span<uint8_t> buf) override {
    FUZZ_CHECK(q >= 0 && q < queue_count());
    if (fail_reads) return absl::UnavailableError("fuzz: read error");
    if (rx_[q].empty()) return 0;
    const std::vector<uint8_t>& frame = rx_[q].front();
    // A frame longer than the buffer is cut short, as a tap read does.
    const size_t n = std::min(frame.size(), buf.size());
    if (n > 0) std::memcpy(buf.data(), frame.data(), std::min<size_t>(n, 64));
    rx_[q].pop_front();
    return n;
  }
  absl::Status WriteFrame(int q, absl::Span<const iovec> iov) override {
    FUZZ_CHECK(q >= 0 && q < queue_count());
    size_t total = 0;
    for (const iovec& v : iov) {
      FUZZ_CHECK(v.iov_base != nullptr || v.iov_len == 0);
      total += v.iov_len;
    }
    FUZZ_CHECK(total >= VirtioNet::kHeaderSize &&
               total <= VirtioNet::kHeaderSize + VirtioNet::kMaxFrame);
    if (refuse_writes) return absl::UnavailableError("fuzz: refused");
    return absl::OkStatus();
  }
  unsigned supported_offloads() const override { return offloads_; }
  absl::Status SetOffloads(unsigned flags) override {
    FUZZ_CHECK((flags & ~offloads_) == 0);
    if (fail_control) return absl::InternalError("fuzz: TUNSETOFFLOAD");
    return absl::OkStatus();
  }
  absl::Status SetQueueEnabled(int q, bool) override {
    FUZZ_CHECK(q >= 0 && q < queue_count());
    if (fail_control) return absl::InternalError("fuzz: TUNSETQUEUE");
    return absl::OkStatus();
  }

  // Frame length only matters to the device (contents beyond the header are copied
  // blindly), so a frame is its first bytes from the input plus a length.
  void Inject(int q, std::vector<uint8_t> frame) {
    if (rx_[q].size() < 16) rx_[q].push_back(std::move(frame));
  }

  bool fail_reads = false;
  bool refuse_writes = false;
  bool fail_control = false;

 private:
  std::vector<std::deque<std::vector<uint8_t>>> rx_;
  unsigned offloads_;
};

std::vector<uint8_t> NetHeader(FuzzedDataProvider& in) {
  std::vector<uint8_t> h = in.ConsumeBytes<uint8_t>(VirtioNet::kHeaderSize);
  h.resize(VirtioNet::kHeaderSize, 0);
  return h;
}

void AddTx(DeviceDriver& d, int pairs, FuzzedDataProvider& in) {
  const uint16_t q = static_cast<uint16_t>(2 * in.ConsumeIntegralInRange<int>(0, pairs - 1) + 1);
  std::vector<Segment> segs;
  if (in.ConsumeBool()) {
    segs.push_back(Readable(NetHeader(in)));
  } else {  // header split or short
    segs.push_back(Readable(in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 12))));
  }
  const int pieces = in.ConsumeIntegralInRange<int>(0, 3);
  for (int i = 0; i < pieces; ++i) {
    Segment s = Readable(in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 16)));
    s.len = std::max<uint32_t>(s.len, in.ConsumeIntegralInRange<uint32_t>(0, 0x3000));
    segs.push_back(std::move(s));
  }
  if (in.ConsumeIntegralInRange<int>(0, 7) == 0) segs.push_back(Writable(16));  // wrong way
  d.AddChain(q, segs, in);
}

void AddRx(DeviceDriver& d, int pairs, FuzzedDataProvider& in) {
  const uint16_t q = static_cast<uint16_t>(2 * in.ConsumeIntegralInRange<int>(0, pairs - 1));
  const int count = in.ConsumeIntegralInRange<int>(1, 4);
  for (int c = 0; c < count; ++c) {
    std::vector<Segment> segs;
    const int pieces = in.ConsumeIntegralInRange<int>(1, 3);
    for (int i = 0; i < pieces; ++i) {
      segs.push_back(Writable(in.ConsumeBool() ? in.ConsumeIntegralInRange<uint32_t>(0, 16)
                                               : in.ConsumeIntegralInRange<uint32_t>(0, 0x2000)));
    }
    if (in.ConsumeIntegralInRange<int>(0, 7) == 0) segs.insert(segs.begin(), Readable({1, 2}));
    d.AddChain(q, segs, in);
  }
}

void AddCtrl(DeviceDriver& d, uint16_t ctrl, FuzzedDataProvider& in) {
  using namespace virtio_net;  // NOLINT: the spec's names
  std::vector<uint8_t> command;
  std::vector<uint8_t> data;
  switch (in.ConsumeIntegralInRange<int>(0, 4)) {
    case 0:
      command = {kCtrlRx, in.ConsumeBool() ? kCtrlRxPromisc : kCtrlRxAllmulti};
      data = {in.ConsumeIntegral<uint8_t>()};
      break;
    case 1: {  // MAC tables: counts (sometimes lying) and entries
      command = {kCtrlMac, kCtrlMacTableSet};
      for (int t = 0; t < 2; ++t) {
        const uint32_t n = in.ConsumeIntegralInRange<uint32_t>(0, 3);
        const uint32_t claimed = in.ConsumeIntegralInRange<int>(0, 7) == 0
                                     ? in.ConsumeIntegral<uint32_t>()
                                     : n;
        data.insert(data.end(), reinterpret_cast<const uint8_t*>(&claimed),
                    reinterpret_cast<const uint8_t*>(&claimed) + 4);
        data.resize(data.size() + 6 * n, 0x52);
      }
      break;
    }
    case 2: {
      command = {kCtrlMq, kCtrlMqVqPairsSet};
      const uint16_t pairs = in.ConsumeIntegralInRange<uint16_t>(0, 4);
      data = {static_cast<uint8_t>(pairs), static_cast<uint8_t>(pairs >> 8)};
      break;
    }
    default:
      command = in.ConsumeBytes<uint8_t>(2);
      data = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 24));
      break;
  }
  std::vector<Segment> segs;
  if (in.ConsumeBool()) {
    std::vector<uint8_t> all = command;
    all.insert(all.end(), data.begin(), data.end());
    segs.push_back(Readable(std::move(all)));
  } else {
    segs.push_back(Readable(std::move(command)));
    if (!data.empty()) segs.push_back(Readable(std::move(data)));
  }
  if (in.ConsumeIntegralInRange<int>(0, 7) != 0) {
    segs.push_back(Writable(in.ConsumeBool() ? 1 : in.ConsumeIntegralInRange<uint32_t>(0, 8)));
  }
  d.AddChain(ctrl, segs, in);
}

}  // namespace
}  // namespace vmm::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vmm;
  using namespace vmm::fuzz;
  const GuestMemory& mem = ZeroedSmallMemory();
  FuzzedDataProvider in(data, size);

  const int pairs = in.ConsumeIntegralInRange<int>(1, 3);
  static constexpr unsigned kAll = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_UFO;
  auto owned = std::make_unique<FuzzNetBackend>(pairs, kAll & in.ConsumeIntegral<unsigned>());
  FuzzNetBackend* backend = owned.get();
  VirtioNet net(std::move(owned), {0x52, 0x54, 0, 0x12, 0x34, 0x56}, /*loop=*/nullptr);
  DeviceDriver driver(mem, net);
  driver.Activate(in);

  while (in.remaining_bytes() > 0) {
    const uint16_t ctrl =
        (driver.features() & Bit(virtio_net::kFMq)) ? static_cast<uint16_t>(2 * pairs) : 2;
    switch (in.ConsumeIntegralInRange<int>(0, 12)) {
      case 0:
      case 1:
        AddTx(driver, pairs, in);
        break;
      case 2:
        AddRx(driver, pairs, in);
        break;
      case 3:
        AddCtrl(driver, ctrl, in);
        break;
      case 4:
        driver.RawStep(in);
        break;
      case 5: {  // a frame arrives on the host side
        const int q = in.ConsumeIntegralInRange<int>(0, pairs - 1);
        std::vector<uint8_t> frame = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 24));
        size_t len = frame.size();
        switch (in.ConsumeIntegralInRange<int>(0, 3)) {
          case 0:
            len = in.ConsumeIntegralInRange<size_t>(0, 0x4000);
            break;
          case 1:  // around the largest frame and the bounce buffer
            len = VirtioNet::kHeaderSize + VirtioNet::kMaxFrame - 2 +
                  in.ConsumeIntegralInRange<size_t>(0, 4) +
                  (in.ConsumeBool() ? 4096 : 0);
            break;
          default:
            break;
        }
        frame.resize(len, 0xab);
        backend->Inject(q, std::move(frame));
        if (in.ConsumeBool()) net.OnBackendReadable(q);
        break;
      }
      case 6:
        net.OnBackendReadable(in.ConsumeIntegralInRange<int>(-1, pairs));
        break;
      case 7:
      case 8:
        net.ProcessQueue(driver.ConsumeQueue(in));
        break;
      case 9:
        FuzzConfigRead(net, in, 0x20);
        break;
      case 10:
        FuzzConfigWrite(net, in, 0x20);
        break;
      case 11:  // host trouble
        backend->fail_reads = in.ConsumeIntegralInRange<int>(0, 3) == 0;
        backend->refuse_writes = in.ConsumeIntegralInRange<int>(0, 3) == 0;
        backend->fail_control = in.ConsumeIntegralInRange<int>(0, 7) == 0;
        break;
      default:  // the driver resets the device and starts it again
        net.Reset();
        driver.Activate(in);
        break;
    }
  }
  net.Reset();
  return 0;
}
