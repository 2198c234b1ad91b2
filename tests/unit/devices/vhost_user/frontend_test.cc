// The vhost-user front-end against a scripted back-end on a socketpair: the
// test queues the back-end's replies before the call (the socket holds
// them), then reads what the front-end sent. Covers the handshake, REPLY_ACK,
// fds going out with SET_MEM_TABLE and the vring fds, and a hostile back-end:
// malformed replies, wrong sizes, fds in a reply, closing mid-reply, silence.
#include "devices/vhost_user/frontend.h"

#include <dirent.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vmm::vhost_user {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Sent {
  Header header;
  std::vector<uint8_t> payload;
  std::vector<UniqueFd> fds;
  template <typename T>
  T As() const {
    T value{};
    EXPECT_EQ(payload.size(), sizeof(T));
    std::memcpy(&value, payload.data(), std::min(payload.size(), sizeof(T)));
    return value;
  }
};

int OpenFds() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (::readdir(d) != nullptr) ++n;
  ::closedir(d);
  return n;
}

class FrontendTest : public ::testing::Test {
 protected:
  FrontendTest() {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    backend_.Reset(sv[1]);
    frontend_.emplace(Channel(UniqueFd(sv[0]), absl::Milliseconds(200)));
  }

  // The back-end's side: raw bytes (and fds) out, messages in.
  void Raw(const std::vector<uint8_t>& bytes, int fd = -1) {
    iovec iov{const_cast<uint8_t*>(bytes.data()), bytes.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (fd >= 0) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    ASSERT_EQ(::sendmsg(backend_.get(), &msg, 0), static_cast<ssize_t>(bytes.size()));
  }
  void ReplyU64(Request request, uint64_t value) {
    Raw(EncodeValue(request, kFlagReply, value));
  }
  std::vector<Sent> Received() {
    std::vector<Sent> out;
    for (;;) {
      Sent s;
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
      iovec iov{&s.header, sizeof(s.header)};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      if (::recvmsg(backend_.get(), &msg, MSG_DONTWAIT) != sizeof(s.header)) return out;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); ++i) {
          int fd;
          std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
          s.fds.emplace_back(fd);
        }
      }
      s.payload.resize(s.header.size);
      if (s.header.size > 0) {
        EXPECT_EQ(::recv(backend_.get(), s.payload.data(), s.header.size, MSG_DONTWAIT),
                  static_cast<ssize_t>(s.header.size));
      }
      out.push_back(std::move(s));
    }
  }
  static std::vector<uint32_t> Requests(const std::vector<Sent>& sent) {
    std::vector<uint32_t> out;
    for (const Sent& s : sent) out.push_back(s.header.request);
    return out;
  }
  // A handshake that ends with `protocol` negotiated.
  void HandshakeWith(uint64_t protocol) {
    ReplyU64(Request::kGetFeatures, kFProtocolFeatures | 1);
    ReplyU64(Request::kGetProtocolFeatures, protocol);
    ASSERT_TRUE(frontend_->Handshake().ok());
    (void)Received();
  }

  UniqueFd backend_;
  std::optional<Frontend> frontend_;
};

constexpr uint32_t R(Request r) { return static_cast<uint32_t>(r); }

TEST_F(FrontendTest, HandshakeTakesTheProtocolFeaturesBothSidesHave) {
  ReplyU64(Request::kGetFeatures, kFProtocolFeatures | (1ull << 32) | 1);
  ReplyU64(Request::kGetProtocolFeatures, (1ull << kProtocolMq) | (1ull << kProtocolReplyAck) |
                                              (1ull << 5) | (1ull << kProtocolConfig));
  ASSERT_TRUE(frontend_->Handshake().ok());
  const std::vector<Sent> sent = Received();
  EXPECT_THAT(Requests(sent),
              ElementsAre(R(Request::kSetOwner), R(Request::kGetFeatures),
                          R(Request::kGetProtocolFeatures), R(Request::kSetProtocolFeatures)));
  for (const Sent& s : sent) EXPECT_EQ(s.header.flags & kVersionMask, kVersion);
  EXPECT_EQ(sent[3].As<uint64_t>(),
            (1ull << kProtocolMq) | (1ull << kProtocolReplyAck) | (1ull << kProtocolConfig));
  EXPECT_EQ(frontend_->backend_features(), (1ull << 32) | 1);
  EXPECT_TRUE(frontend_->HasProtocolFeature(kProtocolReplyAck));
}

