// Device path, host-driven (bench/README.md, "Device path"): the virtio-blk
// device model over memfd guest memory, driven by a driver thread that plays
// Linux's virtio_ring: it fills the avail ring, kicks through the
// "ioeventfd" (a real eventfd the device's event loop polls, as KVM's
// ioeventfd would be), and sleeps on the "irqfd" (a real eventfd the
// device's NotifyUsed writes, as the transport does into KVM's irqfd).
// Baseline: the same offsets issued as plain pread/pwrite on the same file.
//
//   blk_harness --dir /dev/shm [--direct] [--size-mib 256] [--seconds 2]
//               [--patterns randread:1,randwrite:1,randread:32,randwrite:32]
//               [--label NAME] [--no-baseline] [--round-trip]
//               [--io-uring off|direct|always] [--vhost-user-blk QSD] [--poll-us N]
//               [--driver-poll-us N]
//
// Creates a file of --size-mib in --dir (filled, so no read hits a hole and
// no write allocates), runs each pattern on the device and on the baseline
// (in that order), prints one JSON object per pattern on stdout, and
// removes the file. --round-trip adds one line: the kick -> irq round trip
// with no device behind it. --vhost-user-blk QSD adds, per pattern, the same
// driver against qemu-storage-daemon (path QSD) exporting the same file over
// vhost-user, as a ratio to vmm's own device path measured just before.
// --poll-us N sets the device's polling maximum (0: off; default: the
// device's own, QueuePoller::DefaultMax); --driver-poll-us N makes the
// driver watch the used ring N µs before sleeping, as a vCPU halt-polls on
// KVM (RingDriver::HaltPoll).
// Errors go to stderr with exit status 1.
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/event_loop.h"
#include "base/lock_checks.h"
#include "base/eventfd.h"
#include "base/guest_memory.h"
#include "base/unique_fd.h"
#include "devices/vhost_user/vhost_user_device.h"
#include "devices/virtio/block/raw_file_backend.h"
#include "devices/virtio/block/virtio_block.h"
#include "devices/virtio/virtio_device.h"
#include "devices/virtio/virtqueue.h"

extern char** environ;

namespace vmm {
namespace {

constexpr uint32_t kBlock = 4096;

std::string g_file;  // the benchmark file, removed on every exit
pid_t g_qsd = -1;    // a running qemu-storage-daemon, stopped on every exit

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "blk_harness: %s\n", what.c_str());
  if (!g_file.empty()) ::unlink(g_file.c_str());
  if (g_qsd > 0) ::kill(g_qsd, SIGKILL);
  std::exit(1);
}

template <typename T>
T Check(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) Die(std::string(what) + ": " + std::string(v.status().message()));
  return std::move(v).value();
}
void Check(const absl::Status& s, const char* what) {
  if (!s.ok()) Die(std::string(what) + ": " + std::string(s.message()));
}

double Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Process CPU time (all threads), seconds.
double CpuTime() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) * 1e-6;
  };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

// The same offset sequence for the device and the baseline (per stream).
class Offsets {
 public:
  Offsets(uint64_t seed, uint64_t blocks) : state_(seed * 0x9e3779b97f4a7c15ull + 1), blocks_(blocks) {}
  uint64_t Next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return (state_ % blocks_) * kBlock;
  }

 private:
  uint64_t state_;
  uint64_t blocks_;
};

struct Pattern {
  bool write = false;
  int qd = 1;
  std::string name() const { return std::string(write ? "randwrite" : "randread"); }
};

struct Measure {
  uint64_t requests = 0;
  double seconds = 0;
  double cpu_seconds = 0;
  uint64_t kicks = 0;       // ioeventfd writes (driver side)
  uint64_t interrupts = 0;  // irqfd wake-ups (driver side)
  double iops() const { return seconds > 0 ? static_cast<double>(requests) / seconds : 0; }
  double cpu_us_per_req() const {
    return requests > 0 ? 1e6 * cpu_seconds / static_cast<double>(requests) : 0;
  }
  double per_req(uint64_t n) const {
    return requests > 0 ? static_cast<double>(n) / static_cast<double>(requests) : 0;
  }
};

