// vhost-user-blk against the real back-end: `--disk vhost_user=SOCKET` as the
// spec creates it, talking to Debian's qemu-storage-daemon exporting a raw
// image. The test plays the guest's driver on memfd-backed RAM (what vmm
// gives a VM with a vhost-user device): the back-end maps that RAM, is
// kicked through an eventfd and calls through another. No KVM involved, so
// this runs on any host with qemu-storage-daemon (qemu-utils); it skips
// loudly without it.
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/event_loop.h"
#include "devices/vhost_user/vhost_user_device.h"
#include "devices/virtio/block/block_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_virtio_context.h"
#include "tests/fakes/fake_virtqueue_driver.h"
#include "tests/fakes/loop_thread.h"

extern char** environ;

namespace vmm {
namespace {

using ::testing::HasSubstr;
using testing::FakeVirtqueueDriver;

constexpr uint64_t kImageBytes = 4 << 20;
constexpr char kQsd[] = "/usr/bin/qemu-storage-daemon";

bool Readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

class Host : public VirtioDeviceHost {
 public:
  explicit Host(EventLoop* loop) : loop_(loop) {}
  EventLoop& loop() const override { return *loop_; }
  void Notice(absl::string_view) const override {}

 private:
  EventLoop* loop_;
};

class QsdBlockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kQsd, X_OK) != 0) {
      std::fprintf(stderr, "\n*** SKIPPED vhost-user-blk test: no %s (qemu-utils) ***\n\n", kQsd);
      GTEST_SKIP() << "SKIPPED: no qemu-storage-daemon (apt-get install qemu-utils)";
    }
    char dir_template[] = "/tmp/vmm-qsd-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
    image_ = dir_ + "/disk.img";
    socket_ = dir_ + "/blk.sock";
    // Sector s starts with "sector <s>".
    std::vector<char> bytes(kImageBytes, 0);
    for (uint64_t s = 0; s < kImageBytes / 512; ++s) {
      std::snprintf(&bytes[s * 512], 32, "sector %llu", static_cast<unsigned long long>(s));
    }
    FILE* f = std::fopen(image_.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
    std::fclose(f);
    StartQsd();
  }

  void TearDown() override {
    StopQsd();
    if (!dir_.empty()) {
      ::unlink(image_.c_str());
      ::unlink(socket_.c_str());
      ::rmdir(dir_.c_str());
    }
  }

  void StartQsd() {
    const std::string blockdev =
        absl::StrCat("driver=file,node-name=disk0,filename=", image_);
    const std::string exp = absl::StrCat(
        "type=vhost-user-blk,id=exp0,node-name=disk0,writable=on,addr.type=unix,addr.path=",
        socket_);
    std::vector<std::string> args = {kQsd, "--blockdev", blockdev, "--export", exp};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ASSERT_EQ(::posix_spawn(&qsd_, kQsd, nullptr, nullptr, argv.data(), environ), 0);
    for (int i = 0; i < 500 && ::access(socket_.c_str(), F_OK) != 0; ++i) ::usleep(10000);
    ASSERT_EQ(::access(socket_.c_str(), F_OK), 0) << "qemu-storage-daemon did not listen";
  }

  void StopQsd() {
    if (qsd_ <= 0) return;
    ::kill(qsd_, SIGKILL);
    ::waitpid(qsd_, nullptr, 0);
    qsd_ = -1;
  }

  absl::StatusOr<std::shared_ptr<VirtioDevice>> CreateDisk() {
    DiskConfig disk;
    disk.vhost_user = socket_;
    return disk.spec().Create(disk, host_);
  }

  // A virtio-blk request on the driver's ring: header, data, status.
  uint16_t Request(uint32_t type, uint64_t sector, std::vector<uint8_t> out, uint32_t in_len) {
    virtio_blk_outhdr h{};
    h.type = type;
    h.sector = sector;
    std::vector<uint8_t> header(sizeof(h));
    std::memcpy(header.data(), &h, sizeof(h));
    std::vector<std::vector<uint8_t>> readable = {header};
    if (!out.empty()) readable.push_back(std::move(out));
    std::vector<uint32_t> writable;
    if (in_len > 0) writable.push_back(in_len);
    writable.push_back(1);  // status
    return driver_->AddChainBytes(readable, writable);
  }

  VirtioActivation Activation() {
    VirtioActivation a;
    a.memory = &memory_;
    a.features = kVirtioFVersion1;
    a.context = &context_;
    a.queues.push_back(*Virtqueue::Create(driver_->config(), memory_));
    a.queue_enabled.push_back(true);
    a.kick_fds.push_back(kick_);
    a.call_fds.push_back(call_);
    return a;
  }

  void Kick() {
    const uint64_t one = 1;
    ASSERT_EQ(::write(kick_, &one, 8), 8);
  }

  // The back-end's completion, after its call (the guest's interrupt):
  // nullopt if none comes within 5 s. (A call may come without one:
  // libvhost-user signals once when given the call eventfd.)
  std::optional<FakeVirtqueueDriver::UsedEntry> WaitUsed() {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (absl::Now() < deadline) {
      if (!Readable(call_, 100)) continue;
      uint64_t n;
      (void)!::read(call_, &n, 8);
      if (auto used = driver_->PopUsed()) return used;
    }
    return std::nullopt;
  }

  std::string dir_, image_, socket_;
  pid_t qsd_ = -1;
  testing::LoopThread loop_thread_;
  Host host_{&loop_thread_.loop()};
  GuestMemory memory_ = *GuestMemory::Create(
      std::vector<RamRange>{RamRange{GuestAddress(0), 4 << 20}}, GuestMemoryOptions{.memfd = true});
  std::unique_ptr<FakeVirtqueueDriver> driver_ =
      std::make_unique<FakeVirtqueueDriver>(memory_, testing::FakeVirtqueueDriverOptions{.size = 16});
  testing::FakeVirtioContext context_;
  int kick_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  int call_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
};

