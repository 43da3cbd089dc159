// What only the shared-memory transport does: its rings wrapping under many
// senders, refusing peers of other nodes, set-up among a node's ranks,
// segments that leave nothing behind. The behaviours every transport shares
// are conformance_test.cc's. Ranks are threads here; shm_process_test runs
// them as processes.
#include "runtime/transport/shm/shm_transport.h"

#include <sys/socket.h>

#include <filesystem>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "runtime/core/error.h"
#include "runtime/transport/shm/link.h"
#include "runtime/transport/handshake.h"
#include "tests/runtime/transport/shm_fixture.h"

namespace silk::transport::shm {
namespace {

absl::Time Soon() { return absl::Now() + absl::Seconds(30); }

std::vector<char> Pattern(size_t bytes, int seed) {
  std::vector<char> data(bytes);
  for (size_t i = 0; i < bytes; ++i) data[i] = static_cast<char>((i * 131 + seed * 17 + (i >> 12)) & 0xff);
  return data;
}

TEST(ShmTransport, ManyMessagesWrapTheRingFromSeveralThreads) {
  ShmOptions options;
  options.ring_bytes = 64 << 10;
  options.piece_bytes = 8 << 10;
  auto t = JoinShm(2, options);
  ASSERT_EQ(t.size(), 2u);
  constexpr int kPerThread = 600;
  std::mt19937 random(7);
  std::vector<size_t> sizes(2 * kPerThread);
  for (auto& s : sizes) s = random() % 30000;
  std::vector<std::vector<char>> out(sizes.size()), in(sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    out[i] = Pattern(sizes[i], static_cast<int>(i));
    in[i].assign(sizes[i], 0);
  }
  std::vector<RequestPtr> recvs(sizes.size());
  for (size_t i = sizes.size(); i-- > 0;) {
    recvs[i] = t[1]->Recv(0, MessageTag{9, static_cast<uint32_t>(i)}, ShmTestDescriptor(), in[i].data(), sizes[i]);
  }
  std::vector<std::thread> senders;
  std::vector<absl::Status> sent(2);
  for (int s = 0; s < 2; ++s) {
    senders.emplace_back([&, s] {
      std::vector<RequestPtr> requests;
      for (int k = 0; k < kPerThread; ++k) {
        size_t i = static_cast<size_t>(k * 2 + s);
        requests.push_back(t[0]->Send(1, MessageTag{9, static_cast<uint32_t>(i)}, ShmTestDescriptor(), out[i].data(),
                                      sizes[i]));
      }
      sent[s] = WaitAll(requests, Soon());
    });
  }
  for (auto& s : senders) s.join();
  EXPECT_TRUE(sent[0].ok()) << sent[0];
  EXPECT_TRUE(sent[1].ok()) << sent[1];
  ASSERT_TRUE(WaitAll(recvs, Soon()).ok());
  for (size_t i = 0; i < sizes.size(); ++i) ASSERT_EQ(in[i], out[i]) << "message " << i;
}

TEST(ShmTransport, PeersOnOtherNodesAreRefusedWithInvalidArgument) {
  auto t = JoinShm(4, ShmOptions{}, {0, 2});
  ASSERT_EQ(t.size(), 4u);
  EXPECT_TRUE(t[0]->reaches(2));
  EXPECT_FALSE(t[0]->reaches(1));
  int value = 1;
  auto send = t[0]->Send(1, MessageTag{1, 0}, ShmTestDescriptor(), &value, sizeof(value));
  auto recv = t[0]->Recv(3, MessageTag{1, 0}, ShmTestDescriptor(), &value, sizeof(value));
  EXPECT_TRUE(absl::IsInvalidArgument(send->status())) << send->status();
  EXPECT_TRUE(absl::IsInvalidArgument(recv->status())) << recv->status();
  EXPECT_NE(send->status().message().find("another node"), std::string::npos) << send->status();
  EXPECT_TRUE(t[0]->status().ok()) << "a bad call does not fail the transport";
  // The two local ranks still talk.
  int in = 0;
  auto r = t[2]->Recv(0, MessageTag{2, 0}, ShmTestDescriptor(), &in, sizeof(in));
  ASSERT_TRUE(t[0]->Send(2, MessageTag{2, 0}, ShmTestDescriptor(), &value, sizeof(value))->Wait(Soon()).ok());
  ASSERT_TRUE(r->Wait(Soon()).ok());
  EXPECT_EQ(in, value);
}

// What a rank sent before it left is still delivered (it is in the ring), and
// the ones left behind are told clearly that it is gone.
TEST(ShmTransport, DataSentBeforeShutdownStillArrives) {
  auto t = JoinShm(2);
  ASSERT_EQ(t.size(), 2u);
  std::vector<char> out = Pattern(1 << 20, 5), in(1 << 20);
  ASSERT_TRUE(t[1]->Send(0, MessageTag{1, 0}, ShmTestDescriptor(), out.data(), out.size())->Wait(Soon()).ok());
  t[1].reset();
  absl::SleepFor(absl::Milliseconds(20));
  auto recv = t[0]->Recv(1, MessageTag{1, 0}, ShmTestDescriptor(), in.data(), in.size());
  ASSERT_TRUE(recv->Wait(Soon()).ok()) << recv->status();
  EXPECT_EQ(in, out);
  EXPECT_TRUE(t[0]->status().ok()) << "nothing was pending: an orderly goodbye is not an error";
  int value = 1;
  // Wait until rank 0 has seen the goodbye (it arrived with the data or just after).
  RequestPtr send;
  for (int i = 0; i < 200; ++i) {
    send = t[0]->Send(1, MessageTag{2, 0}, ShmTestDescriptor(), &value, sizeof(value));
    if (send->done() && !send->status().ok()) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(KindOf(send->status()), ErrorKind::kPeerLost) << send->status();
  auto never = t[0]->Recv(1, MessageTag{3, 0}, ShmTestDescriptor(), &value, sizeof(value));
  EXPECT_EQ(KindOf(never->Wait(Soon())), ErrorKind::kPeerLost) << never->status();
  EXPECT_NE(never->status().message().find("shut down"), std::string::npos) << never->status();
}

// Strangers that knock on a rank's socket while the node's ranks join are
// refused (a wrong token, silence) without stopping the real ranks joining.
TEST(ShmTransport, StrangersAreRefusedDuringSetUp) {
  const uint64_t job = FreshJobId();
  ShmOptions options;
  options.handshake_timeout = absl::Milliseconds(500);
  const std::vector<int> local = {0, 1};
  absl::StatusOr<std::unique_ptr<ShmTransport>> t0 = absl::UnknownError("not run");
  std::thread rank0([&] {
    t0 = ShmTransport::Create(0, 2, local, job, "the-real-token", options, absl::Now() + absl::Seconds(20));
  });
  // Rank 0 waits for rank 1, which has not started: the strangers come first.
  auto silent = ConnectLocal(SocketName(job, 0), absl::Now() + absl::Seconds(10));
  auto wrong = ConnectLocal(SocketName(job, 0), absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(silent.ok()) << silent.status();
  ASSERT_TRUE(wrong.ok()) << wrong.status();
  HandshakeParams guess{job, "a-guessed-token", 1, 2, 1, 0};
  absl::Status refused = ClientHandshake(wrong->get(), guess, 0, 0, absl::Now() + absl::Seconds(10));
  EXPECT_TRUE(absl::IsPermissionDenied(refused)) << refused;
  auto t1 = ShmTransport::Create(1, 2, local, job, "the-real-token", options, absl::Now() + absl::Seconds(20));
  rank0.join();
  ASSERT_TRUE(t0.ok()) << t0.status();
  ASSERT_TRUE(t1.ok()) << t1.status();
  EXPECT_EQ((*t0)->rejected_connections(), 2) << "the wrong token and the silent one";
  int out = 42, in = 0;
  auto recv = (*t0)->Recv(1, MessageTag{1, 0}, ShmTestDescriptor(), &in, sizeof(in));
  ASSERT_TRUE((*t1)->Send(0, MessageTag{1, 0}, ShmTestDescriptor(), &out, sizeof(out))->Wait(Soon()).ok());
  ASSERT_TRUE(recv->Wait(Soon()).ok());
  EXPECT_EQ(in, 42);
}

TEST(ShmTransport, SetUpFailsClearlyWhenALocalRankNeverComes) {
  auto t = ShmTransport::Create(1, 2, {0, 1}, FreshJobId(), "token", ShmOptions{},
                                absl::Now() + absl::Milliseconds(300));
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(absl::IsDeadlineExceeded(t.status())) << t.status();
  EXPECT_NE(t.status().message().find("rank 0"), std::string::npos) << t.status();
}

// Segments are memfds: nothing in /dev/shm, and nothing left mapped or open
// in the process once the transports are gone.
TEST(ShmTransport, NoSegmentOutlivesTheTransports) {
  {
    auto t = JoinShm(3);
    ASSERT_EQ(t.size(), 3u);
    // Three pairs, each mapped once by each of its two ranks, all in this process.
    EXPECT_EQ(SilkSegmentsInThisProcess(), 6) << "the check below would prove nothing";
  }
  EXPECT_EQ(SilkSegmentsInThisProcess(), 0);
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", error)) {
    EXPECT_EQ(entry.path().filename().string().find("silk"), std::string::npos) << entry.path();
  }
}

}  // namespace
}  // namespace silk::transport::shm