// --- The device side --------------------------------------------------------

// What the transport gives the device: NotifyUsed writes the irqfd.
class IrqfdContext : public VirtioDeviceContext {
 public:
  IrqfdContext(int irqfd, int kickfd) : irqfd_(irqfd), kickfd_(kickfd) {}
  void NotifyUsed(uint16_t) override {
    uint64_t one = 1;
    if (::write(irqfd_, &one, sizeof(one)) != sizeof(one)) Die("irqfd write");
  }
  void NotifyConfigChanged() override {}
  void DeviceNeedsReset(absl::string_view why) override {
    Die("device needs reset: " + std::string(why));
  }
  // As the transport does: the kick eventfd brings the loop back.
  void ProcessAgain(uint16_t) override {
    uint64_t one = 1;
    if (::write(kickfd_, &one, sizeof(one)) != sizeof(one)) Die("kick write");
  }

 private:
  int irqfd_;
  int kickfd_;
};

// Guest-physical layout of the harness's one queue and its buffers.
constexpr uint16_t kQueueSize = VirtioBlock::kQueueSize;
constexpr uint64_t kDesc = 0x10000;
constexpr uint64_t kAvail = kDesc + VirtqDescTableBytes(kQueueSize);
constexpr uint64_t kUsed = 0x20000;
constexpr uint64_t kHeaders = 0x30000;   // 16 bytes per slot
constexpr uint64_t kStatuses = 0x38000;  // 1 byte per slot
constexpr uint64_t kData = 0x100000;     // 4 KiB per slot, page-aligned
constexpr uint64_t kMemSize = 16 << 20;
constexpr int kMaxQd = 64;  // 3 descriptors each: fits the 256-entry queue

// A driver with Linux's split-ring behaviour (EVENT_IDX negotiated): slot i
// owns descriptors 3i (header), 3i+1 (data), 3i+2 (status).
// --poll-us: the device's polling maximum in µs; -1: its default.
int g_poll_us = -1;
// --driver-poll-us: how long the driver watches the used ring before it
// sleeps on the irqfd (RingDriver::HaltPoll); 0: it sleeps at once.
int g_driver_poll_us = 0;

class RingDriver {
 public:
  RingDriver(const GuestMemory& mem, int ioeventfd, int irqfd)
      : ioeventfd_(ioeventfd), irqfd_(irqfd) {
    host_ = mem.regions()[0].host;
    for (int i = 0; i < kMaxQd; ++i) {
      WriteDesc(3 * i, kHeaders + 16ull * i, sizeof(virtio_blk_outhdr), kVirtqDescFNext, 3 * i + 1);
      WriteDesc(3 * i + 2, kStatuses + i, 1, kVirtqDescFWrite, 0);
    }
  }

  // Puts slot `slot`'s request in the avail ring (not yet published).
  void Queue(int slot, bool write, uint64_t offset) {
    virtio_blk_outhdr h{};
    h.type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
    h.sector = offset / 512;
    std::memcpy(host_ + kHeaders + 16ull * slot, &h, sizeof(h));
    host_[kStatuses + slot] = 0xff;
    WriteDesc(3 * slot + 1, kData + uint64_t{kBlock} * slot, kBlock,
              static_cast<uint16_t>(kVirtqDescFNext | (write ? 0 : kVirtqDescFWrite)), 3 * slot + 2);
    Store16(kAvail + 4 + 2ull * (shadow_avail_ % kQueueSize), static_cast<uint16_t>(3 * slot));
    ++shadow_avail_;
  }

  // virtqueue_kick_prepare + notify: publish, kick if avail_event asks.
  void PublishAndKick() {
    const uint16_t old = published_;
    published_ = shadow_avail_;
    Store16(kAvail + 2, published_);  // seq_cst: the virtio_mb before the check
    const uint16_t event = Load16(kUsed + 4 + 8ull * kQueueSize);
    if (static_cast<uint16_t>(published_ - event - 1) < static_cast<uint16_t>(published_ - old)) {
      uint64_t one = 1;
      if (::write(ioeventfd_, &one, sizeof(one)) != sizeof(one)) Die("ioeventfd write");
      ++kicks;
    }
  }

