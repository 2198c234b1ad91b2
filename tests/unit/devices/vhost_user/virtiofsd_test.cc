// virtio-fs against the real back-end: `--fs tag=,socket=` as the spec
// creates it, talking to virtiofsd sharing a directory this test wrote. The
// test plays the guest's FUSE client on memfd RAM (backend_rig.h): INIT,
// LOOKUP, OPEN and READ of the host's file on the request queue. No KVM
// involved; skips loudly without a virtiofsd (tools/setup provides one).
#include <fcntl.h>
#include <linux/fuse.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "devices/virtio/fs/fs_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/devices/vhost_user/backend_rig.h"

namespace vmm::testing {
namespace {

constexpr char kContent[] = "a file the host wrote for the guest";

template <typename T>
std::vector<uint8_t> Bytes(const T& value) {
  std::vector<uint8_t> out(sizeof(value));
  std::memcpy(out.data(), &value, sizeof(value));
  return out;
}

class VirtiofsdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string virtiofsd = VirtiofsdPath();
    if (virtiofsd.empty()) {
      std::fprintf(stderr, "\n*** SKIPPED virtio-fs test: no virtiofsd (tools/setup) ***\n\n");
      GTEST_SKIP() << "SKIPPED: no virtiofsd";
    }
    char dir_template[] = "/tmp/vmm-virtiofs-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
    shared_ = dir_ + "/shared";
    socket_ = dir_ + "/fs.sock";
    ASSERT_EQ(::mkdir(shared_.c_str(), 0755), 0);
    FILE* f = std::fopen((shared_ + "/hello.txt").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(kContent, f);
    std::fclose(f);
    daemon_.Start({virtiofsd, absl::StrCat("--socket-path=", socket_), "-o",
                   absl::StrCat("source=", shared_), "-o", "cache=none"},
                  socket_);
  }

  void TearDown() override {
    daemon_.Stop();
    if (!dir_.empty()) {
      ::unlink((shared_ + "/hello.txt").c_str());
      ::rmdir(shared_.c_str());
      ::unlink(socket_.c_str());
      ::rmdir(dir_.c_str());
    }
  }

  // One FUSE request on the request queue (1): its reply's header and body.
  struct Reply {
    fuse_out_header header{};
    std::vector<uint8_t> body;
  };
  std::optional<Reply> Fuse(uint32_t opcode, uint64_t nodeid, std::vector<uint8_t> arg,
                            uint32_t reply_body) {
    fuse_in_header in{};
    in.len = static_cast<uint32_t>(sizeof(in) + arg.size());
    in.opcode = opcode;
    in.unique = ++unique_;
    in.nodeid = nodeid;
    std::vector<std::vector<uint8_t>> readable = {Bytes(in)};
    if (!arg.empty()) readable.push_back(std::move(arg));
    rig_.driver(1).AddChainBytes(readable, {sizeof(fuse_out_header), reply_body});
    rig_.Kick(1);
    std::optional<FakeVirtqueueDriver::UsedEntry> used = rig_.WaitUsed(1);
    if (!used.has_value() || used->written.size() < sizeof(fuse_out_header)) return std::nullopt;
    Reply r;
    std::memcpy(&r.header, used->written.data(), sizeof(r.header));
    r.body.assign(used->written.begin() + sizeof(r.header), used->written.end());
    return r;
  }

  std::string dir_, shared_, socket_;
  BackendProcess daemon_;
  RigHost host_;
  RingRig rig_{2};  // hiprio, one request queue
  uint64_t unique_ = 0;
};

TEST_F(VirtiofsdTest, TheGuestReadsAFileTheHostWroteThroughVirtiofsd) {
  FsConfig fs;
  fs.tag = "hostshare";
  fs.socket_path = socket_;
  absl::StatusOr<std::shared_ptr<VirtioDevice>> device = fs.spec().Create(fs, host_);
  ASSERT_TRUE(device.ok()) << device.status();
  EXPECT_EQ((*device)->device_type(), 26u);
  EXPECT_EQ((*device)->queue_max_sizes().size(), 2u);
  char tag[37] = {};
  (*device)->ReadConfig(0, absl::MakeSpan(reinterpret_cast<uint8_t*>(tag), 36));
  EXPECT_STREQ(tag, "hostshare");
  uint32_t request_queues = 0;
  (*device)->ReadConfig(36, absl::MakeSpan(reinterpret_cast<uint8_t*>(&request_queues), 4));
  EXPECT_EQ(request_queues, 1u);

  ASSERT_TRUE((*device)->Activate(rig_.Activation()).ok());
  fuse_init_in init{};
  init.major = FUSE_KERNEL_VERSION;
  init.minor = 31;
  init.max_readahead = 0;
  std::optional<Reply> r = Fuse(FUSE_INIT, 0, Bytes(init), sizeof(fuse_init_out));
  ASSERT_TRUE(r.has_value()) << "no reply to FUSE_INIT";
  ASSERT_EQ(r->header.error, 0);
  fuse_init_out init_out{};
  std::memcpy(&init_out, r->body.data(), std::min(r->body.size(), sizeof(init_out)));
  EXPECT_EQ(init_out.major, uint32_t{FUSE_KERNEL_VERSION});

  const char name[] = "hello.txt";
  r = Fuse(FUSE_LOOKUP, FUSE_ROOT_ID, std::vector<uint8_t>(name, name + sizeof(name)),
           sizeof(fuse_entry_out));
  ASSERT_TRUE(r.has_value()) << "no reply to FUSE_LOOKUP";
  ASSERT_EQ(r->header.error, 0);
  fuse_entry_out entry{};
  ASSERT_GE(r->body.size(), sizeof(entry));
  std::memcpy(&entry, r->body.data(), sizeof(entry));
  EXPECT_EQ(entry.attr.size, std::strlen(kContent));

  fuse_open_in open_in{};
  open_in.flags = O_RDONLY;
  r = Fuse(FUSE_OPEN, entry.nodeid, Bytes(open_in), sizeof(fuse_open_out));
  ASSERT_TRUE(r.has_value()) << "no reply to FUSE_OPEN";
  ASSERT_EQ(r->header.error, 0);
  fuse_open_out open_out{};
  std::memcpy(&open_out, r->body.data(), sizeof(open_out));

  fuse_read_in read_in{};
  read_in.fh = open_out.fh;
  read_in.size = 4096;
  r = Fuse(FUSE_READ, entry.nodeid, Bytes(read_in), 4096);
  ASSERT_TRUE(r.has_value()) << "no reply to FUSE_READ";
  ASSERT_EQ(r->header.error, 0);
  EXPECT_EQ(r->header.len, sizeof(fuse_out_header) + std::strlen(kContent));
  EXPECT_EQ(std::string(r->body.begin(), r->body.begin() + std::strlen(kContent)), kContent);
}

}  // namespace
}  // namespace vmm::testing
