// Strangers knocking on a live transport's port: each is rejected and logged,
// and the job's own traffic carries on.
#include <sys/socket.h>

#include <string>

#include "gtest/gtest.h"
#include "runtime/transport/handshake.h"
#include "tests/runtime/transport/transport_fixture.h"

namespace silk::transport::tcp {
namespace {

absl::Time Soon() { return absl::Now() + absl::Seconds(10); }

void ExpectStillWorks(std::vector<std::unique_ptr<TcpTransport>>& t, uint64_t op) {
  int out = static_cast<int>(op), in = -1;
  auto recv = t[0]->Recv(1, MessageTag{op, 0}, TestDescriptor(), &in, sizeof(in));
  auto send = t[1]->Send(0, MessageTag{op, 0}, TestDescriptor(), &out, sizeof(out));
  ASSERT_TRUE(send->Wait(Soon()).ok());
  ASSERT_TRUE(recv->Wait(Soon()).ok());
  EXPECT_EQ(in, out);
}

void WaitForRejections(TcpTransport& t, int count) {
  for (int i = 0; i < 500 && t.rejected_connections() < count; ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_GE(t.rejected_connections(), count);
}

class HostileConnection : public ::testing::Test {
 protected:
  void SetUp() override {
    TcpOptions options;
    options.handshake_timeout = absl::Milliseconds(500);
    transports_ = ConnectTransports(2, options, "the-real-token");
    ASSERT_EQ(transports_.size(), 2u);
  }
  ScopedFd Dial() {
    auto fd = ConnectTcp("127.0.0.1", transports_[0]->port(), SocketOptions{}, Soon());
    EXPECT_TRUE(fd.ok()) << fd.status();
    return fd.ok() ? std::move(*fd) : ScopedFd();
  }
  std::vector<std::unique_ptr<TcpTransport>> transports_;
};

TEST_F(HostileConnection, RandomBytesAreRejected) {
  ScopedFd fd = Dial();
  std::string junk = RandomBytes(4096);
  WriteAll(fd.get(), junk.data(), junk.size(), Soon()).IgnoreError();
  WaitForRejections(*transports_[0], 1);
  ExpectStillWorks(transports_, 1);
}

TEST_F(HostileConnection, HttpRequestIsRejected) {
  ScopedFd fd = Dial();
  std::string request = "GET / HTTP/1.1\r\nHost: silk\r\n\r\n";
  WriteAll(fd.get(), request.data(), request.size(), Soon()).IgnoreError();
  WaitForRejections(*transports_[0], 1);
  ExpectStillWorks(transports_, 2);
}

TEST_F(HostileConnection, WrongTokenIsRejected) {
  ScopedFd fd = Dial();
  HandshakeParams params{77, "a-guessed-token", 1, 2, 1, 0};
  absl::Status status = ClientHandshake(fd.get(), params, 0, 0, Soon());
  EXPECT_TRUE(absl::IsPermissionDenied(status)) << status;
  WaitForRejections(*transports_[0], 1);
  ExpectStillWorks(transports_, 3);
}

TEST_F(HostileConnection, WrongProtocolVersionIsRejected) {
  ScopedFd fd = Dial();
  HandshakeParams params{77, "the-real-token", 1, 2, 1, 2};
  absl::Status status = ClientHandshake(fd.get(), params, 0, 0, Soon());
  EXPECT_FALSE(status.ok());
  WaitForRejections(*transports_[0], 1);
  ExpectStillWorks(transports_, 4);
}

TEST_F(HostileConnection, ImpersonatingAConnectedRankIsRejected) {
  // Right token, but rank 1 lane 0 is already connected: the slot cannot be hijacked.
  ScopedFd fd = Dial();
  HandshakeParams params{77, "the-real-token", 1, 2, 2, 0};
  absl::Status status = ClientHandshake(fd.get(), params, 0, 0, Soon());
  EXPECT_TRUE(absl::IsPermissionDenied(status)) << status;
  EXPECT_NE(status.message().find("already connected"), std::string::npos) << status;
  ExpectStillWorks(transports_, 5);
}

TEST_F(HostileConnection, SilentConnectionTimesOutWithoutBlockingTheJob) {
  ScopedFd fd = Dial();
  ExpectStillWorks(transports_, 6);
  WaitForRejections(*transports_[0], 1);
}

}  // namespace
}  // namespace silk::transport::tcp