  // Waits until at least one request completed; appends the completed slots.
  // Like Linux: drain the used ring, re-arm used_event, re-check, sleep.
  void WaitCompletions(std::vector<int>& done) {
    for (;;) {
      Drain(done);
      if (!done.empty()) return;
      Store16(kAvail + 4 + 2ull * kQueueSize, last_used_);  // used_event
      if (Load16(kUsed + 2) != last_used_) continue;
      if (HaltPoll()) continue;
      uint64_t v;
      // A vhost-user back-end may have made the eventfd non-blocking (file
      // flags are shared with the process it was passed to): wait in poll.
      pollfd pfd{irqfd_, POLLIN, 0};
      if (::poll(&pfd, 1, -1) != 1 || ::read(irqfd_, &v, sizeof(v)) != sizeof(v)) {
        Die(std::string("irqfd read: ") + std::strerror(errno));
      }
      ++interrupts;
    }
  }

  uint64_t kicks = 0;
  uint64_t interrupts = 0;

 private:
  // --driver-poll-us: a vCPU waiting for its interrupt on KVM halt-polls
  // (halt_poll_ns, 200 µs by default) before it is scheduled out. The
  // driver does the same: it watches the used ring that long before it
  // sleeps; an interrupt that came meanwhile is taken without sleeping.
  bool HaltPoll() {
    if (g_driver_poll_us <= 0) return false;
    const absl::Time deadline = absl::Now() + absl::Microseconds(g_driver_poll_us);
    while (Load16(kUsed + 2) == last_used_) {
      if (absl::Now() >= deadline) return false;
    }
    pollfd pfd{irqfd_, POLLIN, 0};
    uint64_t v;
    if (::poll(&pfd, 1, 0) == 1 && ::read(irqfd_, &v, sizeof(v)) == sizeof(v)) ++interrupts;
    return true;
  }

  void Drain(std::vector<int>& done) {
    const uint16_t used = Load16(kUsed + 2);
    while (last_used_ != used) {
      VirtqUsedElem e;
      std::memcpy(&e, host_ + kUsed + 4 + 8ull * (last_used_ % kQueueSize), sizeof(e));
      ++last_used_;
      const int slot = static_cast<int>(e.id / 3);
      if (e.id % 3 != 0 || slot >= kMaxQd) Die("used ring names an unknown head");
      if (host_[kStatuses + slot] != VIRTIO_BLK_S_OK) {
        Die("request failed with status " + std::to_string(host_[kStatuses + slot]));
      }
      done.push_back(slot);
    }
  }
  void WriteDesc(int index, uint64_t addr, uint32_t len, uint16_t flags, int next) {
    VirtqDesc d{addr, len, flags, static_cast<uint16_t>(next)};
    std::memcpy(host_ + kDesc + 16ull * index, &d, sizeof(d));
  }
  uint16_t Load16(uint64_t gpa) const {
    return __atomic_load_n(reinterpret_cast<uint16_t*>(host_ + gpa), __ATOMIC_SEQ_CST);
  }
  void Store16(uint64_t gpa, uint16_t v) {
    __atomic_store_n(reinterpret_cast<uint16_t*>(host_ + gpa), v, __ATOMIC_SEQ_CST);
  }

  uint8_t* host_;
  int ioeventfd_;
  int irqfd_;
  uint16_t shadow_avail_ = 0;
  uint16_t published_ = 0;
  uint16_t last_used_ = 0;
};

// Keeps `p.qd` requests in flight for `seconds` (then drains them), as the
// guest's driver would: what every device-side run measures.
Measure Drive(RingDriver& driver, const Pattern& p, double seconds, uint64_t blocks) {
  Offsets offsets(1, blocks);
  Measure m;
  std::vector<int> done;
  done.reserve(kMaxQd);
  const double cpu0 = CpuTime();
  const double t0 = Now();
  for (int slot = 0; slot < p.qd; ++slot) driver.Queue(slot, p.write, offsets.Next());
  driver.PublishAndKick();
  uint64_t inflight = static_cast<uint64_t>(p.qd);
  bool stopping = false;
  double t = t0;
  while (inflight > 0) {
    done.clear();
    driver.WaitCompletions(done);
    inflight -= done.size();
    m.requests += done.size();
    if (!stopping) {
      t = Now();
      stopping = t - t0 >= seconds;
    }
    if (stopping) continue;
    for (int slot : done) driver.Queue(slot, p.write, offsets.Next());
    inflight += done.size();
    driver.PublishAndKick();
  }
  m.seconds = Now() - t0;
  m.cpu_seconds = CpuTime() - cpu0;
  m.kicks = driver.kicks;
  m.interrupts = driver.interrupts;
  return m;
}