TEST_F(FrontendTest, ABackEndWithoutProtocolFeaturesIsNotAskedForThem) {
  ReplyU64(Request::kGetFeatures, 1ull << 32);
  ASSERT_TRUE(frontend_->Handshake().ok());
  EXPECT_THAT(Requests(Received()), ElementsAre(R(Request::kSetOwner), R(Request::kGetFeatures)));
  EXPECT_EQ(frontend_->protocol_features(), 0u);
  ASSERT_TRUE(frontend_->SetVringNum(0, 256).ok()) << "no ack is waited for";
  const std::vector<Sent> sent = Received();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].header.flags & kFlagNeedReply, 0u);
  EXPECT_EQ(sent[0].As<VringState>().num, 256u);
  EXPECT_FALSE(frontend_->GetConfig(0, 8).ok()) << "CONFIG was not negotiated";
}

TEST_F(FrontendTest, SetFeaturesKeepsTheProtocolFeaturesBit) {
  HandshakeWith(0);
  ASSERT_TRUE(frontend_->SetFeatures(1ull << 32).ok());
  EXPECT_EQ(Received()[0].As<uint64_t>(), (1ull << 32) | kFProtocolFeatures);
}

TEST_F(FrontendTest, WithReplyAckEveryChangeWaitsForItsAckAndARefusalIsAnError) {
  HandshakeWith(1ull << kProtocolReplyAck);
  ReplyU64(Request::kSetVringNum, 0);
  ASSERT_TRUE(frontend_->SetVringNum(1, 128).ok());
  std::vector<Sent> sent = Received();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_NE(sent[0].header.flags & kFlagNeedReply, 0u);

  ReplyU64(Request::kSetVringEnable, 22);
  absl::Status refused = frontend_->SetVringEnable(1, true);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.message(), HasSubstr("refused SET_VRING_ENABLE (status 22)"));
}

TEST_F(FrontendTest, SetMemTableSendsTheRegionsWithOneFdEach) {
  HandshakeWith(0);
  UniqueFd a(::memfd_create("ram-a", MFD_CLOEXEC)), b(::memfd_create("ram-b", MFD_CLOEXEC));
  const MemoryRegion regions[2] = {{0, 1 << 20, 0x7f0000000000, 0},
                                   {1ull << 32, 2 << 20, 0x7f1000000000, 4096}};
  const int fds[2] = {a.get(), b.get()};
  ASSERT_TRUE(frontend_->SetMemTable(regions, fds).ok());
  std::vector<Sent> sent = Received();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].header.request, R(Request::kSetMemTable));
  ASSERT_EQ(sent[0].fds.size(), 2u);
  struct stat st;
  ASSERT_EQ(::fstat(sent[0].fds[1].get(), &st), 0);
  struct stat want;
  ASSERT_EQ(::fstat(b.get(), &want), 0);
  EXPECT_EQ(st.st_ino, want.st_ino) << "the second fd is the second region's";
  ASSERT_EQ(sent[0].payload.size(), 8 + 2 * sizeof(MemoryRegion));
  uint32_t count;
  std::memcpy(&count, sent[0].payload.data(), 4);
  EXPECT_EQ(count, 2u);
  MemoryRegion second;
  std::memcpy(&second, sent[0].payload.data() + 8 + sizeof(MemoryRegion), sizeof(second));
  EXPECT_EQ(second.guest_phys_addr, 1ull << 32);
  EXPECT_EQ(second.mmap_offset, 4096u);

  EXPECT_EQ(frontend_->SetMemTable(regions, absl::MakeConstSpan(fds, 1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Received().empty()) << "nothing is sent for a table without its fds";
}

TEST_F(FrontendTest, VringKickAndCallCarryTheirEventfdOrTheNoFdBit) {
  HandshakeWith(0);
  UniqueFd kick(::eventfd(0, EFD_CLOEXEC));
  ASSERT_TRUE(frontend_->SetVringKick(3, kick.get()).ok());
  ASSERT_TRUE(frontend_->SetVringCall(3, -1).ok());
  std::vector<Sent> sent = Received();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].As<uint64_t>(), 3u);
  EXPECT_EQ(sent[0].fds.size(), 1u);
  EXPECT_EQ(sent[1].As<uint64_t>(), 3u | kVringNoFd);
  EXPECT_TRUE(sent[1].fds.empty());
}

