// Shared fixture for the virtio-blk tests: a device over a fake or real
// backend, activated with a FakeVirtqueueDriver queue, and helpers that send
// one request the way Linux lays it out (header, data, status byte) and read
// back the reply.
#ifndef VMM_TESTS_UNIT_DEVICES_VIRTIO_BLOCK_VIRTIO_BLOCK_TEST_UTIL_H_
#define VMM_TESTS_UNIT_DEVICES_VIRTIO_BLOCK_VIRTIO_BLOCK_TEST_UTIL_H_

#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "devices/virtio/block/virtio_block.h"
#include "devices/virtio/virtqueue.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_block_backend.h"
#include "tests/fakes/fake_virtio_context.h"
#include "tests/fakes/fake_virtqueue_driver.h"
#include "tests/fakes/test_guest_memory.h"

namespace vmm::testing {

inline uint8_t Pattern(uint64_t i) { return static_cast<uint8_t>(i * 7 + 3); }

inline std::vector<uint8_t> Bytes(uint64_t len, uint8_t fill) {
  return std::vector<uint8_t>(len, fill);
}

template <typename T>
std::vector<uint8_t> AsBytes(const T& value) {
  std::vector<uint8_t> out(sizeof(T));
  std::memcpy(out.data(), &value, sizeof(T));
  return out;
}

inline std::vector<uint8_t> Header(uint32_t type, uint64_t sector) {
  virtio_blk_outhdr h{};
  h.type = type;
  h.sector = sector;
  return AsBytes(h);
}

inline std::vector<uint8_t> Segment(uint64_t sector, uint32_t num_sectors, uint32_t flags = 0) {
  virtio_blk_discard_write_zeroes s{};
  s.sector = sector;
  s.num_sectors = num_sectors;
  s.flags = flags;
  return AsBytes(s);
}

// A file in the test's temporary directory, removed at the end.
class TempImage {
 public:
  // In `dir`, else $TEST_TMPDIR, else /tmp.
  explicit TempImage(const std::vector<uint8_t>& contents, const char* dir = nullptr) {
    if (dir == nullptr) dir = getenv("TEST_TMPDIR");
    path_ = std::string(dir != nullptr ? dir : "/tmp") + "/vmm-blk-XXXXXX";
    int fd = mkstemp(path_.data());
    EXPECT_GE(fd, 0) << path_;
    if (fd < 0) return;
    EXPECT_EQ(write(fd, contents.data(), contents.size()),
              static_cast<ssize_t>(contents.size()));
    fsync(fd);  // allocate the blocks now, so allocation tests see them
    close(fd);
  }
  static TempImage WithPattern(uint64_t size, const char* dir = nullptr) {
    std::vector<uint8_t> c(size);
    for (uint64_t i = 0; i < size; ++i) c[i] = Pattern(i);
    return TempImage(c, dir);
  }
  ~TempImage() { unlink(path_.c_str()); }
  TempImage(const TempImage&) = delete;
  TempImage& operator=(const TempImage&) = delete;
  TempImage(TempImage&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }

  const std::string& path() const { return path_; }
  std::vector<uint8_t> Contents() const {
    std::vector<uint8_t> out;
    int fd = open(path_.c_str(), O_RDONLY);
    EXPECT_GE(fd, 0);
    uint8_t buf[4096];
    for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) out.insert(out.end(), buf, buf + n);
    close(fd);
    return out;
  }
  uint64_t allocated_bytes() const {
    struct stat st;
    EXPECT_EQ(stat(path_.c_str(), &st), 0);
    return uint64_t(st.st_blocks) * 512;
  }

 private:
  std::string path_;
};

class VirtioBlockTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kDiskSectors = 64;
  static constexpr uint64_t kDiskSize = kDiskSectors * 512;
  static constexpr uint8_t kUnwritten = 0xee;  // what a status byte holds before the device writes it

  // One request: header + `out` readable buffers, `in` writable data
  // buffers, then a one-byte status buffer (unless no_status).
  struct Request {
    uint32_t type = VIRTIO_BLK_T_IN;
    uint64_t sector = 0;
    std::vector<std::vector<uint8_t>> out;
    std::vector<uint32_t> in;
    bool indirect = false;
  };
  struct Reply {
    uint8_t status = kUnwritten;
    uint32_t used_len = 0;
    std::vector<uint8_t> data;  // the `in` buffers' contents, concatenated
  };
  struct Submitted {
    uint16_t head = 0;
    std::vector<VirtioBuffer> data;
    VirtioBuffer status;
  };

  // A device over a FakeBlockBackend of `size` bytes holding Pattern(i).
  void StartFake(uint64_t size = kDiskSize, bool read_only = false, std::string serial = "",
                 uint32_t block_size = 512) {
    auto backend = std::make_unique<FakeBlockBackend>(size, read_only, block_size);
    fake_ = backend.get();
    for (uint64_t i = 0; i < size; ++i) fake_->disk()[i] = Pattern(i);
    Start(std::make_unique<VirtioBlock>(std::move(backend), std::move(serial)));
  }

  // Activates `device` with `features` (default: everything it offers).
  void Start(std::unique_ptr<VirtioBlock> device, std::optional<uint64_t> features = {}) {
    dev_ = std::move(device);
    const uint64_t f = features.value_or(dev_->device_features());
    driver_ = std::make_unique<FakeVirtqueueDriver>(
        mem_, FakeVirtqueueDriverOptions{.size = 16,
                                         .event_idx = (f & kVirtioFEventIdx) != 0,
                                         .indirect = (f & kVirtioFIndirectDesc) != 0});
    auto queue = Virtqueue::Create(driver_->config(), mem_);
    ASSERT_TRUE(queue.ok()) << queue.status();
    VirtioActivation activation;
    activation.memory = &mem_;
    activation.features = f;
    activation.queues.push_back(std::move(*queue));
    activation.queue_enabled = {true};
    activation.context = &ctx_;
    ASSERT_TRUE(dev_->Activate(std::move(activation)).ok());
  }

  Submitted Submit(const Request& r) {
    Submitted s;
    std::vector<VirtioBuffer> readable{driver_->PlaceBytes(Header(r.type, r.sector))};
    for (const auto& bytes : r.out) readable.push_back(driver_->PlaceBytes(bytes));
    for (uint32_t len : r.in) s.data.push_back(driver_->PlaceFilled(len, 0xaa));
    s.status = driver_->PlaceFilled(1, kUnwritten);
    std::vector<VirtioBuffer> writable = s.data;
    writable.push_back(s.status);
    s.head = r.indirect ? driver_->AddIndirectChain(readable, writable)
                        : driver_->AddChain(readable, writable);
    return s;
  }

  // Reads back the reply to a submitted request (after ProcessQueue).
  Reply Collect(const Submitted& s, const FakeVirtqueueDriver::UsedEntry& used) {
    Reply reply;
    EXPECT_EQ(used.head, s.head);
    reply.used_len = used.len;
    reply.status = driver_->ReadGuest(s.status.addr, 1)[0];
    for (const VirtioBuffer& b : s.data) {
      std::vector<uint8_t> part = driver_->ReadGuest(b.addr, b.len);
      reply.data.insert(reply.data.end(), part.begin(), part.end());
    }
    return reply;
  }

  // Submits `r`, lets the device process the queue and returns its reply.
  Reply Run(const Request& r) {
    Submitted s = Submit(r);
    dev_->ProcessQueue(0);
    auto used = driver_->PopUsed();
    EXPECT_TRUE(used.has_value()) << "the request was not completed";
    if (!used) return {};
    return Collect(s, *used);
  }

  uint8_t Status(const Request& r) { return Run(r).status; }

  GuestMemory mem_ = TestGuestMemory(4 << 20);
  FakeVirtioContext ctx_;
  std::unique_ptr<FakeVirtqueueDriver> driver_;
  std::unique_ptr<VirtioBlock> dev_;
  FakeBlockBackend* fake_ = nullptr;  // owned by dev_, when StartFake was used
};

}  // namespace vmm::testing

#endif  // VMM_TESTS_UNIT_DEVICES_VIRTIO_BLOCK_VIRTIO_BLOCK_TEST_UTIL_H_