RawFileOptions::IoUring g_io_uring = RawFileOptions::IoUring::kDirectOnly;

// What every device-side run sets up: memfd guest RAM (shareable with a
// vhost-user back-end), the "ioeventfd" and "irqfd", and the activation of
// the one queue with them as its kick and call.
struct HarnessRig {
  GuestMemory mem = Check(GuestMemory::Create(std::vector<RamRange>{{GuestAddress(0), kMemSize}},
                                              GuestMemory::Options{.memfd = true}),
                          "guest memory");
  EventFd ioeventfd = Check(EventFd::Create(), "ioeventfd");
  UniqueFd irqfd{::eventfd(0, EFD_CLOEXEC)};  // blocking: the driver sleeps on it
  IrqfdContext context{irqfd.get(), ioeventfd.fd()};

  HarnessRig() {
    if (!irqfd.valid()) Die("eventfd");
  }
  VirtioActivation Activation(uint64_t features) {
    VirtqueueConfig qc{.size = kQueueSize, .desc = GuestAddress(kDesc),
                       .avail = GuestAddress(kAvail), .used = GuestAddress(kUsed),
                       .event_idx = true, .indirect = true};
    VirtioActivation a;
    a.memory = &mem;
    a.features = features;
    a.queues.push_back(Check(Virtqueue::Create(qc, mem), "virtqueue"));
    a.queue_enabled = {true};
    a.context = &context;
    a.kick_fds = {ioeventfd.fd()};
    a.call_fds = {irqfd.get()};
    return a;
  }
};

Measure RunDevice(const std::string& path, bool direct, const Pattern& p, double seconds,
                  uint64_t blocks) {
  HarnessRig rig;
  std::unique_ptr<RawFileBackend> backend =
      Check(RawFileBackend::Open(
                RawFileOptions{.path = path, .direct = direct, .io_uring = g_io_uring}), "open");
  VirtioBlock device(std::move(backend), "bench",
                     g_poll_us >= 0 ? absl::Microseconds(g_poll_us) : QueuePoller::DefaultMax());
  // What Linux negotiates: everything offered here.
  VirtioActivation activation = rig.Activation(device.device_features());
  Check(device.Activate(std::move(activation)), "activate");

  std::unique_ptr<EventLoop> loop = Check(EventLoop::Create(), "event loop");
  // What VirtioTransportState::HandleQueueNotifyEvent does on a kick.
  Check(loop->Add(rig.ioeventfd.fd(), EPOLLIN,
                  [&](uint32_t) {
                    (void)rig.ioeventfd.Read();
                    device.ProcessQueue(0);
                  }),
        "event loop add");
  std::thread loop_thread([&] { Check(loop->Run(), "event loop"); });

  RingDriver driver(rig.mem, rig.ioeventfd.fd(), rig.irqfd.get());
  Measure m = Drive(driver, p, seconds, blocks);
  loop->Stop();
  loop_thread.join();
  device.Reset();
  return m;
}

