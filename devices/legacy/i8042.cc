#include "devices/legacy/i8042.h"

#include <utility>

#include "base/state_file.h"
#include "base/status_macros.h"

namespace vmm {
namespace {

// Status register.
constexpr uint8_t kStatusOutputFull = 0x01;
constexpr uint8_t kStatusSystemFlag = 0x04;
constexpr uint8_t kStatusLastWasCommand = 0x08;
constexpr uint8_t kStatusNotInhibited = 0x10;
constexpr uint8_t kStatusAuxData = 0x20;

// Command byte.
constexpr uint8_t kCommandByteSystemFlag = 0x04;
constexpr uint8_t kCommandByteKbdDisabled = 0x10;
constexpr uint8_t kCommandByteAuxDisabled = 0x20;

// Output port.
constexpr uint8_t kOutputPortResetHigh = 0x01;  // the CPU runs while this is 1
constexpr uint8_t kOutputPortA20 = 0x02;

// Controller commands (written to the command port).
constexpr uint8_t kCmdReadCommandByte = 0x20;
constexpr uint8_t kCmdReadRamLast = 0x3f;
constexpr uint8_t kCmdWriteCommandByte = 0x60;
constexpr uint8_t kCmdWriteRamLast = 0x7f;
constexpr uint8_t kCmdDisableAux = 0xa7;
constexpr uint8_t kCmdEnableAux = 0xa8;
constexpr uint8_t kCmdTestAux = 0xa9;
constexpr uint8_t kCmdSelfTest = 0xaa;
constexpr uint8_t kCmdTestKbd = 0xab;
constexpr uint8_t kCmdDisableKbd = 0xad;
constexpr uint8_t kCmdEnableKbd = 0xae;
constexpr uint8_t kCmdReadInputPort = 0xc0;
constexpr uint8_t kCmdReadOutputPort = 0xd0;
constexpr uint8_t kCmdWriteOutputPort = 0xd1;
constexpr uint8_t kCmdWriteKbdOutput = 0xd2;
constexpr uint8_t kCmdWriteAuxOutput = 0xd3;  // Linux's AUX loopback test
constexpr uint8_t kCmdWriteToAux = 0xd4;
constexpr uint8_t kCmdDisableA20 = 0xdd;
constexpr uint8_t kCmdEnableA20 = 0xdf;
constexpr uint8_t kCmdReadTestInputs = 0xe0;
constexpr uint8_t kCmdPulseFirst = 0xf0;  // 0xf0-0xff pulse output lines 3:0

constexpr uint8_t kSelfTestPassed = 0x55;
constexpr uint8_t kInterfaceTestPassed = 0x00;
constexpr uint8_t kInputPortKbdNotInhibited = 0x80;

}  // namespace

I8042::I8042(std::function<void()> on_reset) : on_reset_(std::move(on_reset)) {}

void I8042::Read(uint64_t offset, absl::Span<uint8_t> data) {
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = (offset < kSize && i < kSize - offset) ? ReadPort(offset + i) : 0xff;
  }
}

void I8042::Write(uint64_t offset, absl::Span<const uint8_t> data) {
  bool reset = false;
  {
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < data.size(); ++i) {
      if (offset >= kSize || i >= kSize - offset) continue;
      if (offset + i == kDataOffset) reset |= WriteData(data[i]);
      if (offset + i == kCommandOffset) reset |= WriteCommand(data[i]);
    }
  }
  // Outside the lock: the VMM may stop vCPUs, including this one, from here.
  if (reset && on_reset_) on_reset_();
}

uint8_t I8042::ReadPort(uint64_t port) {
  if (port == kCommandOffset) return Status();
  if (port != kDataOffset) return 0xff;
  if (output_.has_value()) {
    last_output_ = *output_;
    output_.reset();
  }
  return last_output_;
}

uint8_t I8042::Status() const {
  uint8_t status = kStatusNotInhibited;
  if (output_.has_value()) {
    status |= kStatusOutputFull;
    if (output_from_aux_) status |= kStatusAuxData;
  }
  if (command_byte_ & kCommandByteSystemFlag) status |= kStatusSystemFlag;
  if (last_write_was_command_) status |= kStatusLastWasCommand;
  return status;
}

void I8042::Respond(uint8_t value, bool from_aux) {
  output_ = value;
  output_from_aux_ = from_aux;
}

