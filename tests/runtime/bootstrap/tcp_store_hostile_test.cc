// The store server against clients that misbehave: garbage, truncated or
// oversized frames, unknown opcodes, silence, slowness, never reading. Each
// must lose at most its own connection while well-behaved clients carry on.
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/core/socket.h"
#include "runtime/bootstrap/store_protocol.h"
#include "runtime/bootstrap/tcp_store.h"
#include "tests/runtime/bootstrap/store_test_util.h"

namespace silk::bootstrap {
namespace {

using ::silk::bootstrap::testing::ConnectClient;
using ::silk::bootstrap::testing::StartLoopbackServer;

class HostileClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = StartLoopbackServer();
    ASSERT_NE(server_, nullptr);
    good_ = ConnectClient(*server_);
    ASSERT_NE(good_, nullptr);
  }

  ScopedFd RawConnection() {
    auto fd = ConnectTcp("127.0.0.1", server_->port(), absl::Now() + absl::Seconds(10));
    EXPECT_TRUE(fd.ok()) << fd.status();
    return fd.ok() ? *std::move(fd) : ScopedFd();
  }

  void Send(const ScopedFd& fd, const std::string& bytes) {
    ASSERT_TRUE(WriteAll(fd.get(), bytes.data(), bytes.size(), absl::Now() + absl::Seconds(10)).ok());
  }

  // The server closed `fd`: a read ends with EOF (or a reset), not a timeout.
  void ExpectClosedByServer(const ScopedFd& fd) {
    char byte;
    absl::Status status = ReadExact(fd.get(), &byte, 1, absl::Now() + absl::Seconds(30));
    EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  }

  // A well-behaved client still gets served, including a get that waits for
  // a set made by another connection.
  void ExpectServerStillServes() {
    const std::string key = absl::StrCat("still-alive/", round_++);
    auto other = ConnectClient(*server_);
    ASSERT_NE(other, nullptr);
    std::thread setter([&] {
      absl::SleepFor(absl::Milliseconds(20));
      ASSERT_TRUE(other->Set(key, "yes").ok());
    });
    absl::StatusOr<std::string> value = good_->Get(key, absl::Seconds(30));
    setter.join();
    ASSERT_TRUE(value.ok()) << value.status();
    EXPECT_EQ(*value, "yes");
  }

  static std::string Header(uint8_t code, uint32_t body_bytes) {
    std::string frame = wire::FrameWriter().Finish(code);  // header with an empty body
    for (int i = 0; i < 4; ++i) frame[8 + i] = static_cast<char>((body_bytes >> (8 * i)) & 0xff);
    return frame;
  }

  std::unique_ptr<TcpStoreServer> server_;
  std::unique_ptr<TcpStoreClient> good_;
  int round_ = 0;
};

TEST_F(HostileClientTest, GarbageBytesCloseOnlyThatConnection) {
  ScopedFd hostile = RawConnection();
  Send(hostile, "GET / HTTP/1.1\r\nHost: store\r\n\r\n");
  ExpectClosedByServer(hostile);
  ExpectServerStillServes();
}

TEST_F(HostileClientTest, UnknownOpcodeClosesTheConnection) {
  ScopedFd hostile = RawConnection();
  Send(hostile, Header(99, 0));
  ExpectClosedByServer(hostile);
  ExpectServerStillServes();
}

TEST_F(HostileClientTest, OversizedLengthIsRejectedBeforeAnyBodyArrives) {
  ScopedFd hostile = RawConnection();
  Send(hostile, Header(static_cast<uint8_t>(wire::Opcode::kSet), 0xffffffffu));
  ExpectClosedByServer(hostile);
  ExpectServerStillServes();
}

TEST_F(HostileClientTest, KeyOverTheLimitInsideAWellFormedFrameIsRejected) {
  ScopedFd hostile = RawConnection();
  std::string key(wire::kMaxKeyBytes + 1, 'k');
  Send(hostile, wire::FrameWriter().String(key).String("v").Finish(static_cast<uint8_t>(wire::Opcode::kSet)));
  ExpectClosedByServer(hostile);
  ExpectServerStillServes();
}

