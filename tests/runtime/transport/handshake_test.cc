#include "runtime/transport/handshake.h"

#include <sys/socket.h>

#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/transport/frame.h"
#include "runtime/transport/handshake.pb.h"
#include "runtime/transport/socket.h"

namespace silk::transport {
namespace {

TEST(Hmac, MatchesRfc4231TestCase2) {
  EXPECT_EQ(absl::BytesToHexString(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

struct SocketPair {
  SocketPair() {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    a.reset(fds[0]);
    b.reset(fds[1]);
    EXPECT_TRUE(SetNonBlocking(a.get(), true).ok());
    EXPECT_TRUE(SetNonBlocking(b.get(), true).ok());
  }
  ScopedFd a, b;
};

HandshakeParams Params(int rank, const std::string& token) {
  HandshakeParams p;
  p.job_id = 42;
  p.token = token;
  p.rank = rank;
  p.world_size = 4;
  p.lanes = 2;
  return p;
}

absl::Status RunHandshake(const HandshakeParams& server, const HandshakeParams& client, int lane,
                 absl::StatusOr<AcceptedConnection>* accepted) {
  SocketPair pair;
  absl::Time deadline = absl::Now() + absl::Seconds(1);
  std::thread server_thread([&] {
    *accepted = ServerHandshake(pair.a.get(), server, deadline, [](const AcceptedConnection&) { return absl::OkStatus(); });
  });
  absl::Status client_status = ClientHandshake(pair.b.get(), client, server.rank, lane, deadline);
  server_thread.join();
  return client_status;
}

TEST(Handshake, SucceedsWithTheSameToken) {
  absl::StatusOr<AcceptedConnection> accepted;
  ASSERT_TRUE(RunHandshake(Params(0, "secret"), Params(3, "secret"), 1, &accepted).ok());
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_EQ(accepted->rank, 3);
  EXPECT_EQ(accepted->lane, 1);
}

TEST(Handshake, RejectsAWrongTokenOnBothSides) {
  absl::StatusOr<AcceptedConnection> accepted;
  absl::Status client = RunHandshake(Params(0, "secret"), Params(3, "guess"), 0, &accepted);
  EXPECT_TRUE(absl::IsPermissionDenied(client)) << client;
  EXPECT_TRUE(absl::IsPermissionDenied(accepted.status())) << accepted.status();
  EXPECT_NE(accepted.status().message().find("token"), std::string::npos);
}

TEST(Handshake, RejectsAnotherProtocolVersion) {
  HandshakeParams old_client = Params(3, "secret");
  old_client.protocol_version = 999;
  absl::StatusOr<AcceptedConnection> accepted;
  absl::Status client = RunHandshake(Params(0, "secret"), old_client, 0, &accepted);
  EXPECT_FALSE(client.ok());
  EXPECT_NE(client.message().find("protocol version"), std::string::npos) << client;
}

TEST(Handshake, RejectsAnotherJobAndOutOfRangeLane) {
  HandshakeParams other_job = Params(3, "secret");
  other_job.job_id = 7;
  absl::StatusOr<AcceptedConnection> accepted;
  EXPECT_FALSE(RunHandshake(Params(0, "secret"), other_job, 0, &accepted).ok());
  EXPECT_FALSE(RunHandshake(Params(0, "secret"), Params(3, "secret"), 5, &accepted).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(accepted.status())) << accepted.status();
}

TEST(Handshake, ServerTimesOutOnASilentClient) {
  SocketPair pair;
  auto accepted = ServerHandshake(pair.a.get(), Params(0, "secret"), absl::Now() + absl::Milliseconds(200),
                                  [](const AcceptedConnection&) { return absl::OkStatus(); });
  EXPECT_TRUE(absl::IsDeadlineExceeded(accepted.status())) << accepted.status();
}

// The checks on each received message, without a socket (tests/fuzz/handshake_fuzz.cc feeds them bytes).
TEST(HandshakeChecks, LengthPrefixIsBounded) {
  const char ok[4] = {0x00, 0x10, 0, 0};  // 4096
  ASSERT_TRUE(DecodeMessageLength(ok).ok());
  EXPECT_EQ(*DecodeMessageLength(ok), 4096u);
  const char too_long[4] = {0x01, 0x10, 0, 0};  // 4097
  EXPECT_NE(DecodeMessageLength(too_long).status().message().find("exceeds"), std::string::npos);
}

TEST(HandshakeChecks, ChallengeMustNameThisJobAndTheExpectedRank) {
  Challenge challenge;
  challenge.set_protocol_version(kProtocolVersion);
  challenge.set_job_id(42);
  challenge.set_server_rank(0);
  challenge.set_server_nonce("nonce");
  absl::StatusOr<std::string> nonce = CheckChallenge(challenge.SerializeAsString(), Params(3, "secret"), 0);
  ASSERT_TRUE(nonce.ok()) << nonce.status();
  EXPECT_EQ(*nonce, "nonce");
  EXPECT_TRUE(absl::IsFailedPrecondition(CheckChallenge(challenge.SerializeAsString(), Params(3, "secret"), 1).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(CheckChallenge("\xff\xff", Params(3, "secret"), 0).status()));
}

TEST(HandshakeChecks, HelloIsRefusedWithAReasonOrDroppedWhenMalformed) {
  Hello hello;
  hello.set_protocol_version(kProtocolVersion);
  hello.set_job_id(42);
  hello.set_client_rank(3);
  hello.set_lane(1);
  hello.set_client_nonce("client");
  hello.set_client_mac(HmacSha256("secret", absl::StrCat("silk-client|", kProtocolVersion, "|42|0|3|1|server|client")));
  absl::StatusOr<CheckedHello> checked = CheckHello(hello.SerializeAsString(), Params(0, "secret"), "server");
  ASSERT_TRUE(checked.ok()) << checked.status();
  EXPECT_TRUE(checked->refusal.ok()) << checked->refusal;
  EXPECT_EQ(checked->from.rank, 3);
  EXPECT_EQ(checked->from.lane, 1);
  checked = CheckHello(hello.SerializeAsString(), Params(0, "secret"), "another nonce");
  ASSERT_TRUE(checked.ok());
  EXPECT_TRUE(absl::IsPermissionDenied(checked->refusal)) << checked->refusal;
  hello.set_lane(2);
  checked = CheckHello(hello.SerializeAsString(), Params(0, "secret"), "server");
  ASSERT_TRUE(checked.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(checked->refusal)) << checked->refusal;
  EXPECT_FALSE(CheckHello("\xff\xff", Params(0, "secret"), "server").ok());
}

TEST(HandshakeChecks, RefusingWelcomeCarriesTheAcceptorsReason) {
  Welcome welcome;
  welcome.set_accepted(false);
  welcome.set_reason("already connected");
  absl::Status status = CheckWelcome(welcome.SerializeAsString(), Params(3, "secret"), 0, 1, /*resume=*/false, "server", "client");
  EXPECT_TRUE(absl::IsPermissionDenied(status)) << status;
  EXPECT_NE(status.message().find("already connected"), std::string::npos) << status;
  welcome.set_accepted(true);
  welcome.set_server_mac("forged");
  status = CheckWelcome(welcome.SerializeAsString(), Params(3, "secret"), 0, 1, /*resume=*/false, "server", "client");
  EXPECT_NE(status.message().find("could not prove"), std::string::npos) << status;
}

}  // namespace
}  // namespace silk::transport