bool I8042::WriteData(uint8_t value) {
  last_write_was_command_ = false;
  uint8_t command = pending_command_;
  pending_command_ = 0;
  switch (command) {
    case kCmdWriteCommandByte:
      command_byte_ = value;
      break;
    case kCmdWriteOutputPort:
      output_port_ = value;
      return !(value & kOutputPortResetHigh);
    case kCmdWriteKbdOutput:
      Respond(value);
      break;
    case kCmdWriteAuxOutput:
      Respond(value, /*from_aux=*/true);
      break;
    default:
      // A byte for the keyboard (or, after 0xd4, the mouse): none attached.
      break;
  }
  return false;
}

bool I8042::WriteCommand(uint8_t command) {
  last_write_was_command_ = true;
  pending_command_ = 0;  // a new command abandons one awaiting its parameter
  if (command >= kCmdPulseFirst) return !(command & 0x01);  // 0xfe pulses reset
  if (command == kCmdReadCommandByte) {
    Respond(command_byte_);
    return false;
  }
  if (command > kCmdReadCommandByte && command <= kCmdReadRamLast) {
    Respond(0);  // the rest of the controller RAM
    return false;
  }
  if (command >= kCmdWriteCommandByte && command <= kCmdWriteRamLast) {
    pending_command_ = kCmdWriteCommandByte;
    return false;
  }
  switch (command) {
    case kCmdDisableAux:
      command_byte_ |= kCommandByteAuxDisabled;
      break;
    case kCmdEnableAux:
      command_byte_ &= ~kCommandByteAuxDisabled;
      break;
    case kCmdTestAux:
    case kCmdTestKbd:
      Respond(kInterfaceTestPassed);
      break;
    case kCmdSelfTest:
      command_byte_ |= kCommandByteSystemFlag;
      Respond(kSelfTestPassed);
      break;
    case kCmdDisableKbd:
      command_byte_ |= kCommandByteKbdDisabled;
      break;
    case kCmdEnableKbd:
      command_byte_ &= ~kCommandByteKbdDisabled;
      break;
    case kCmdReadInputPort:
      Respond(kInputPortKbdNotInhibited);
      break;
    case kCmdReadOutputPort:
      Respond(output_port_);
      break;
    case kCmdWriteOutputPort:
    case kCmdWriteKbdOutput:
    case kCmdWriteAuxOutput:
    case kCmdWriteToAux:
      pending_command_ = command;
      break;
    case kCmdDisableA20:
      output_port_ &= ~kOutputPortA20;
      break;
    case kCmdEnableA20:
      output_port_ |= kOutputPortA20;
      break;
    case kCmdReadTestInputs:
      Respond(0);
      break;
    default:  // unknown commands are ignored, as by the real controller
      break;
  }
  return false;
}

std::string I8042::SaveState() {
  absl::MutexLock lock(&mu_);
  StateWriter out;
  out.Put(command_byte_);
  out.Put(output_port_);
  out.Put<uint8_t>(output_.has_value());
  out.Put<uint8_t>(output_.value_or(0));
  out.Put<uint8_t>(output_from_aux_);
  out.Put(last_output_);
  out.Put(pending_command_);
  out.Put<uint8_t>(last_write_was_command_);
  return out.Take();
}

absl::Status I8042::RestoreState(absl::string_view payload) {
  StateReader in("i8042", payload);
  uint8_t command_byte, output_port, has_output, output, from_aux, last_output, pending, last_cmd;
  for (auto [name, field] :
       {std::pair{"command byte", &command_byte}, {"output port", &output_port},
        {"output full", &has_output}, {"output", &output}, {"output from aux", &from_aux},
        {"last output", &last_output}, {"pending command", &pending},
        {"last write", &last_cmd}}) {
    RETURN_IF_ERROR(in.Get(name, field));
  }
  RETURN_IF_ERROR(in.Finish());
  absl::MutexLock lock(&mu_);
  command_byte_ = command_byte;
  // The reset line stays released: a snapshot is never taken mid-reset.
  output_port_ = output_port | 0x01;
  output_ = has_output ? std::optional<uint8_t>(output) : std::nullopt;
  output_from_aux_ = from_aux != 0;
  last_output_ = last_output;
  pending_command_ = pending;
  last_write_was_command_ = last_cmd != 0;
  return absl::OkStatus();
}

}  // namespace vmm
