// Fuzzes the 16550A UART register file: guest reads and writes of any register and width
// (DLAB, FIFO control, IER/IIR, loopback via MCR, LSR/MSR read side effects), interleaved
// with host input arriving into the receive FIFO.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "devices/legacy/serial.h"
#include "tests/fakes/fake_irq_line.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vmm;
  using namespace vmm::fuzz;
  FuzzedDataProvider in(data, size);
  auto irq = std::make_shared<FakeIrqLine>();
  size_t output_bytes = 0;
  size_t rx_space_calls = 0;
  Serial serial(
      irq, [&](absl::Span<const uint8_t> bytes) { output_bytes += bytes.size(); },
      [&] { ++rx_space_calls; });
  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 4)) {
      case 0:
      case 1: {
        const uint64_t reg = in.ConsumeIntegralInRange<uint64_t>(0, 8);
        std::vector<uint8_t> buf = in.ConsumeBytes<uint8_t>(
            in.ConsumeIntegralInRange<int>(0, 3) == 0 ? ConsumeWidth(in) : 1);
        if (!buf.empty()) serial.Write(reg, buf);
        break;
      }
      case 2:
      case 3: {
        std::vector<uint8_t> buf(in.ConsumeIntegralInRange<int>(0, 3) == 0 ? ConsumeWidth(in) : 1);
        serial.Read(in.ConsumeIntegralInRange<uint64_t>(0, 8), absl::MakeSpan(buf));
        break;
      }
      default: {
        std::vector<uint8_t> bytes =
            in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 80));
        const size_t taken = serial.EnqueueInput(bytes);
        FUZZ_CHECK(taken <= bytes.size());
        break;
      }
    }
  }
  return 0;
}
