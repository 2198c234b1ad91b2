// Fuzzes virtio-vsock request handling and its connection state machine: guest packets
// (well-formed headers with input-chosen op, ports, credit and payload, raw headers, and raw
// ring contents from ring_ops.h), receive buffers, and the host side over real Unix sockets
// in a per-process temporary directory: host clients connecting with "CONNECT <port>" (or
// garbage), listeners at <path>_1024 and <path>_1025 for guest-initiated connections (other
// ports have none), host ends writing, reading, half-closing and closing, and host events
// handled after each. Also small buffers and connection limits, a zero shutdown timeout (so
// closing connections expire at once), config space accesses, and reset/re-activation in the
// middle. Each input creates and destroys its own device and sockets; the lowest free fd is
// checked afterwards so a leaked socket shows up as a crash.
#include <fcntl.h>
#include <fuzzer/FuzzedDataProvider.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "devices/virtio/vsock/virtio_vsock.h"
#include "devices/virtio/vsock/vsock_muxer.h"
#include "devices/virtio/vsock/vsock_packet.h"
#include "tests/fuzz/device_driver.h"
#include "tests/fuzz/fuzz_util.h"

namespace vmm::fuzz {
namespace {

constexpr uint64_t kGuestCid = 3;
constexpr uint32_t kListenPorts[] = {1024, 1025};

UniqueFd UnixSocket() {
  return UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
}

sockaddr_un Address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  FUZZ_CHECK(path.size() < sizeof(addr.sun_path));
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

// The per-process directory, the device's socket path and the host listeners.
struct World {
  std::string dir;
  std::string path;
  std::vector<UniqueFd> listeners;
};

World& TheWorld() {
  static World* world = [] {
    auto* w = new World;
    char dir[] = "/tmp/vsock-fuzz-XXXXXX";
    FUZZ_CHECK(::mkdtemp(dir) != nullptr);
    w->dir = dir;
    w->path = w->dir + "/v.sock";
    for (uint32_t port : kListenPorts) {
      UniqueFd fd = UnixSocket();
      sockaddr_un addr = Address(w->path + "_" + std::to_string(port));
      FUZZ_CHECK(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
      FUZZ_CHECK(::listen(fd.get(), 8) == 0);
      w->listeners.push_back(std::move(fd));
    }
    ::atexit([] {
      std::string cmd = "rm -rf " + TheWorld().dir;
      (void)!::system(cmd.c_str());
    });
    return w;
  }();
  return *world;
}

uint32_t ConsumePort(FuzzedDataProvider& in, bool host_side) {
  switch (in.ConsumeIntegralInRange<int>(0, 5)) {
    case 0:
      return in.ConsumeIntegral<uint32_t>();
    case 1:
    case 2:
      if (host_side) return kListenPorts[in.ConsumeIntegralInRange<int>(0, 1)];
      [[fallthrough]];
    case 3:
      if (host_side) {
        return VsockMuxer::kFirstLocalPort + in.ConsumeIntegralInRange<uint32_t>(0, 3);
      }
      [[fallthrough]];
    default:
      return (host_side ? 1026u : 1000u) + in.ConsumeIntegralInRange<uint32_t>(0, 2);
  }
}

// A guest packet on the transmit queue; `script` (when given) fixes op and ports so that
// connections get established often (a REQUEST to a listener, a RESPONSE to a host client).
struct Script {
  uint16_t op;
  uint32_t src_port;
  uint32_t dst_port;
};

void AddGuestPacket(DeviceDriver& d, FuzzedDataProvider& in, const Script* script = nullptr) {
  VsockHeader h{};
  const bool raw = script == nullptr && in.ConsumeIntegralInRange<int>(0, 15) == 0;
  if (raw) {
    std::vector<uint8_t> bytes = in.ConsumeBytes<uint8_t>(sizeof(h));
    if (!bytes.empty()) std::memcpy(&h, bytes.data(), bytes.size());
  } else {
    h.src_cid = in.ConsumeIntegralInRange<int>(0, 15) == 0 ? in.ConsumeIntegral<uint64_t>()
                                                            : kGuestCid;
    h.dst_cid = in.ConsumeIntegralInRange<int>(0, 15) == 0 ? in.ConsumeIntegral<uint64_t>()
                                                            : kVsockHostCid;
    h.src_port = ConsumePort(in, false);
    h.dst_port = ConsumePort(in, true);
    h.type = in.ConsumeIntegralInRange<int>(0, 15) == 0 ? in.ConsumeIntegral<uint16_t>()
                                                         : VIRTIO_VSOCK_TYPE_STREAM;
    h.op = in.ConsumeIntegralInRange<uint16_t>(0, 8);
    h.flags = in.ConsumeIntegralInRange<uint32_t>(0, 3);
    switch (in.ConsumeIntegralInRange<int>(0, 3)) {
      case 0:
        h.buf_alloc = in.ConsumeIntegral<uint32_t>();
        break;
      case 1:
        h.buf_alloc = in.ConsumeIntegralInRange<uint32_t>(0, 64);
        break;
      default:
        h.buf_alloc = 64 * 1024;
        break;
    }
    h.fwd_cnt = in.ConsumeBool() ? 0 : in.ConsumeIntegral<uint32_t>();
    if (script != nullptr) {
      h.src_cid = kGuestCid;
      h.dst_cid = kVsockHostCid;
      h.type = VIRTIO_VSOCK_TYPE_STREAM;
      h.op = script->op;
      h.src_port = script->src_port;
      h.dst_port = script->dst_port;
    }
  }
  uint32_t payload = 0;
  if (h.op == VIRTIO_VSOCK_OP_RW || in.ConsumeIntegralInRange<int>(0, 7) == 0) {
    payload = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint32_t>(0, 64)
                               : in.ConsumeIntegralInRange<uint32_t>(0, 0x2000);
  }
  if (!raw) {
    h.len = in.ConsumeIntegralInRange<int>(0, 7) == 0 && script == nullptr
                ? in.ConsumeIntegral<uint32_t>()
                : payload;
  }
  std::vector<uint8_t> header(sizeof(h));
  std::memcpy(header.data(), &h, sizeof(h));
  std::vector<Segment> segs;
  switch (in.ConsumeIntegralInRange<int>(script != nullptr ? 2 : 0, 3)) {
    case 0: {  // header and payload in one buffer
      header.resize(sizeof(h) + payload, 'g');
      segs.push_back(Readable(std::move(header)));
      break;
    }
    case 1:  // a short header
      header.resize(in.ConsumeIntegralInRange<size_t>(0, sizeof(h)));
      segs.push_back(Readable(std::move(header)));
      break;
    default:  // as Linux lays it out: header, then payload
      segs.push_back(Readable(std::move(header)));
      if (payload > 0) {
        Segment s = Readable({'g'});
        s.len = payload;
        segs.push_back(std::move(s));
      }
      break;
  }
  if (in.ConsumeIntegralInRange<int>(0, 15) == 0) segs.push_back(Writable(8));  // wrong way
  d.AddChain(VirtioVsock::kTxQueue, segs, in);
}

void AddRxBuffers(DeviceDriver& d, FuzzedDataProvider& in) {
  const int count = in.ConsumeIntegralInRange<int>(1, 4);
  for (int c = 0; c < count; ++c) {
    std::vector<Segment> segs;
    switch (in.ConsumeIntegralInRange<int>(0, 3)) {
      case 0:  // too small, or the wrong way
        segs.push_back(Writable(in.ConsumeIntegralInRange<uint32_t>(0, 44)));
        if (in.ConsumeBool()) segs.insert(segs.begin(), Readable({0}));
        break;
      case 1:  // header and payload in separate buffers
        segs.push_back(Writable(sizeof(VsockHeader)));
        segs.push_back(Writable(in.ConsumeIntegralInRange<uint32_t>(0, 0x1000)));
        break;
      default:
        segs.push_back(Writable(static_cast<uint32_t>(sizeof(VsockHeader)) +
                                in.ConsumeIntegralInRange<uint32_t>(0, 0x1000)));
        break;
    }
    d.AddChain(VirtioVsock::kRxQueue, segs, in);
  }
}

// The host ends of this input's connections: clients of the device's socket and sockets
// accepted from the listeners.
class HostSide {
 public:
  explicit HostSide(const World& world) : world_(world) {}
  ~HostSide() {
    // Leave nothing in the listeners' backlogs for the next input.
    for (const UniqueFd& l : world_.listeners) {
      while (UniqueFd(::accept4(l.get(), nullptr, nullptr, SOCK_CLOEXEC)).valid()) {
      }
    }
  }

  void Connect(FuzzedDataProvider& in) {
    if (ends_.size() >= 16) return;
    UniqueFd fd = UnixSocket();
    sockaddr_un addr = Address(world_.path);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return;
    std::string line;
    switch (in.ConsumeIntegralInRange<int>(0, 3)) {
      case 0:
        line = in.ConsumeBytesAsString(in.ConsumeIntegralInRange<size_t>(0, 40));
        break;
      case 1:
        line = "CONNECT " + std::to_string(in.ConsumeIntegral<uint32_t>()) + "\n";
        break;
      default:
        line = "CONNECT " + std::to_string(1000 + in.ConsumeIntegralInRange<int>(0, 2)) + "\n";
        if (in.ConsumeBool()) line += "early bytes";
        break;
    }
    (void)::send(fd.get(), line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    ends_.push_back(std::move(fd));
  }

  // A host client asks for guest port `port` properly.
  void ConnectTo(uint32_t port) {
    if (ends_.size() >= 16) return;
    UniqueFd fd = UnixSocket();
    sockaddr_un addr = Address(world_.path);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return;
    const std::string line = "CONNECT " + std::to_string(port) + "\n";
    (void)::send(fd.get(), line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    ends_.push_back(std::move(fd));
  }

  void Accept() {
    for (const UniqueFd& l : world_.listeners) {
      while (ends_.size() < 16) {
        UniqueFd fd(::accept4(l.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!fd.valid()) break;
        ends_.push_back(std::move(fd));
      }
    }
  }

  void Act(FuzzedDataProvider& in) {
    if (ends_.empty()) return;
    const size_t i = in.ConsumeIntegralInRange<size_t>(0, ends_.size() - 1);
    const int fd = ends_[i].get();
    switch (in.ConsumeIntegralInRange<int>(0, 4)) {
      case 0:
      case 1: {
        std::string bytes(in.ConsumeIntegralInRange<size_t>(1, 0x3000), 'h');
        (void)::send(fd, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        break;
      }
      case 2: {
        char buf[0x4000];
        (void)::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        break;
      }
      case 3:
        ::shutdown(fd, in.ConsumeBool() ? SHUT_WR : SHUT_RDWR);
        break;
      default:
        ends_.erase(ends_.begin() + static_cast<ptrdiff_t>(i));  // closed
        break;
    }
  }

 private:
  const World& world_;
  std::vector<UniqueFd> ends_;
};

}  // namespace
}  // namespace vmm::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vmm;
  using namespace vmm::fuzz;
  const GuestMemory& mem = ZeroedSmallMemory();
  FuzzedDataProvider in(data, size);
  World& world = TheWorld();

  {
    VsockMuxerOptions options;
    options.guest_cid = kGuestCid;
    options.socket_path = world.path;
    options.buffer_size = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint32_t>(0, 0x2000)
                                           : 256 * 1024;
    options.max_connections = in.ConsumeIntegralInRange<size_t>(1, 8);
    options.shutdown_timeout_ms = in.ConsumeBool() ? 0 : 60'000;
    auto created = VirtioVsock::Create(std::move(options), /*loop=*/nullptr);
    FUZZ_CHECK(created.ok());
    std::shared_ptr<VirtioVsock> vsock = std::move(*created);
    HostSide host(world);
    DeviceDriver driver(mem, *vsock);
    std::vector<Script> known;  // port pairs of connections the scripted steps made
    if (in.ConsumeBool()) driver.Activate(in);  // else host clients may come first

    while (in.remaining_bytes() > 0) {
      switch (in.ConsumeIntegralInRange<int>(0, 16)) {
        case 0:
        case 1:
          AddGuestPacket(driver, in);
          break;
        case 2:
          AddRxBuffers(driver, in);
          break;
        case 3:
          driver.RawStep(in);
          break;
        case 4:
        case 5:
          vsock->ProcessQueue(driver.ConsumeQueue(in));
          host.Accept();
          break;
        case 6:
          host.Connect(in);
          vsock->HandleHostEvents();
          break;
        case 7:
          host.Act(in);
          vsock->HandleHostEvents();
          break;
        case 8:
          vsock->HandleHostEvents();
          break;
        case 11: {  // the guest connects to a host listener, which accepts
          const Script script{VIRTIO_VSOCK_OP_REQUEST, 1000u + in.ConsumeIntegralInRange<uint32_t>(0, 2),
                              kListenPorts[in.ConsumeIntegralInRange<int>(0, 1)]};
          AddGuestPacket(driver, in, &script);
          vsock->ProcessQueue(VirtioVsock::kTxQueue);
          known.push_back(script);
          host.Accept();
          AddRxBuffers(driver, in);
          vsock->ProcessQueue(VirtioVsock::kRxQueue);
          break;
        }
        case 12: {  // a host client connects and the guest accepts (n-th local port)
          const uint32_t guest_port = 1000u + in.ConsumeIntegralInRange<uint32_t>(0, 2);
          host.ConnectTo(guest_port);
          vsock->HandleHostEvents();
          AddRxBuffers(driver, in);
          vsock->ProcessQueue(VirtioVsock::kRxQueue);
          const Script script{VIRTIO_VSOCK_OP_RESPONSE, guest_port,
                              VsockMuxer::kFirstLocalPort + in.ConsumeIntegralInRange<uint32_t>(0, 3)};
          AddGuestPacket(driver, in, &script);
          vsock->ProcessQueue(VirtioVsock::kTxQueue);
          known.push_back(script);
          break;
        }
        case 14: {  // the guest sends anything on a connection made above
          if (known.empty()) break;
          Script script = known[in.ConsumeIntegralInRange<size_t>(0, known.size() - 1)];
          script.op = in.ConsumeIntegralInRange<uint16_t>(1, 7);
          AddGuestPacket(driver, in, &script);
          vsock->ProcessQueue(VirtioVsock::kTxQueue);
          if (in.ConsumeBool()) {
            AddRxBuffers(driver, in);
            vsock->ProcessQueue(VirtioVsock::kRxQueue);
          }
          break;
        }
        case 9: {
          const ConfigRead read = FuzzConfigRead(*vsock, in, 0x10);
          for (size_t i = 0; i < read.bytes.size(); ++i) {
            const uint64_t at = read.offset + i;
            FUZZ_CHECK(read.bytes[i] ==
                       (at < 8 ? static_cast<uint8_t>(kGuestCid >> (8 * at)) : 0));
          }
          break;
        }
        case 10:
          FuzzConfigWrite(*vsock, in, 0x10);
          break;
        case 13:  // the driver resets the device and starts it again
          vsock->Reset();
          driver.Activate(in);
          break;
        default:
          if (!driver.active()) driver.Activate(in);
          break;
      }
      FUZZ_CHECK(vsock->connection_count() <= 8);
    }
    vsock->Reset();
  }
  // Every socket of this input is closed: the lowest free descriptor stays low.
  const int probe = ::dup(0);
  FUZZ_CHECK(probe >= 0 && probe < 64);
  ::close(probe);
  return 0;
}