TEST_F(FrontendTest, GetVringBaseAndGetConfigReadTheirReplies) {
  HandshakeWith(1ull << kProtocolConfig);
  Raw(EncodeValue(Request::kGetVringBase, kFlagReply, VringState{2, 517}));
  EXPECT_EQ(frontend_->GetVringBase(2).value(), 517u);

  std::vector<uint8_t> config(sizeof(ConfigHeader) + 4, 0);
  const ConfigHeader header{0, 4, 0};
  std::memcpy(config.data(), &header, sizeof(header));
  config[12] = 't';
  config[15] = 'g';
  Raw(Encode(Request::kGetConfig, kFlagReply, config));
  EXPECT_THAT(frontend_->GetConfig(0, 4).value(), ElementsAre('t', 0, 0, 'g'));
}

TEST_F(FrontendTest, ReplyForAnotherRingIsRefused) {
  HandshakeWith(0);
  Raw(EncodeValue(Request::kGetVringBase, kFlagReply, VringState{1, 5}));
  EXPECT_THAT(frontend_->GetVringBase(2).status().message(), HasSubstr("ring 1, not 2"));
}

struct BadReply {
  const char* name;
  std::vector<uint8_t> bytes;
  const char* expected;
};

std::vector<uint8_t> WithHeader(uint32_t request, uint32_t flags, uint32_t size,
                                std::vector<uint8_t> payload) {
  const Header h{request, flags, size};
  std::vector<uint8_t> out(sizeof(h) + payload.size());
  std::memcpy(out.data(), &h, sizeof(h));
  for (size_t i = 0; i < payload.size(); ++i) out[sizeof(h) + i] = payload[i];
  return out;
}

class MalformedReplyTest : public FrontendTest, public ::testing::WithParamInterface<BadReply> {};

// Each is refused with a message naming the request, and the channel stays
// broken (the stream is out of step): the next request fails the same way.
TEST_P(MalformedReplyTest, IsRefusedAndTheChannelStaysBroken) {
  Raw(GetParam().bytes);
  absl::Status status = frontend_->Handshake();
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr(GetParam().expected));
  EXPECT_TRUE(frontend_->channel().broken());
  EXPECT_EQ(frontend_->SetVringNum(0, 8), status);
}

const uint32_t kGetFeatures = R(Request::kGetFeatures);
const uint32_t kOk = kVersion | kFlagReply;
INSTANTIATE_TEST_SUITE_P(
    Cases, MalformedReplyTest,
    ::testing::Values(
        BadReply{"WrongRequest", WithHeader(R(Request::kGetQueueNum), kOk, 8, std::vector<uint8_t>(8)),
                 "GET_FEATURES: it answers request 17"},
        BadReply{"NoReplyFlag", WithHeader(kGetFeatures, kVersion, 8, std::vector<uint8_t>(8)),
                 "the reply flag is not set"},
        BadReply{"WrongVersion", WithHeader(kGetFeatures, 2 | kFlagReply, 8, std::vector<uint8_t>(8)),
                 "version 2"},
        BadReply{"ShortU64", WithHeader(kGetFeatures, kOk, 4, std::vector<uint8_t>(4)),
                 "4 bytes, not 8"},
        BadReply{"HugeSize", WithHeader(kGetFeatures, kOk, 1u << 30, {}), "at most"},
        BadReply{"PayloadNeverComes", WithHeader(kGetFeatures, kOk, 8, {1, 2}),
                 "did not answer within"}),
    [](const ::testing::TestParamInfo<BadReply>& info) { return info.param.name; });

