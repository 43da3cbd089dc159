// The behaviour every transport owes its callers, one suite run against each:
// TCP lanes, shared memory, and the routed transport (shared memory within a
// node, TCP across). Every message-layer rule lives in runtime/transport/mailbox
// once; these cases hold each transport to it, including the error paths where
// the copies used to drift apart.
#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "runtime/core/error.h"
#include "runtime/transport/routed_transport.h"
#include "tests/runtime/transport/shm_fixture.h"
#include "tests/runtime/transport/transport_fixture.h"

namespace silk::transport {
namespace {

absl::Time Soon() { return absl::Now() + absl::Seconds(20); }

OpDescriptor Call(uint64_t count, CollectiveKind kind = CollectiveKind::kSendRecv) {
  OpDescriptor d;
  d.kind = kind;
  d.count = count;
  return d;
}

std::vector<char> Pattern(size_t bytes, int seed) {
  std::vector<char> v(bytes);
  for (size_t i = 0; i < bytes; ++i) v[i] = static_cast<char>((i * 131 + seed * 7) & 0xff);
  return v;
}

using Ranks = std::vector<std::unique_ptr<Transport>>;

Ranks MakeTcp(int n) {
  tcp::TcpOptions options;
  options.stripe_bytes = 64 << 10;  // many pieces over several lanes
  options.lanes = 2;
  Ranks ranks;
  for (auto& t : tcp::ConnectTransports(n, options)) ranks.push_back(std::move(t));
  return ranks;
}

Ranks MakeShm(int n) {
  shm::ShmOptions options;
  options.ring_bytes = 1 << 20;
  options.piece_bytes = 64 << 10;
  Ranks ranks;
  for (auto& t : shm::JoinShm(n, options)) ranks.push_back(std::move(t));
  return ranks;
}

// Ranks 0 and n-1 share a node; the others reach everyone over TCP.
Ranks MakeRouted(int n) {
  std::vector<int> node = {0, n - 1};
  auto tcps = tcp::ConnectTransports(n, tcp::TcpOptions{});
  auto shms = shm::JoinShm(n, shm::ShmOptions{}, node);
  if (static_cast<int>(tcps.size()) != n || static_cast<int>(shms.size()) != n) return {};
  Ranks ranks;
  for (int r = 0; r < n; ++r) {
    std::vector<std::unique_ptr<Transport>> parts;
    parts.push_back(std::move(tcps[r]));
    std::vector<int> routes(n, 0);
    if (shms[r]) {
      parts.push_back(std::move(shms[r]));
      for (int local : node) routes[local] = 1;
    }
    auto routed = RoutedTransport::Create(std::move(parts), routes);
    EXPECT_TRUE(routed.ok()) << routed.status();
    if (!routed.ok()) return {};
    ranks.push_back(std::move(*routed));
  }
  return ranks;
}

struct Kind {
  std::string name;
  std::function<Ranks(int)> make;
};

class Conformance : public ::testing::TestWithParam<Kind> {
 protected:
  Ranks Join(int n) {
    Ranks ranks = GetParam().make(n);
    EXPECT_EQ(static_cast<int>(ranks.size()), n);
    return ranks;
  }
};

void WaitUntilFailed(const Transport& t) {
  for (int i = 0; i < 1000 && t.status().ok(); ++i) absl::SleepFor(absl::Milliseconds(5));
}

TEST_P(Conformance, MessagesArriveWholeWhicheverSideComesFirst) {
  Ranks t = Join(2);
  ASSERT_EQ(t.size(), 2u);
  for (bool receive_first : {true, false}) {
    const uint64_t op = receive_first ? 1 : 2;
    std::vector<char> out = Pattern(3 << 20, op), in(out.size());
    RequestPtr recv, send;
    if (receive_first) recv = t[1]->Recv(0, MessageTag{op, 0}, Call(1), in.data(), in.size());
    send = t[0]->Send(1, MessageTag{op, 0}, Call(1), out.data(), out.size());
    if (!receive_first) {
      ASSERT_TRUE(send->Wait(Soon()).ok()) << send->status();
      recv = t[1]->Recv(0, MessageTag{op, 0}, Call(1), in.data(), in.size());
    }
    ASSERT_TRUE(recv->Wait(Soon()).ok()) << recv->status();
    ASSERT_TRUE(send->Wait(Soon()).ok()) << send->status();
    EXPECT_EQ(in, out) << (receive_first ? "receive first" : "send first");
  }
}

TEST_P(Conformance, EmptyMessagesAndMessagesToSelf) {
  Ranks t = Join(2);
  ASSERT_EQ(t.size(), 2u);
  char unused = 0;
  auto empty_recv = t[1]->Recv(0, MessageTag{1, 0}, Call(0), &unused, 0);
  auto empty_send = t[0]->Send(1, MessageTag{1, 0}, Call(0), &unused, 0);
  EXPECT_TRUE(empty_recv->Wait(Soon()).ok()) << empty_recv->status();
  EXPECT_TRUE(empty_send->Wait(Soon()).ok()) << empty_send->status();
  std::vector<char> out = Pattern(100000, 3), early(out.size()), late(out.size());
  auto posted = t[0]->Recv(0, MessageTag{2, 0}, Call(5), early.data(), early.size());
  EXPECT_TRUE(t[0]->Send(0, MessageTag{2, 0}, Call(5), out.data(), out.size())->Wait(Soon()).ok());
  EXPECT_TRUE(t[0]->Send(0, MessageTag{2, 1}, Call(5), out.data(), out.size())->Wait(Soon()).ok());
  auto staged = t[0]->Recv(0, MessageTag{2, 1}, Call(5), late.data(), late.size());
  EXPECT_TRUE(posted->Wait(Soon()).ok()) << posted->status();
  EXPECT_TRUE(staged->Wait(Soon()).ok()) << staged->status();
  EXPECT_EQ(early, out);
  EXPECT_EQ(late, out);
}

// The two calls are named on both ranks, and the posted buffer is untouched.
TEST_P(Conformance, MismatchedCallsFailBothRanksAndWriteNothing) {
  for (bool receive_first : {true, false}) {
    Ranks t = Join(2);
    ASSERT_EQ(t.size(), 2u);
    std::vector<char> out = Pattern(1 << 20, 1), in(out.size(), 'z');
    RequestPtr recv, send;
    if (receive_first) recv = t[1]->Recv(0, MessageTag{7, 0}, Call(11, CollectiveKind::kAllreduce), in.data(), in.size());
    send = t[0]->Send(1, MessageTag{7, 0}, Call(11, CollectiveKind::kBroadcast), out.data(), out.size());
    if (!receive_first) {
      absl::SleepFor(absl::Milliseconds(50));  // let it arrive first
      recv = t[1]->Recv(0, MessageTag{7, 0}, Call(11, CollectiveKind::kAllreduce), in.data(), in.size());
    }
    absl::Status status = recv->Wait(Soon());
    EXPECT_EQ(KindOf(status), ErrorKind::kMismatch) << status;
    EXPECT_NE(status.message().find("allreduce"), std::string::npos) << status;
    EXPECT_NE(status.message().find("broadcast"), std::string::npos) << status;
    WaitUntilFailed(*t[0]);
    EXPECT_EQ(KindOf(t[0]->status()), ErrorKind::kMismatch) << t[0]->status();
    EXPECT_TRUE(std::all_of(in.begin(), in.end(), [](char c) { return c == 'z'; }));
  }
}

// A sender's frames may say anything: nothing lands outside the buffer posted
// for them. The receive is posted before, during and after the frames arrive.
TEST_P(Conformance, LongerMessageThanPostedNeverWritesPastTheBuffer) {
  for (int when : {0, 1, 2}) {
    Ranks t = Join(2);
    ASSERT_EQ(t.size(), 2u);
    const size_t posted = 4096, guard = 1 << 16;
    std::vector<char> out = Pattern(8 << 20, 2), in(posted + guard, 'g');
    auto post = [&] { return t[1]->Recv(0, MessageTag{3, 0}, Call(1), in.data(), posted); };
    RequestPtr recv;
    if (when == 0) recv = post();
    auto send = t[0]->Send(1, MessageTag{3, 0}, Call(1), out.data(), out.size());
    if (when == 1) recv = post();  // mid-stream, most likely
    if (when == 2) {
      send->Wait(Soon()).IgnoreError();
      recv = post();
    }
    absl::Status status = recv->Wait(Soon());
    EXPECT_EQ(KindOf(status), ErrorKind::kMismatch) << status;
    EXPECT_NE(status.message().find("4096"), std::string::npos) << status;
    EXPECT_TRUE(std::all_of(in.begin() + posted, in.end(), [](char c) { return c == 'g'; })) << "when " << when;
    WaitUntilFailed(*t[0]);
    EXPECT_FALSE(t[0]->status().ok());
    t.clear();  // lanes still reading must not write into `in` after the request failed
    EXPECT_TRUE(std::all_of(in.begin() + posted, in.end(), [](char c) { return c == 'g'; })) << "when " << when;
  }
}

TEST_P(Conformance, MismatchedMessageToSelfFailsItsReceive) {
  for (bool receive_first : {true, false}) {
    Ranks t = Join(2);
    ASSERT_EQ(t.size(), 2u);
    int out = 3, in = 0;
    RequestPtr recv, send;
    if (receive_first) recv = t[0]->Recv(0, MessageTag{4, 1}, Call(1), &in, sizeof(in));
    send = t[0]->Send(0, MessageTag{4, 1}, Call(2), &out, sizeof(out));
    if (!receive_first) recv = t[0]->Recv(0, MessageTag{4, 1}, Call(1), &in, sizeof(in));
    // Sent first, the bytes were handed over (staged) as to any peer: only the receive can see the mismatch.
    EXPECT_EQ(KindOf(send->Wait(Soon())), receive_first ? ErrorKind::kMismatch : ErrorKind::kNone) << send->status();
    EXPECT_EQ(KindOf(recv->Wait(Soon())), ErrorKind::kMismatch) << recv->status();
    EXPECT_EQ(in, 0);
    EXPECT_EQ(KindOf(t[0]->status()), ErrorKind::kMismatch);
  }
}

TEST_P(Conformance, ReceivesFromAPeerThatLeftFailAtOnce) {
  Ranks t = Join(2);
  ASSERT_EQ(t.size(), 2u);
  int value = 0;
  auto pending = t[0]->Recv(1, MessageTag{1, 0}, Call(1), &value, sizeof(value));
  t[1].reset();  // leaves in order, having sent nothing
  absl::Status status = pending->Wait(Soon());
  EXPECT_EQ(KindOf(status), ErrorKind::kPeerLost) << status;
  EXPECT_NE(status.message().find("rank 1"), std::string::npos) << status;
  const absl::Time start = absl::Now();
  auto later = t[0]->Recv(1, MessageTag{2, 0}, Call(1), &value, sizeof(value));
  absl::Status after = later->Wait(Soon());
  EXPECT_FALSE(after.ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(2)) << "a receive from a departed peer must not wait for its deadline";
  auto send = t[0]->Send(1, MessageTag{3, 0}, Call(1), &value, sizeof(value));
  EXPECT_FALSE(send->Wait(Soon()).ok());
}

TEST_P(Conformance, AbortReachesEveryPeerWithItsReasonAndKind) {
  Ranks t = Join(3);
  ASSERT_EQ(t.size(), 3u);
  char buffer[4];
  auto pending = t[0]->Recv(1, MessageTag{1, 0}, Call(1), buffer, sizeof(buffer));
  t[2]->Abort(MismatchError("rank 2 was handed a different schedule"));
  for (int r : {0, 1}) {
    WaitUntilFailed(*t[r]);
    absl::Status status = t[r]->status();
    EXPECT_EQ(KindOf(status), ErrorKind::kMismatch) << "rank " << r << ": " << status;
    EXPECT_NE(status.message().find("different schedule"), std::string::npos) << status;
  }
  EXPECT_FALSE(pending->Wait(Soon()).ok());
  // Sticky: later calls fail at once with the same error.
  auto later = t[0]->Send(1, MessageTag{2, 0}, Call(1), buffer, sizeof(buffer));
  ASSERT_TRUE(later->done());
  EXPECT_EQ(later->status(), t[0]->status());
}

// Every pair, both directions, sizes from empty to several rings or stripes,
// half the receives posted before the data comes and half after.
TEST_P(Conformance, AllPairsAllSizesArriveIntact) {
  const std::vector<size_t> sizes = {0, 1, 4095, 64 << 10, (64 << 10) + 1, 3 << 20, (5 << 20) + 3};
  for (int n : {1, 2, 3}) {
    if (n == 1 && GetParam().name == "routed") continue;  // it joins a node of two
    Ranks t = Join(n);
    ASSERT_EQ(static_cast<int>(t.size()), n);
    std::vector<std::thread> threads;
    std::vector<std::string> failures(n);
    for (int r = 0; r < n; ++r) {
      threads.emplace_back([&, r] {
        std::vector<std::vector<char>> inbox, outbox;
        std::vector<RequestPtr> requests;
        inbox.reserve(sizes.size() * n);
        auto post_recvs = [&](bool early) {
          for (int peer = 0; peer < n; ++peer) {
            for (size_t s = 0; s < sizes.size(); ++s) {
              if ((s % 2 == 0) != early) continue;
              inbox.emplace_back(sizes[s]);
              requests.push_back(t[r]->Recv(peer, MessageTag{1 + s, 0}, Call(sizes[s]), inbox.back().data(), sizes[s]));
            }
          }
        };
        post_recvs(true);
        for (int peer = 0; peer < n; ++peer) {
          for (size_t s = 0; s < sizes.size(); ++s) {
            outbox.push_back(Pattern(sizes[s], r * 100 + peer * 10 + static_cast<int>(s)));
            requests.push_back(t[r]->Send(peer, MessageTag{1 + s, 0}, Call(sizes[s]), outbox.back().data(), sizes[s]));
          }
        }
        absl::SleepFor(absl::Milliseconds(20));  // let some messages arrive before their receive exists
        post_recvs(false);
        if (absl::Status status = WaitAll(requests, Soon()); !status.ok()) {
          failures[r] = std::string(status.message());
          return;
        }
        size_t index = 0;
        for (bool early : {true, false}) {
          for (int peer = 0; peer < n; ++peer) {
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
    for (int r = 0; r < n; ++r) EXPECT_EQ(failures[r], "") << n << " ranks, rank " << r;
    for (int r = 0; r < n; ++r) EXPECT_TRUE(t[r]->status().ok()) << t[r]->status();
  }
}

TEST_P(Conformance, ReceiveWithoutSendTimesOutNamingThePeerAndMessage) {
  Ranks t = Join(2);
  ASSERT_EQ(t.size(), 2u);
  char buffer[8];
  auto recv = t[0]->Recv(1, MessageTag{9, 3}, Call(1), buffer, sizeof(buffer));
  absl::Status status = recv->Wait(absl::Now() + absl::Milliseconds(100));
  EXPECT_EQ(KindOf(status), ErrorKind::kTimeout) << status;
  EXPECT_NE(status.message().find("rank 1"), std::string::npos) << status;
  EXPECT_NE(status.message().find("operation 9"), std::string::npos) << status;
  EXPECT_TRUE(t[0]->status().ok()) << "a wait that ends is no failure of the transport";
}

INSTANTIATE_TEST_SUITE_P(Transports, Conformance,
                         ::testing::Values(Kind{"tcp", MakeTcp}, Kind{"shm", MakeShm}, Kind{"routed", MakeRouted}),
                         [](const ::testing::TestParamInfo<Kind>& info) { return info.param.name; });

}  // namespace
}  // namespace silk::transport
