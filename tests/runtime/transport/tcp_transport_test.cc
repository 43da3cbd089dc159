#include "runtime/transport/tcp/tcp_transport.h"

#include <numeric>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "runtime/core/log.h"
#include "tests/runtime/transport/transport_fixture.h"

namespace silk::transport::tcp {
namespace {

absl::Time Soon() { return absl::Now() + absl::Seconds(30); }

std::vector<char> Pattern(size_t bytes, int seed) {
  std::vector<char> data(bytes);
  for (size_t i = 0; i < bytes; ++i) data[i] = static_cast<char>((i * 131 + seed * 17) & 0xff);
  return data;
}

// Sends `bytes` of a pattern from rank 0 to rank 1 as one message and expects it whole.
void ExpectOneMessageArrives(std::vector<std::unique_ptr<TcpTransport>>& transports, MessageTag tag, size_t bytes,
                             int seed) {
  std::vector<char> out = Pattern(bytes, seed), in(bytes);
  auto recv = transports[1]->Recv(0, tag, TestDescriptor(), in.data(), in.size());
  auto send = transports[0]->Send(1, tag, TestDescriptor(), out.data(), out.size());
  ASSERT_TRUE(send->Wait(Soon()).ok());
  ASSERT_TRUE(recv->Wait(Soon()).ok());
  EXPECT_EQ(in, out);
}

TEST(TcpTransport, LargeMessageIsStripedAcrossAllLanes) {
  TcpOptions options;
  options.lanes = 4;
  options.stripe_bytes = 32 << 10;
  auto transports = ConnectTransports(2, options);
  ASSERT_EQ(transports.size(), 2u);
  const size_t bytes = 8 << 20;
  ExpectOneMessageArrives(transports, MessageTag{5, 0}, bytes, 3);
  // Every lane carried part of it, and together exactly the message.
  std::vector<uint64_t> per_lane = transports[0]->LaneBytesSent(1);
  ASSERT_EQ(per_lane.size(), 4u);
  uint64_t total = 0;
  for (uint64_t bytes : per_lane) {
    EXPECT_GT(bytes, 0u);
    EXPECT_EQ(bytes % options.stripe_bytes, 0u) << "lanes carry whole stripes";
    total += bytes;
  }
  EXPECT_EQ(total, bytes);
}

// A low unsent mark (as across a WAN) makes every lane's socket refuse
// writes early: the transport resumes each partly written piece and the
// message still arrives whole, spread over the lanes.
TEST(TcpTransport, SmallNotsentLowatStillDeliversEveryByte) {
  TcpOptions options;
  options.lanes = 3;
  options.stripe_bytes = 64 << 10;
  options.socket.notsent_lowat_bytes = 16 << 10;
  auto transports = ConnectTransports(2, options);
  ASSERT_EQ(transports.size(), 2u);
  ExpectOneMessageArrives(transports, MessageTag{6, 0}, 24 << 20, 5);
  for (uint64_t bytes : transports[0]->LaneBytesSent(1)) EXPECT_GT(bytes, 0u);
}

// Pacing splits the rate over the peer's lanes, holds while any caller holds
// it, and is lifted (the kernel's all-ones "unlimited") when the last one ends.
TEST(TcpTransport, PacingSplitsOverLanesAndLastsUntilTheLastHolderEnds) {
  TcpOptions options;
  options.lanes = 4;
  auto transports = ConnectTransports(2, options);
  ASSERT_EQ(transports.size(), 2u);
  TcpTransport& t = *transports[0];
  const uint64_t unlimited = ~0ul;
  EXPECT_EQ(t.LanePacingRates(1), std::vector<uint64_t>(4, unlimited));
  t.BeginPacing(1, 40'000'000);
  EXPECT_EQ(t.LanePacingRates(1), std::vector<uint64_t>(4, 10'000'000));
  t.BeginPacing(1, 80'000'000);  // a second, overlapping operation: the latest rate
  EXPECT_EQ(t.LanePacingRates(1), std::vector<uint64_t>(4, 20'000'000));
  t.EndPacing(1);
  EXPECT_EQ(t.LanePacingRates(1), std::vector<uint64_t>(4, 20'000'000));
  t.EndPacing(1);
  EXPECT_EQ(t.LanePacingRates(1), std::vector<uint64_t>(4, unlimited));
  t.EndPacing(1);  // unbalanced: ignored
  EXPECT_EQ(t.LanePacingRates(1), std::vector<uint64_t>(4, unlimited));
  EXPECT_EQ(transports[1]->LanePacingRates(0), std::vector<uint64_t>(4, unlimited));
  // Paced lanes still deliver.
  t.BeginPacing(1, 200'000'000);
  ExpectOneMessageArrives(transports, MessageTag{7, 0}, 1 << 20, 9);
  t.EndPacing(1);
}

// Buffers set after Connect (as once the WAN is measured) reach every lane's
// socket and the options later replacement connections take; lanes still deliver.
TEST(TcpTransport, PeerSocketBufferResizesEveryLane) {
  TcpOptions options;
  options.lanes = 3;
  options.socket.buffer_bytes = 2 << 20;
  auto transports = ConnectTransports(2, options);
  ASSERT_EQ(transports.size(), 2u);
  TcpTransport& t = *transports[0];
  const size_t bytes = 256 << 10;
  for (int size : t.LaneReceiveBuffers(1)) EXPECT_GT(size, static_cast<int>(2 * bytes));
  ASSERT_TRUE(t.SetPeerSocketBuffer(1, bytes).ok());
  EXPECT_EQ(t.LaneReceiveBuffers(1), std::vector<int>(3, static_cast<int>(2 * bytes)));  // the kernel doubles it
  EXPECT_EQ(t.PeerSocket(1).buffer_bytes, bytes);
  EXPECT_EQ(transports[1]->PeerSocket(0).buffer_bytes, options.socket.buffer_bytes);  // only this side's
  EXPECT_FALSE(t.SetPeerSocketBuffer(0, bytes).ok());  // itself
  EXPECT_FALSE(t.SetPeerSocketBuffer(2, bytes).ok());  // no such rank
  ExpectOneMessageArrives(transports, MessageTag{8, 0}, 4 << 20, 11);
}

TEST(TcpTransport, FixedBasePortCountsUpWhenTaken) {
  auto taken = ListenTcp(0, SocketOptions{});
  ASSERT_TRUE(taken.ok()) << taken.status();
  TcpOptions options;
  options.port = LocalPort(taken->get());  // in use: the next free port is chosen
  auto a = TcpTransport::Listen(0, 2, options);
  auto b = TcpTransport::Listen(1, 2, options);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_GT((*a)->port(), options.port);
  EXPECT_LT((*a)->port(), options.port + kPortRange);
  EXPECT_NE((*a)->port(), (*b)->port());
}

// Shuts down ranks 0-2 (after one message on every pair) in `order` of rank,
// or all at once, with info logs on; returns what they logged.
std::string ShutDownAndCaptureLog(const std::vector<int>& order, bool together) {
  TcpOptions options;
  options.lanes = 3;
  auto transports = ConnectTransports(3, options);
  if (transports.size() != 3u) return "connect failed";
  for (int from = 0; from < 3; ++from) {
    for (int to = 0; to < 3; ++to) {
      if (from == to) continue;
      char out = static_cast<char>(from), in = 0;
      auto recv = transports[to]->Recv(from, MessageTag{1, static_cast<uint32_t>(from)}, TestDescriptor(), &in, 1);
      auto send = transports[from]->Send(to, MessageTag{1, static_cast<uint32_t>(from)}, TestDescriptor(), &out, 1);
      EXPECT_TRUE(send->Wait(Soon()).ok());
      EXPECT_TRUE(recv->Wait(Soon()).ok());
    }
  }
  SetLogLevel(1);
  testing::internal::CaptureStderr();
  if (together) {
    std::vector<std::thread> threads;
    for (int r : order) threads.emplace_back([&, r] { transports[r].reset(); });
    for (auto& t : threads) t.join();
  } else {
    for (int r : order) {
      transports[r].reset();
      // The ranks still up have heard every goodbye and stay healthy past the
      // grace a lost connection gets.
      absl::SleepFor(absl::Milliseconds(300));
      for (auto& t : transports) {
        if (t) {
          EXPECT_TRUE(t->status().ok()) << "after rank " << r << " left: " << t->status();
        }
      }
    }
  }
  std::string log = testing::internal::GetCapturedStderr();
  SetLogLevel(0);
  return log;
}

// Each side of a lane says goodbye before its side closes, whoever starts:
// before, a rank answering a goodbye closed on the peer's EOF first, and the
// peer logged "the peer closed it without saying goodbye (did it exit or crash?)".
TEST(TcpTransport, OrderlyShutdownSaysGoodbyeOnEveryLane) {
  for (const auto& [order, together] : std::vector<std::pair<std::vector<int>, bool>>{
           {{2, 1, 0}, false}, {{0, 1, 2}, false}, {{0, 1, 2}, true}}) {
    std::string log = ShutDownAndCaptureLog(order, together);
    EXPECT_EQ(log.find("lost connection"), std::string::npos) << log;
    EXPECT_EQ(log.find("failed"), std::string::npos) << log;
  }
}

}  // namespace
}  // namespace silk::transport::tcp
