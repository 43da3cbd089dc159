// Lanes that outlive their connections (tcp/resend_buffer.h, tcp/lane_resume.cc):
// the resend buffer's bookkeeping, and whole streams that stay exact while
// their connections are replaced under them, over real loopback TCP.
#include <atomic>
#include <cstring>
#include <numeric>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/transport/tcp/resend_buffer.h"
#include "runtime/transport/tcp/tcp_transport.h"
#include "tests/runtime/transport/transport_fixture.h"

namespace silk::transport::tcp {
namespace {

absl::Time Soon() { return absl::Now() + absl::Seconds(30); }

std::string Pattern(size_t bytes, int seed) {
  std::string s(bytes, '\0');
  for (size_t i = 0; i < bytes; ++i) s[i] = static_cast<char>((i * 131 + seed * 7 + (i >> 12)) & 0xff);
  return s;
}

std::string Resent(ResendBuffer& buffer) {
  std::string out;
  while (buffer.resending()) {
    absl::string_view piece = buffer.ToResend();
    out.append(piece.data(), piece.size());
    buffer.Resent(piece.size());
  }
  return out;
}

TEST(ResendBuffer, RewindResendsExactlyWhatThePeerLacksAcrossBlocks) {
  ResendBuffer buffer;
  const std::string stream = Pattern(3 * (1 << 20) + 12345, 1);  // spans four blocks
  for (size_t at = 0; at < stream.size(); at += 70001) {
    buffer.Append(stream.data() + at, std::min<size_t>(70001, stream.size() - at));
  }
  EXPECT_EQ(buffer.end(), stream.size());
  EXPECT_FALSE(buffer.resending());
  ASSERT_TRUE(buffer.Release(1500000).ok());
  EXPECT_EQ(buffer.held(), stream.size() - 1500000);
  ASSERT_TRUE(buffer.Rewind(2000000).ok());
  EXPECT_EQ(Resent(buffer), stream.substr(2000000));
  // After a resend the stream goes on where it was.
  buffer.Append("xyz", 3);
  EXPECT_EQ(buffer.end(), stream.size() + 3);
  ASSERT_TRUE(buffer.Rewind(stream.size() + 1).ok());
  EXPECT_EQ(Resent(buffer), "yz");
}

TEST(ResendBuffer, CountsOutsideWhatIsHeldAreProtocolErrors) {
  ResendBuffer buffer;
  buffer.Append("0123456789", 10);
  ASSERT_TRUE(buffer.Release(4).ok());
  EXPECT_TRUE(buffer.Release(2).ok());  // an older confirmation changes nothing
  EXPECT_EQ(buffer.held(), 6u);
  EXPECT_FALSE(buffer.Release(11).ok());  // more than was ever sent
  EXPECT_FALSE(buffer.Rewind(3).ok());    // bytes already dropped
  EXPECT_FALSE(buffer.Rewind(11).ok());
  ASSERT_TRUE(buffer.Rewind(10).ok());
  EXPECT_FALSE(buffer.resending());
}

// Messages both ways between two ranks across a monitored link while rank 1
// replaces its connections again and again: whatever was in flight or in
// the old sockets' buffers is resent, and every byte arrives exactly once.
TEST(LaneResume, StreamsStayExactWhileConnectionsAreReplaced) {
  TcpOptions options;
  options.lanes = 3;
  options.stripe_bytes = 64 << 10;
  auto transports = ConnectTransports(2, options, "token", "WAN test");
  ASSERT_EQ(transports.size(), 2u);
  std::atomic<bool> done{false};
  std::thread replacer([&] {
    while (!done) {
      transports[1]->ReplaceConnections(0);
      absl::SleepFor(absl::Milliseconds(20));
    }
  });
  constexpr size_t kBytes = 6 << 20;
  int wrong = 0;
  for (int round = 0; round < 12; ++round) {
    const std::string out0 = Pattern(kBytes, 2 * round), out1 = Pattern(kBytes, 2 * round + 1);
    std::string in0(kBytes, '\0'), in1(kBytes, '\0');
    MessageTag tag{static_cast<uint64_t>(round + 1), 0};
    auto r1 = transports[1]->Recv(0, tag, TestDescriptor(), in1.data(), kBytes);
    auto r0 = transports[0]->Recv(1, tag, TestDescriptor(), in0.data(), kBytes);
    auto s0 = transports[0]->Send(1, tag, TestDescriptor(), out0.data(), kBytes);
    auto s1 = transports[1]->Send(0, tag, TestDescriptor(), out1.data(), kBytes);
    for (auto* request : {&s0, &s1, &r0, &r1}) {
      absl::Status status = (*request)->Wait(Soon());
      ASSERT_TRUE(status.ok()) << "round " << round << ": " << status;
    }
    wrong += (in1 != out0) + (in0 != out1);
  }
  done = true;
  replacer.join();
  EXPECT_EQ(wrong, 0);
  EXPECT_GT(transports[1]->resumed_lanes(0), 0);
  // Both sides moved. (Their counts may differ by the replacements one side
  // completed while the other had already moved on to a newer connection.)
  EXPECT_GT(transports[0]->resumed_lanes(1), 0);
  std::cout << "lanes resumed: " << transports[1]->resumed_lanes(0) << "\n";
}

// A resumption is authenticated like a new lane: a proof under another
// token is refused, and the lane keeps working on its connection.
TEST(LaneResume, AResumptionWithoutTheTokenIsRefused) {
  TcpOptions options;
  auto transports = ConnectTransports(2, options, "token", "WAN test");
  ASSERT_EQ(transports.size(), 2u);
  auto fd = ConnectTcp("127.0.0.1", transports[0]->port(), SocketOptions{}, Soon());
  ASSERT_TRUE(fd.ok()) << fd.status();
  HandshakeParams impostor;
  impostor.job_id = 77;
  impostor.token = "guess";
  impostor.rank = 1;
  impostor.world_size = 2;
  impostor.lanes = 2;
  absl::Status refused = ClientHandshake(fd->get(), impostor, 0, 0, Soon(), /*resume=*/true);
  EXPECT_FALSE(refused.ok());
  const std::string out = Pattern(1 << 20, 5);
  std::string in(out.size(), '\0');
  auto recv = transports[0]->Recv(1, MessageTag{1, 0}, TestDescriptor(), in.data(), in.size());
  auto send = transports[1]->Send(0, MessageTag{1, 0}, TestDescriptor(), out.data(), out.size());
  ASSERT_TRUE(send->Wait(Soon()).ok());
  ASSERT_TRUE(recv->Wait(Soon()).ok());
  EXPECT_EQ(in, out);
  EXPECT_EQ(transports[0]->resumed_lanes(1), 0);
}

}  // namespace
}  // namespace silk::transport::tcp
