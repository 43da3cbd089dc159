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

struct Shape {
  int ranks;
  int lanes;
};

class TransportExchange : public ::testing::TestWithParam<Shape> {};

// Every rank sends a distinct message of each size to every rank (itself too),
// half the receives posted before the sends and half after (the staged path).
TEST_P(TransportExchange, AllPairsAllSizesArriveIntact) {
  const Shape shape = GetParam();
  TcpOptions options;
  options.lanes = shape.lanes;
  options.stripe_bytes = 64 << 10;
  auto transports = ConnectTransports(shape.ranks, options);
  ASSERT_EQ(static_cast<int>(transports.size()), shape.ranks);
  const std::vector<size_t> sizes = {0, 1, 4095, 64 << 10, (64 << 10) + 1, 3 << 20};

  std::vector<std::thread> threads;
  std::vector<std::string> failures(shape.ranks);
  for (int r = 0; r < shape.ranks; ++r) {
    threads.emplace_back([&, r] {
      TcpTransport& t = *transports[r];
      std::vector<std::vector<char>> inbox, outbox;
      std::vector<RequestPtr> requests;
      auto post_recvs = [&](bool early) {
        for (int peer = 0; peer < shape.ranks; ++peer) {
          for (size_t s = 0; s < sizes.size(); ++s) {
            if ((s % 2 == 0) != early) continue;
            inbox.emplace_back(sizes[s]);
            requests.push_back(t.Recv(peer, MessageTag{1 + s, 0}, TestDescriptor(sizes[s]),
                                      inbox.back().data(), sizes[s]));
          }
        }
      };
      inbox.reserve(sizes.size() * shape.ranks);
      post_recvs(true);
      for (int peer = 0; peer < shape.ranks; ++peer) {
        for (size_t s = 0; s < sizes.size(); ++s) {
          outbox.push_back(Pattern(sizes[s], r * 100 + peer * 10 + static_cast<int>(s)));
          requests.push_back(t.Send(peer, MessageTag{1 + s, 0}, TestDescriptor(sizes[s]),
                                    outbox.back().data(), sizes[s]));
        }
      }
      absl::SleepFor(absl::Milliseconds(20));  // let some messages arrive before their receive exists
      post_recvs(false);
      absl::Status status = WaitAll(requests, Soon());
      if (!status.ok()) {
        failures[r] = std::string(status.message());
        return;
      }
      // Check contents: receives were posted early (even sizes) then late (odd sizes).
      size_t index = 0;
      for (bool early : {true, false}) {
        for (int peer = 0; peer < shape.ranks; ++peer) {
          for (size_t s = 0; s < sizes.size(); ++s) {
            if ((s % 2 == 0) != early) continue;
            if (inbox[index++] != Pattern(sizes[s], peer * 100 + r * 10 + static_cast<int>(s))) {
              failures[r] += absl::StrFormat("wrong bytes from rank %d size %d; ", peer, sizes[s]);
            }
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int r = 0; r < shape.ranks; ++r) EXPECT_EQ(failures[r], "") << "rank " << r;
  // Striping: with several lanes, big messages must have used more than one lane's worth of pieces.
  for (int r = 0; r < shape.ranks; ++r) EXPECT_TRUE(transports[r]->status().ok());
  if (shape.ranks > 1) {
    uint64_t expected = std::accumulate(sizes.begin(), sizes.end(), uint64_t{0});
    EXPECT_EQ(transports[0]->counters(1).bytes_sent, expected);
    EXPECT_EQ(transports[1]->counters(0).bytes_received, expected);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, TransportExchange,
                         ::testing::Values(Shape{1, 1}, Shape{2, 1}, Shape{2, 4}, Shape{3, 2}, Shape{4, 3}),
                         [](const auto& info) {
                           return absl::StrFormat("ranks%d_lanes%d", info.param.ranks, info.param.lanes);
                         });

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

TEST(TcpTransport, ReceiveWithoutSendTimesOutNamingThePeer) {
  auto transports = ConnectTransports(2, TcpOptions{});
  ASSERT_EQ(transports.size(), 2u);
  char buffer[8];
  auto recv = transports[0]->Recv(1, MessageTag{9, 3}, TestDescriptor(), buffer, sizeof(buffer));
  absl::Status status = recv->Wait(absl::Now() + absl::Milliseconds(100));
  EXPECT_TRUE(absl::IsDeadlineExceeded(status)) << status;
  EXPECT_NE(status.message().find("rank 1"), std::string::npos) << status;
  EXPECT_NE(status.message().find("operation 9"), std::string::npos) << status;
}

TEST(TcpTransport, MismatchedDescriptorsFailBothRanksWithBothCalls) {
  auto transports = ConnectTransports(2, TcpOptions{});
  ASSERT_EQ(transports.size(), 2u);
  int value = 7, sink = 0;
  OpDescriptor sent = TestDescriptor(100), expected = TestDescriptor(200);
  auto recv = transports[1]->Recv(0, MessageTag{1, 0}, expected, &sink, sizeof(sink));
  auto send = transports[0]->Send(1, MessageTag{1, 0}, sent, &value, sizeof(value));
  absl::Status at_receiver = recv->Wait(Soon());
  EXPECT_TRUE(absl::IsFailedPrecondition(at_receiver)) << at_receiver;
  EXPECT_NE(at_receiver.message().find("count=100"), std::string::npos) << at_receiver;
  EXPECT_NE(at_receiver.message().find("count=200"), std::string::npos) << at_receiver;
  // The sender hears about it through the abort, and its transport stays failed.
  for (int i = 0; i < 200 && transports[0]->status().ok(); ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_NE(transports[0]->status().message().find("mismatched"), std::string::npos) << transports[0]->status();
  EXPECT_EQ(sink, 0) << "a mismatched message must not be written into the receive buffer";
  auto later = transports[0]->Send(1, MessageTag{2, 0}, sent, &value, sizeof(value));
  EXPECT_FALSE(later->Wait(Soon()).ok()) << "errors are sticky";
}

TEST(TcpTransport, SizeMismatchIsReported) {
  auto transports = ConnectTransports(2, TcpOptions{});
  ASSERT_EQ(transports.size(), 2u);
  char out[16] = {}, in[8];
  auto send = transports[0]->Send(1, MessageTag{1, 0}, TestDescriptor(), out, sizeof(out));
  absl::SleepFor(absl::Milliseconds(20));
  auto recv = transports[1]->Recv(0, MessageTag{1, 0}, TestDescriptor(), in, sizeof(in));
  absl::Status status = recv->Wait(Soon());
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_NE(status.message().find("expects 8 bytes"), std::string::npos) << status;
}

TEST(TcpTransport, PeerShuttingDownWithPendingReceiveFailsPromptly) {
  auto transports = ConnectTransports(2, TcpOptions{});
  ASSERT_EQ(transports.size(), 2u);
  char buffer[4];
  auto recv = transports[0]->Recv(1, MessageTag{3, 0}, TestDescriptor(), buffer, sizeof(buffer));
  transports[1].reset();  // rank 1 leaves without sending
  absl::Status status = recv->Wait(Soon());
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("rank 1"), std::string::npos) << status;
}

TEST(TcpTransport, AbortReachesEveryPeerWithItsReason) {
  auto transports = ConnectTransports(3, TcpOptions{});
  ASSERT_EQ(transports.size(), 3u);
  transports[2]->Abort(absl::InternalError("gradient exploded"));
  for (int r : {0, 1}) {
    for (int i = 0; i < 300 && transports[r]->status().ok(); ++i) absl::SleepFor(absl::Milliseconds(10));
    EXPECT_NE(transports[r]->status().message().find("gradient exploded"), std::string::npos)
        << "rank " << r << ": " << transports[r]->status();
    EXPECT_TRUE(absl::IsInternal(transports[r]->status()));
  }
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