// The same driver against qemu-storage-daemon's vhost-user-blk export of
// the same file (the data path in another process): vmm's VhostUserDevice
// hands it the rings, the "ioeventfd" as kick and the "irqfd" as call.
// CPU time is the harness's only: the daemon's is not counted.
Measure RunVhostUser(const std::string& qsd, const std::string& path, bool direct,
                     const Pattern& p, double seconds, uint64_t blocks) {
  const std::string socket = path + ".sock";
  const std::string blockdev =
      absl::StrCat("driver=file,node-name=d0,filename=", path, ",cache.direct=",
                   direct ? "on,aio=io_uring" : "off,aio=threads");
  const std::string exp = absl::StrCat(
      "type=vhost-user-blk,id=e0,node-name=d0,writable=on,addr.type=unix,addr.path=", socket);
  std::vector<std::string> args = {qsd, "--blockdev", blockdev, "--export", exp};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  // Its output goes nowhere: our stdout is the figures' pipe.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  const int spawned = ::posix_spawn(&pid, qsd.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) Die("cannot start " + qsd);
  g_qsd = pid;
  for (int i = 0; i < 500 && ::access(socket.c_str(), F_OK) != 0; ++i) ::usleep(10000);
  std::shared_ptr<VhostUserDevice> device = Check(
      VhostUserDevice::Create(VhostUserDeviceOptions{.name = "vhost-user-blk",
                                                     .device_type = VirtioBlock::kDeviceType,
                                                     .socket_path = socket,
                                                     .max_queues = 1,
                                                     .queue_size = kQueueSize,
                                                     .config_size = 8},
                              nullptr),
      "vhost-user-blk on qemu-storage-daemon");
  HarnessRig rig;
  const uint64_t features = device->device_features();
  if ((features & kVirtioFEventIdx) == 0) Die("qemu-storage-daemon does not offer EVENT_IDX");
  VirtioActivation activation = rig.Activation(features);
  Check(device->Activate(std::move(activation)), "activate vhost-user-blk");
  RingDriver driver(rig.mem, rig.ioeventfd.fd(), rig.irqfd.get());
  Measure m = Drive(driver, p, seconds, blocks);
  device->Reset();
  device.reset();
  ::kill(pid, SIGTERM);
  ::waitpid(pid, nullptr, 0);
  g_qsd = -1;
  ::unlink(socket.c_str());
  return m;
}

// The notification round trip alone, no device and no I/O: the driver
// kicks the ioeventfd, the event loop's callback reads it and writes the
// irqfd, the driver wakes. The floor under any QD1 figure of this design.
Measure RunNotifyRoundTrip(double seconds) {
  EventFd ioeventfd = Check(EventFd::Create(), "ioeventfd");
  UniqueFd irqfd(::eventfd(0, EFD_CLOEXEC));
  if (!irqfd.valid()) Die("eventfd");
  std::unique_ptr<EventLoop> loop = Check(EventLoop::Create(), "event loop");
  Check(loop->Add(ioeventfd.fd(), EPOLLIN,
                  [&](uint32_t) {
                    (void)ioeventfd.Read();
                    uint64_t one = 1;
                    if (::write(irqfd.get(), &one, sizeof(one)) != sizeof(one)) Die("irqfd write");
                  }),
        "event loop add");
  std::thread loop_thread([&] { Check(loop->Run(), "event loop"); });
  Measure m;
  const double cpu0 = CpuTime();
  const double t0 = Now();
  while (Now() - t0 < seconds) {
    Check(ioeventfd.Write(1), "ioeventfd write");
    uint64_t v;
    if (::read(irqfd.get(), &v, sizeof(v)) != sizeof(v)) Die("irqfd read");
    ++m.requests;
  }
  m.seconds = Now() - t0;
  m.cpu_seconds = CpuTime() - cpu0;
  loop->Stop();
  loop_thread.join();
  return m;
}

// --- The baseline ------------------------------------------------------------

// qd threads, each issuing pread/pwrite synchronously: qd requests in flight,
// the plain-syscall way (see README.md for why this baseline).
Measure RunBaseline(const std::string& path, bool direct, const Pattern& p, double seconds,
                    uint64_t blocks) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | (direct ? O_DIRECT : 0)));
  if (!fd.valid()) Die("open " + path + ": " + std::strerror(errno));
  std::atomic<bool> stop{false};
  std::vector<uint64_t> counts(static_cast<size_t>(p.qd), 0);
  auto worker = [&](int index) {
    void* buf = nullptr;
    if (posix_memalign(&buf, kBlock, kBlock) != 0) Die("posix_memalign");
    std::memset(buf, 0x5a, kBlock);
    // Stream 1 is the device's QD1 sequence; threads take distinct streams.
    Offsets offsets(static_cast<uint64_t>(index) + 1, blocks);
    uint64_t n = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      const off_t off = static_cast<off_t>(offsets.Next());
      const ssize_t r = p.write ? ::pwrite(fd.get(), buf, kBlock, off) : ::pread(fd.get(), buf, kBlock, off);
      if (r != kBlock) Die("baseline pread/pwrite failed");
      ++n;
    }
    counts[static_cast<size_t>(index)] = n;
    std::free(buf);
  };
  Measure m;
  const double cpu0 = CpuTime();
  const double t0 = Now();
  std::vector<std::thread> threads;
  for (int i = 0; i < p.qd; ++i) threads.emplace_back(worker, i);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (std::thread& t : threads) t.join();
  m.seconds = Now() - t0;
  m.cpu_seconds = CpuTime() - cpu0;
  for (uint64_t c : counts) m.requests += c;
  return m;
}

