// virtio-net's control queue (virtio 1.x 5.1.6.5): RX mode, the MAC filter
// table and the number of queue pairs. Part of VirtioNet (virtio_net.h).
#include <utility>

#include "devices/virtio/net/virtio_net.h"

namespace vmm {
namespace {

using namespace virtio_net;  // NOLINT: the spec's names, local to this file

constexpr uint64_t Bit(unsigned n) { return 1ull << n; }

}  // namespace

void VirtioNet::ProcessCtrl(QueuePass& pass) {
  const uint16_t index = active_->ctrl;
  const GuestMemory& memory = *active_->memory;
  while (std::optional<DescriptorChain> chain = pass.Pop(index)) {
    ++stats_.ctrl_commands;
    uint32_t used = 0;
    uint8_t header[2];
    if (chain->writable_bytes() == 0) {
      ++stats_.ctrl_errors;  // nowhere to put the ack: returned unanswered
    } else {
      uint8_t ack = kCtrlErr;
      if (chain->ReadFrom(memory, 0, absl::MakeSpan(header)) == sizeof(header)) {
        ack = HandleCtrl(header[0], header[1], *chain, chain->readable_bytes() - sizeof(header),
                         pass);
      }
      if (active_->broken) return;
      if (ack != kCtrlOk) ++stats_.ctrl_errors;
      chain->WriteTo(memory, 0, absl::MakeConstSpan(&ack, 1));
      used = 1;
    }
    if (!pass.AddUsed(index, std::move(*chain), used)) return;
  }
}

uint8_t VirtioNet::HandleCtrl(uint8_t cls, uint8_t cmd, const DescriptorChain& chain,
                              uint64_t data_len, QueuePass& pass) {
  const GuestMemory& memory = *active_->memory;
  const uint64_t features = active_->features;
  constexpr uint64_t kData = 2;  // command data follows class and command
  switch (cls) {
    case kCtrlRx: {
      if (!(features & Bit(kFCtrlRx)) || data_len != 1) return kCtrlErr;
      uint8_t on = 0;
      chain.ReadFrom(memory, kData, absl::MakeSpan(&on, 1));
      // The tap hands us every frame; the guest's stack filters. Record the
      // mode and acknowledge (QEMU's tap backend does the same).
      if (cmd == kCtrlRxPromisc) {
        active_->promiscuous = on != 0;
      } else if (cmd == kCtrlRxAllmulti) {
        active_->all_multicast = on != 0;
      } else {
        return kCtrlErr;  // the others need CTRL_RX_EXTRA, not offered
      }
      return kCtrlOk;
    }
    case kCtrlMac: {
      // Linux sends the filter table whenever CTRL_RX is negotiated: two
      // tables, each a 32-bit count and that many MACs, filling the data
      // exactly. Checked, then accepted (no filtering, as above).
      if (!(features & Bit(kFCtrlRx)) || cmd != kCtrlMacTableSet) {
        return kCtrlErr;
      }
      uint64_t offset = 0;
      for (int table = 0; table < 2; ++table) {
        uint32_t entries = 0;
        if (data_len - offset < sizeof(entries)) return kCtrlErr;
        chain.ReadFrom(memory, kData + offset, absl::Span<uint8_t>(
                                                   reinterpret_cast<uint8_t*>(&entries), 4));
        offset += sizeof(entries);
        if (uint64_t{entries} * 6 > data_len - offset) return kCtrlErr;
        offset += uint64_t{entries} * 6;
      }
      return offset == data_len ? kCtrlOk : kCtrlErr;
    }
    case kCtrlMq: {
      if (!(features & Bit(kFMq)) || cmd != kCtrlMqVqPairsSet ||
          data_len != 2) {
        return kCtrlErr;
      }
      uint16_t pairs = 0;
      chain.ReadFrom(memory, kData,
                     absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(&pairs), sizeof(pairs)));
      return SetPairs(pairs, pass);
    }
    default:
      return kCtrlErr;  // VLAN, ANNOUNCE, GUEST_OFFLOADS...: not offered
  }
}

uint8_t VirtioNet::SetPairs(uint16_t pairs, QueuePass& pass) {
  if (pairs < kCtrlMqVqPairsMin || pairs > active_->negotiated_pairs) return kCtrlErr;
  for (int p = 0; p < max_pairs_; ++p) {
    const bool use = p < pairs;
    if (absl::Status s = backend_->SetQueueEnabled(p, use); !s.ok()) {
      pass.Fail(active_->ctrl, s);
      return kCtrlErr;
    }
    // New pairs start by looking at the backend; frames or buffers left on
    // a pair being retired stay until it is used again or reset.
    SetWatching(p, use);
  }
  active_->pairs = pairs;
  return kCtrlOk;
}

}  // namespace vmm