TEST_F(QsdBlockTest, TheBackEndsDiskIsReadAndWrittenThroughSharedRam) {
  absl::StatusOr<std::shared_ptr<VirtioDevice>> disk = CreateDisk();
  ASSERT_TRUE(disk.ok()) << disk.status();
  EXPECT_EQ((*disk)->device_type(), 2u);
  EXPECT_NE((*disk)->device_features() & kVirtioFVersion1, 0u);
  EXPECT_TRUE((*disk)->QueueInBackend(0));
  uint64_t capacity = 0;
  (*disk)->ReadConfig(0, absl::MakeSpan(reinterpret_cast<uint8_t*>(&capacity), 8));
  EXPECT_EQ(capacity, kImageBytes / 512) << "GET_CONFIG's capacity, in sectors";

  ASSERT_TRUE((*disk)->Activate(Activation()).ok());
  // Read sector 5.
  Request(VIRTIO_BLK_T_IN, 5, {}, 512);
  Kick();
  std::optional<FakeVirtqueueDriver::UsedEntry> used = WaitUsed();
  ASSERT_TRUE(used.has_value()) << "the back-end never completed the read";
  ASSERT_EQ(used->written.size(), 513u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(used->written.data())), "sector 5");
  EXPECT_EQ(used->written[512], VIRTIO_BLK_S_OK);

  // Write sector 9; the image file has it.
  std::vector<uint8_t> data(512, 0);
  std::memcpy(data.data(), "written by the guest", 20);
  Request(VIRTIO_BLK_T_OUT, 9, data, 0);
  Kick();
  used = WaitUsed();
  ASSERT_TRUE(used.has_value()) << "the back-end never completed the write";
  EXPECT_EQ(used->written.back(), VIRTIO_BLK_S_OK);
  char back[32] = {};
  const int fd = ::open(image_.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pread(fd, back, 20, 9 * 512), 20);
  ::close(fd);
  EXPECT_EQ(std::string(back), "written by the guest");

  // A reset stops the ring; a second activation works on it again.
  (*disk)->Reset();
  driver_ = std::make_unique<FakeVirtqueueDriver>(memory_, testing::FakeVirtqueueDriverOptions{.size = 16});
  ASSERT_TRUE((*disk)->Activate(Activation()).ok());
  Request(VIRTIO_BLK_T_IN, 9, {}, 512);
  Kick();
  used = WaitUsed();
  ASSERT_TRUE(used.has_value()) << "no completion after re-activation";
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(used->written.data())),
            "written by the guest");
}

TEST_F(QsdBlockTest, ABackEndThatDiesPutsTheDeviceInNeedsReset) {
  absl::StatusOr<std::shared_ptr<VirtioDevice>> disk = CreateDisk();
  ASSERT_TRUE(disk.ok()) << disk.status();
  ASSERT_TRUE((*disk)->Activate(Activation()).ok());
  StopQsd();
  for (int i = 0; i < 200 && context_.reset_reasons().empty(); ++i) ::usleep(10000);
  ASSERT_FALSE(context_.reset_reasons().empty()) << "the hang-up went unnoticed";
  EXPECT_THAT(context_.reset_reasons()[0], HasSubstr("closed the connection"));
  // The driver's reset and its next bring-up fail fast, without a hang.
  (*disk)->Reset();
  absl::Status again = (*disk)->Activate(Activation());
  EXPECT_FALSE(again.ok());
  EXPECT_THAT(again.message(), HasSubstr("closed the connection"));
}

TEST_F(QsdBlockTest, NoBackEndAtTheSocketIsAStartUpErrorNamingIt) {
  StopQsd();
  ::unlink(socket_.c_str());
  absl::StatusOr<std::shared_ptr<VirtioDevice>> disk = CreateDisk();
  ASSERT_FALSE(disk.ok());
  EXPECT_THAT(disk.status().message(), HasSubstr(socket_));
  EXPECT_EQ(std::string(disk.status().message()).find('\n'), std::string::npos);
}

}  // namespace
}  // namespace vmm