TEST_F(FrontendTest, AReplyCarryingFdsIsRefusedAndTheFdsAreClosed) {
  UniqueFd stray(::eventfd(0, EFD_CLOEXEC));
  const int before = OpenFds();
  Raw(EncodeValue(Request::kGetFeatures, kFlagReply, uint64_t{0}), stray.get());
  absl::Status status = frontend_->Handshake();
  EXPECT_THAT(status.message(), HasSubstr("carried 1 file descriptor(s)"));
  EXPECT_EQ(OpenFds(), before) << "the fd that came with the reply was closed";
}

TEST_F(FrontendTest, ABackEndClosingMidReplyIsUnavailable) {
  std::vector<uint8_t> half = EncodeValue(Request::kGetFeatures, kFlagReply, uint64_t{0});
  half.resize(6);
  Raw(half);
  ::shutdown(backend_.get(), SHUT_WR);  // it read our request, then went
  absl::Status status = frontend_->Handshake();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("closed the connection"));
}

TEST_F(FrontendTest, ASilentBackEndTimesOut) {
  absl::Status status = frontend_->Handshake();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(status.message(), HasSubstr("GET_FEATURES"));
}

// Start-up's Ctrl-C: a cancelled wait ends at once with the Cancelled
// status (not after the timeout), and the channel stays broken.
TEST_F(FrontendTest, ACancelledWaitEndsBeforeTheTimeout) {
  frontend_.emplace(Channel(UniqueFd(::dup(frontend_->channel().fd())), absl::Seconds(30)));
  absl::StatusOr<std::unique_ptr<Cancellation>> cancel = Cancellation::Create();
  ASSERT_TRUE(cancel.ok());
  frontend_->channel().set_cancel(cancel->get());
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(50));
    (*cancel)->Cancel("start-up interrupted by SIGINT");
  });
  const absl::Time start = absl::Now();
  absl::Status status = frontend_->Handshake();
  canceller.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10)) << "waited for the 30 s timeout";
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  EXPECT_THAT(status.message(), HasSubstr("interrupted by SIGINT"));
  frontend_->channel().set_cancel(nullptr);
  EXPECT_TRUE(frontend_->channel().broken());
}

TEST_F(FrontendTest, SendingToAClosedBackEndIsAnErrorNotASignal) {
  backend_.Reset();
  EXPECT_FALSE(frontend_->Handshake().ok());
}

TEST(MemoryTableTest, DescribesMemfdRamOneRegionPerMappingWithItsOffset) {
  const RamRange ranges[2] = {{GuestAddress(0), 2 << 20},
                              {GuestAddress(4ull << 30), 4 << 20}};
  absl::StatusOr<GuestMemory> ram = GuestMemory::Create(ranges, {.memfd = true});
  ASSERT_TRUE(ram.ok()) << ram.status();
  absl::StatusOr<MemoryTable> table = MemoryTableFor(*ram);
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->regions.size(), 2u);
  EXPECT_EQ(table->regions[1].guest_phys_addr, 4ull << 30);
  EXPECT_EQ(table->regions[1].memory_size, 4u << 20);
  EXPECT_EQ(table->regions[1].mmap_offset, ram->regions()[1].fd_offset);
  EXPECT_EQ(table->regions[1].userspace_addr,
            reinterpret_cast<uint64_t>(ram->regions()[1].host));
  EXPECT_EQ(table->fds[1], ram->regions()[1].fd);

  absl::StatusOr<GuestMemory> private_ram = GuestMemory::Create(ranges);
  ASSERT_TRUE(private_ram.ok());
  EXPECT_EQ(MemoryTableFor(*private_ram).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ChannelTest, ConnectingToNothingIsAOneLineError) {
  absl::StatusOr<Channel> c = Channel::Connect("/nonexistent/vhost.sock");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("/nonexistent/vhost.sock"));
  EXPECT_FALSE(Channel::Connect(std::string(200, 'x')).ok());
}

}  // namespace
}  // namespace vmm::vhost_user
