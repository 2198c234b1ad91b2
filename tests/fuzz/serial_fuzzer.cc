// Fuzzes the 16550A UART register file: guest reads and writes of any register and width
// (DLAB, FIFO control, IER/IIR, loopback via MCR, LSR/MSR read side effects), interleaved
// with a host that sends input, stalls output (a reader that does not read) and catches up,
// and with snapshot state restored from the input (untrusted: a snapshot file) or from a
// save of the UART itself (which must always be accepted).
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "devices/legacy/serial.h"
#include "tests/fakes/fake_chardev.h"
#include "tests/fakes/fake_irq_line.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vmm;
  using namespace vmm::fuzz;
  FuzzedDataProvider in(data, size);
  auto irq = std::make_shared<FakeIrqLine>();
  testing::FakeChardev::State host;
  testing::FakeChardev chardev(&host);
  Serial serial(irq, &chardev);
  size_t written = 0;  // bytes the guest wrote to any register
  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 7)) {
      case 0:
      case 1: {
        const uint64_t reg = in.ConsumeIntegralInRange<uint64_t>(0, 8);
        std::vector<uint8_t> buf = in.ConsumeBytes<uint8_t>(
            in.ConsumeIntegralInRange<int>(0, 3) == 0 ? ConsumeWidth(in) : 1);
        if (!buf.empty()) serial.Write(reg, buf);
        written += buf.size();
        FUZZ_CHECK(host.output.size() <= written);
        break;
      }
      case 2:
      case 3: {
        std::vector<uint8_t> buf(in.ConsumeIntegralInRange<int>(0, 3) == 0 ? ConsumeWidth(in) : 1);
        serial.Read(in.ConsumeIntegralInRange<uint64_t>(0, 8), absl::MakeSpan(buf));
        break;
      }
      case 4: {  // input arrives; the loop calls back only while it is watched
        std::vector<uint8_t> bytes =
            in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 80));
        host.input.insert(host.input.end(), bytes.begin(), bytes.end());
        if (host.watching_input) host.callbacks.readable();
        break;
      }
      case 6: {  // a snapshot's state, from the input: refused or taken, never more
        const std::string state = in.ConsumeRandomLengthString(64);
        (void)serial.RestoreState(state);
        break;
      }
      case 7: {  // its own state, saved and restored: always accepted
        FUZZ_CHECK(serial.RestoreState(serial.SaveState()).ok());
        break;
      }
      default: {  // the host takes this many more bytes, then would block
        host.write_budget = in.ConsumeIntegralInRange<size_t>(0, 40);
        if (host.watching_output) host.callbacks.writable();
        break;
      }
    }
  }
  return 0;
}