// --- main ----------------------------------------------------------------------

std::string CreateFile(const std::string& dir, uint64_t size) {
  std::string path = dir + "/vmm-blk-bench-XXXXXX";
  int raw = mkstemp(path.data());
  if (raw < 0) Die("mkstemp in " + dir + ": " + std::strerror(errno));
  UniqueFd fd(raw);
  std::vector<uint8_t> chunk(1 << 20);
  for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<uint8_t>(i * 7 + 3);
  for (uint64_t off = 0; off < size; off += chunk.size()) {
    if (::pwrite(fd.get(), chunk.data(), chunk.size(), static_cast<off_t>(off)) !=
        static_cast<ssize_t>(chunk.size())) {
      ::unlink(path.c_str());
      Die("filling " + path + ": " + std::strerror(errno));
    }
  }
  ::fsync(fd.get());
  return path;
}

int Main(int argc, char** argv) {
  std::string dir = "/dev/shm";
  bool direct = false;
  uint64_t size_mib = 256;
  double seconds = 2;
  std::string patterns = "randread:1,randwrite:1,randread:32,randwrite:32";
  std::string label;
  bool baseline = true;
  bool round_trip = false;
  std::string qsd;  // --vhost-user-blk QSD: also run the device path in qemu-storage-daemon
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--dir") {
      dir = value();
    } else if (a == "--direct") {
      direct = true;
    } else if (a == "--size-mib") {
      if (!absl::SimpleAtoi(value(), &size_mib) || size_mib == 0) Die("bad --size-mib");
    } else if (a == "--seconds") {
      if (!absl::SimpleAtod(value(), &seconds) || seconds <= 0) Die("bad --seconds");
    } else if (a == "--patterns") {
      patterns = value();
    } else if (a == "--no-baseline") {  // for profiling the device alone
      baseline = false;
    } else if (a == "--io-uring") {  // off | direct (the default) | always
      const std::string v = value();
      if (v == "off") {
        g_io_uring = RawFileOptions::IoUring::kOff;
      } else if (v == "direct") {
        g_io_uring = RawFileOptions::IoUring::kDirectOnly;
      } else if (v == "always") {
        g_io_uring = RawFileOptions::IoUring::kAlways;
      } else {
        Die("--io-uring takes off, direct or always");
      }
    } else if (a == "--vhost-user-blk") {
      qsd = value();
    } else if (a == "--poll-us") {  // the device's polling maximum (0: off)
      if (!absl::SimpleAtoi(value(), &g_poll_us) || g_poll_us < 0) Die("bad --poll-us");
    } else if (a == "--driver-poll-us") {  // KVM's halt polling, modelled (0: off)
      if (!absl::SimpleAtoi(value(), &g_driver_poll_us) || g_driver_poll_us < 0) {
        Die("bad --driver-poll-us");
      }
    } else if (a == "--round-trip") {
      round_trip = true;
    } else if (a == "--label") {
      label = value();
    } else {
      Die("unknown argument " + a + " (see the comment at the top of bench/blk_harness.cc)");
    }
  }
  std::vector<Pattern> list;
  for (absl::string_view item : absl::StrSplit(patterns, ',')) {
    std::vector<std::string> parts = absl::StrSplit(item, ':');
    Pattern p;
    if (parts.size() != 2 || (parts[0] != "randread" && parts[0] != "randwrite") ||
        !absl::SimpleAtoi(parts[1], &p.qd) || p.qd < 1 || p.qd > kMaxQd) {
      Die("bad pattern \"" + std::string(item) + "\" (randread|randwrite:QD, QD 1.." +
          std::to_string(kMaxQd) + ")");
    }
    p.write = parts[0] == "randwrite";
    list.push_back(p);
  }
  if (label.empty()) label = dir;

  const uint64_t size = size_mib << 20;
  const std::string path = CreateFile(dir, size);
  g_file = path;
  const uint64_t blocks = size / kBlock;
  for (const Pattern& p : list) {
    Measure ours = RunDevice(path, direct, p, seconds, blocks);
    Measure base = baseline ? RunBaseline(path, direct, p, seconds, blocks) : Measure{};
    std::printf(
        "{\"figure\": \"blk %s 4KiB QD%d, %s%s\", \"op\": \"%s\", \"qd\": %d, \"dir\": \"%s\", "
        "\"direct\": %s, \"ours_iops\": %.0f, \"baseline_iops\": %.0f, \"ratio\": %.3f, "
        "\"ours_requests\": %" PRIu64 ", \"baseline_requests\": %" PRIu64
        ", \"ours_seconds\": %.3f, \"baseline_seconds\": %.3f, "
        "\"ours_cpu_us_per_req\": %.2f, \"baseline_cpu_us_per_req\": %.2f, "
        "\"kicks_per_req\": %.3f, \"interrupts_per_req\": %.3f}\n",
        p.name().c_str(), p.qd, label.c_str(), direct ? " O_DIRECT" : "", p.name().c_str(), p.qd,
        dir.c_str(), direct ? "true" : "false", ours.iops(), base.iops(),
        base.iops() > 0 ? ours.iops() / base.iops() : 0.0, ours.requests, base.requests,
        ours.seconds, base.seconds, 1e6 * ours.cpu_seconds / static_cast<double>(ours.requests),
        1e6 * base.cpu_seconds / static_cast<double>(base.requests),
        static_cast<double>(ours.kicks) / static_cast<double>(ours.requests),
        static_cast<double>(ours.interrupts) / static_cast<double>(ours.requests));
    std::fflush(stdout);
    if (!qsd.empty()) {
      // The data path in another process vs in vmm, same driver, same file.
      Measure vu = RunVhostUser(qsd, path, direct, p, seconds, blocks);
      std::printf(
          "{\"figure\": \"vhost-user-blk (qemu-storage-daemon) vs in-vmm blk %s 4KiB QD%d, %s%s\", "
          "\"op\": \"%s\", \"qd\": %d, \"ours_iops\": %.0f, \"baseline_iops\": %.0f, "
          "\"ratio\": %.3f, \"ours_requests\": %" PRIu64 ", \"kicks_per_req\": %.3f, "
          "\"interrupts_per_req\": %.3f}\n",
          p.name().c_str(), p.qd, label.c_str(), direct ? " O_DIRECT" : "", p.name().c_str(), p.qd,
          vu.iops(), ours.iops(), ours.iops() > 0 ? vu.iops() / ours.iops() : 0.0, vu.requests,
          static_cast<double>(vu.kicks) / static_cast<double>(vu.requests),
          static_cast<double>(vu.interrupts) / static_cast<double>(vu.requests));
      std::fflush(stdout);
    }
  }
  if (round_trip) {
    Measure rt = RunNotifyRoundTrip(seconds);
    std::printf("{\"figure\": \"notify round trip alone (kick -> event loop -> irqfd), no I/O\", "
                "\"ours_iops\": %.0f, \"ours_us_per_req\": %.2f, \"ours_cpu_us_per_req\": %.2f}\n",
                rt.iops(), rt.requests > 0 ? 1e6 * rt.seconds / static_cast<double>(rt.requests) : 0,
                rt.cpu_us_per_req());
  }
  ::unlink(path.c_str());
  return 0;
}

}  // namespace
}  // namespace vmm

int main(int argc, char** argv) {
  vmm::SetLockChecksFromEnvironment();  // as vmm's main() runs the device
  return vmm::Main(argc, argv);
}