TEST_F(HostileClientTest, FieldLengthsThatOverrunTheFrameAreRejected) {
  ScopedFd hostile = RawConnection();
  // A key claiming 100 bytes inside a 4-byte body.
  Send(hostile, wire::FrameWriter().U32(100).Finish(static_cast<uint8_t>(wire::Opcode::kSet)));
  ExpectClosedByServer(hostile);
  ExpectServerStillServes();
}

TEST_F(HostileClientTest, TruncatedFrameThenSilenceDoesNotBlockOthers) {
  ScopedFd hostile = RawConnection();
  std::string frame = wire::FrameWriter().String("key").String(std::string(1000, 'v')).Finish(
      static_cast<uint8_t>(wire::Opcode::kSet));
  Send(hostile, frame.substr(0, 100));  // and then nothing, connection kept open
  ExpectServerStillServes();
  // A truncated frame followed by a hang-up is dropped, not applied.
  hostile.reset();
  ExpectServerStillServes();
  auto exists = good_->Check({"key"});
  ASSERT_TRUE(exists.ok()) << exists.status();
  EXPECT_FALSE((*exists)[0]);
}

TEST_F(HostileClientTest, SilentConnectionsDoNotBlockOthers) {
  std::vector<ScopedFd> silent;
  for (int i = 0; i < 100; ++i) silent.push_back(RawConnection());
  ExpectServerStillServes();
  silent.clear();
  ExpectServerStillServes();
}

TEST_F(HostileClientTest, SlowClientSendingOneByteAtATimeIsServedCorrectly) {
  ScopedFd slow = RawConnection();
  std::string frame = wire::FrameWriter().String("slow-key").String("slow-value").Finish(
      static_cast<uint8_t>(wire::Opcode::kSet));
  std::thread dribble([&] {
    for (char byte : frame) {
      Send(slow, std::string(1, byte));
      absl::SleepFor(absl::Milliseconds(5));
    }
  });
  ExpectServerStillServes();  // while the slow frame is half-sent
  dribble.join();
  char header[wire::kHeaderBytes];
  ASSERT_TRUE(ReadExact(slow.get(), header, sizeof(header), absl::Now() + absl::Seconds(30)).ok());
  auto decoded = wire::DecodeHeader(absl::string_view(header, sizeof(header)));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->code, static_cast<uint8_t>(wire::ReplyCode::kOk));
  EXPECT_EQ(good_->Get("slow-key", absl::Seconds(10)).value(), "slow-value");
}

TEST_F(HostileClientTest, ClientThatNeverReadsRepliesDoesNotBlockOthers) {
  ASSERT_TRUE(good_->Set("big", std::string(8 << 20, 'b')).ok());
  ScopedFd greedy = RawConnection();
  // Many pipelined gets of 8 MiB, never reading a reply: the server stops
  // reading from this client once its socket buffer is full.
  std::string get = wire::FrameWriter().U64(1000).U32(1).String("big").Finish(static_cast<uint8_t>(wire::Opcode::kGet));
  std::string burst;
  for (int i = 0; i < 64; ++i) burst += get;
  Send(greedy, burst);
  ExpectServerStillServes();
}

TEST_F(HostileClientTest, FrameSentJustBeforeHangUpIsStillApplied) {
  {
    ScopedFd brief = RawConnection();
    Send(brief, wire::FrameWriter().String("parting").String("gift").Finish(static_cast<uint8_t>(wire::Opcode::kSet)));
  }
  EXPECT_EQ(good_->Get("parting", absl::Seconds(30)).value(), "gift");
}

TEST_F(HostileClientTest, RandomBytesNeverCrashTheServer) {
  std::mt19937 random(20240601);
  for (int i = 0; i < 200; ++i) {
    ScopedFd hostile = RawConnection();
    std::string bytes(std::uniform_int_distribution<int>(1, 64)(random), '\0');
    for (char& byte : bytes) byte = static_cast<char>(random());
    // Half the time start with a valid header so the body parser sees garbage too.
    if (i % 2 == 0) {
      uint8_t opcode = static_cast<uint8_t>(1 + i % 4);
      bytes = Header(opcode, static_cast<uint32_t>(bytes.size())) + bytes;
    }
    Send(hostile, bytes);
  }
  ExpectServerStillServes();
}

}  // namespace
}  // namespace silk::bootstrap
