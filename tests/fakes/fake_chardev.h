// A Chardev for device tests: records output, serves queued input, and takes
// at most `write_budget` bytes before it "would block". The State outlives
// the chardev (a device may own it), so a test reads and steers it through
// the State; callbacks are fired by the test, as the loop would.
#ifndef VMM_TESTS_FAKES_FAKE_CHARDEV_H_
#define VMM_TESTS_FAKES_FAKE_CHARDEV_H_

#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>

#include "devices/chardev/chardev.h"

namespace vmm::testing {

class FakeChardev : public Chardev {
 public:
  struct State {
    Callbacks callbacks;
    bool started = false;
    std::string output;
    std::deque<uint8_t> input;
    size_t write_budget = SIZE_MAX;
    bool watching_input = false;
    bool watching_output = false;
    int input_watch_changes = 0;
    size_t reads = 0;
    std::optional<std::pair<uint16_t, uint16_t>> size;
    bool input_ends = false;  // InputEnded() once `input` is used up

    void Input(const std::string& s) { input.insert(input.end(), s.begin(), s.end()); }
  };
  explicit FakeChardev(State* state) : s_(state) {}

  void Start(Callbacks callbacks) override {
    s_->callbacks = std::move(callbacks);
    s_->started = true;
  }
  void Stop() override {
    s_->callbacks = {};
    s_->started = false;
    s_->watching_input = s_->watching_output = false;
  }
  bool InputEnded() const override { return s_->input_ends && s_->input.empty(); }
  size_t Read(absl::Span<uint8_t> out) override {
    ++s_->reads;
    size_t n = 0;
    while (n < out.size() && !s_->input.empty()) {
      out[n++] = s_->input.front();
      s_->input.pop_front();
    }
    return n;
  }
  size_t Write(absl::Span<const uint8_t> bytes) override {
    const size_t n = std::min(bytes.size(), s_->write_budget);
    s_->write_budget -= n;
    s_->output.append(bytes.begin(), bytes.begin() + n);
    return n;
  }
  void WatchInput(bool watch) override {
    s_->input_watch_changes += watch != s_->watching_input;
    s_->watching_input = watch;
  }
  void WatchOutput(bool watch) override { s_->watching_output = watch; }
  std::optional<std::pair<uint16_t, uint16_t>> TerminalSize() const override { return s_->size; }

 private:
  State* s_;
};

}  // namespace vmm::testing

#endif  // VMM_TESTS_FAKES_FAKE_CHARDEV_H_
