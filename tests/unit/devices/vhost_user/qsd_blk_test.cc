// vhost-user-blk against the real back-end: `--disk vhost_user=SOCKET` as the
// spec creates it, talking to Debian's qemu-storage-daemon exporting a raw
// image (backend_rig.h plays the guest's driver on memfd RAM). No KVM
// involved, so this runs on any host with qemu-storage-daemon (qemu-utils);
// it skips loudly without it.
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "devices/vhost_user/vhost_user_device.h"
#include "devices/virtio/block/block_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/devices/vhost_user/backend_rig.h"

namespace vmm::testing {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kImageBytes = 4 << 20;
constexpr char kQsd[] = "/usr/bin/qemu-storage-daemon";

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

  void StartQsd() {
    ::unlink(socket_.c_str());
    qsd_.Start({kQsd, "--blockdev", absl::StrCat("driver=file,node-name=disk0,filename=", image_),
                "--export",
                absl::StrCat("type=vhost-user-blk,id=exp0,node-name=disk0,writable=on,"
                             "addr.type=unix,addr.path=", socket_)},
               socket_);
  }

  void TearDown() override {
    qsd_.Stop();
    if (!dir_.empty()) {
      ::unlink(image_.c_str());
      ::unlink(socket_.c_str());
      ::rmdir(dir_.c_str());
    }
  }

  absl::StatusOr<std::shared_ptr<VirtioDevice>> CreateDisk(int reconnect_seconds = 0) {
    DiskConfig disk;
    disk.vhost_user = socket_;
    disk.reconnect_seconds = reconnect_seconds;
    return disk.spec().Create(disk, host_);
  }

  // A virtio-blk request on the ring: header, data, status.
  void Request(uint32_t type, uint64_t sector, std::vector<uint8_t> out, uint32_t in_len) {
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
    rig_.driver(0).AddChainBytes(readable, writable);
    rig_.Kick(0);
  }

  std::string dir_, image_, socket_;
  BackendProcess qsd_;
  RigHost host_;
  RingRig rig_{1};
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

  ASSERT_TRUE((*disk)->Activate(rig_.Activation()).ok());
  Request(VIRTIO_BLK_T_IN, 5, {}, 512);
  std::optional<FakeVirtqueueDriver::UsedEntry> used = rig_.WaitUsed(0);
  ASSERT_TRUE(used.has_value()) << "the back-end never completed the read";
  ASSERT_EQ(used->written.size(), 513u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(used->written.data())), "sector 5");
  EXPECT_EQ(used->written[512], VIRTIO_BLK_S_OK);

  std::vector<uint8_t> data(512, 0);
  std::memcpy(data.data(), "written by the guest", 20);
  Request(VIRTIO_BLK_T_OUT, 9, data, 0);
  used = rig_.WaitUsed(0);
  ASSERT_TRUE(used.has_value()) << "the back-end never completed the write";
  EXPECT_EQ(used->written.back(), VIRTIO_BLK_S_OK);
  char back[32] = {};
  const int fd = ::open(image_.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pread(fd, back, 20, 9 * 512), 20);
  ::close(fd);
  EXPECT_EQ(std::string(back), "written by the guest");

  // A reset stops the ring; the driver's next bring-up works again.
  (*disk)->Reset();
  ASSERT_TRUE((*disk)->Activate(rig_.Activation()).ok());
  Request(VIRTIO_BLK_T_IN, 9, {}, 512);
  used = rig_.WaitUsed(0);
  ASSERT_TRUE(used.has_value()) << "no completion after re-activation";
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(used->written.data())),
            "written by the guest");
}

TEST_F(QsdBlockTest, ABackEndThatDiesPutsTheDeviceInNeedsReset) {
  absl::StatusOr<std::shared_ptr<VirtioDevice>> disk = CreateDisk();
  ASSERT_TRUE(disk.ok()) << disk.status();
  ASSERT_TRUE((*disk)->Activate(rig_.Activation()).ok());
  qsd_.Stop();
  for (int i = 0; i < 200 && !rig_.context().needs_reset(); ++i) ::usleep(10000);
  ASSERT_TRUE(rig_.context().needs_reset()) << "the hang-up went unnoticed";
  EXPECT_THAT(rig_.context().reset_reasons()[0], HasSubstr("closed the connection"));
  // The driver's reset and its next bring-up fail fast, without a hang.
  (*disk)->Reset();
  absl::Status again = (*disk)->Activate(rig_.Activation());
  EXPECT_FALSE(again.ok());
  EXPECT_THAT(again.message(), HasSubstr("closed the connection"));
}

// reconnect=: the daemon dies with the guest's request outstanding and comes
// back; the device rebuilds the session, the ring resumes where the used
// ring stopped, and the request completes. The guest never sees an error.
TEST_F(QsdBlockTest, WithReconnectABackEndThatComesBackResumesTheRing) {
  absl::StatusOr<std::shared_ptr<VirtioDevice>> disk = CreateDisk(/*reconnect_seconds=*/1);
  ASSERT_TRUE(disk.ok()) << disk.status();
  auto device = std::dynamic_pointer_cast<VhostUserDevice>(*disk);
  ASSERT_NE(device, nullptr);
  ASSERT_TRUE(device->Activate(rig_.Activation()).ok());
  Request(VIRTIO_BLK_T_IN, 5, {}, 512);
  ASSERT_TRUE(rig_.WaitUsed(0).has_value());

  qsd_.Stop();
  for (int i = 0; i < 200 && !device->reconnecting(); ++i) ::usleep(10000);
  ASSERT_TRUE(device->reconnecting()) << "the hang-up went unnoticed";
  Request(VIRTIO_BLK_T_IN, 7, {}, 512);  // queued while nobody listens
  StartQsd();
  std::optional<FakeVirtqueueDriver::UsedEntry> used = rig_.WaitUsed(0);
  ASSERT_TRUE(used.has_value()) << "the request queued during the outage never completed";
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(used->written.data())), "sector 7");
  // A daemon still starting may drop the first session half-way (after it
  // served the ring, seen under ASan): the next tick builds another.
  for (int i = 0; i < 500 && device->reconnecting(); ++i) ::usleep(10000);
  EXPECT_FALSE(device->reconnecting());
  EXPECT_EQ(device->reconnects(), 1u);
  EXPECT_FALSE(rig_.context().needs_reset()) << rig_.context().reset_reasons()[0];
  EXPECT_EQ(device->failure(), "");
  // And the session goes on as before.
  Request(VIRTIO_BLK_T_IN, 8, {}, 512);
  used = rig_.WaitUsed(0);
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(used->written.data())), "sector 8");
}

TEST_F(QsdBlockTest, NoBackEndAtTheSocketIsAStartUpErrorNamingIt) {
  qsd_.Stop();
  ::unlink(socket_.c_str());
  absl::StatusOr<std::shared_ptr<VirtioDevice>> disk = CreateDisk();
  ASSERT_FALSE(disk.ok());
  EXPECT_THAT(disk.status().message(), HasSubstr(socket_));
  EXPECT_EQ(std::string(disk.status().message()).find('\n'), std::string::npos);
}

}  // namespace
}  // namespace vmm::testing
