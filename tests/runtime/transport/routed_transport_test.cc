// A job of three ranks: 0 and 1 share a node (shared memory), 2 is on another
// (TCP reaches everyone). Traffic takes the right path, counters add up, and
// a failure on either path reaches the ranks on the other.
#include "runtime/transport/routed_transport.h"

#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "tests/runtime/transport/shm_fixture.h"
#include "tests/runtime/transport/transport_fixture.h"

namespace silk::transport {
namespace {

absl::Time Soon() { return absl::Now() + absl::Seconds(30); }

struct Job {
  std::vector<std::unique_ptr<RoutedTransport>> ranks;
  std::vector<tcp::TcpTransport*> tcp;  // owned by `ranks`
  std::vector<shm::ShmTransport*> shm;  // null for rank 2
};

Job MakeJob() {
  Job job;
  auto tcps = tcp::ConnectTransports(3, tcp::TcpOptions{});
  auto shms = shm::JoinShm(3, shm::ShmOptions{}, {0, 1});
  if (tcps.size() != 3 || shms.size() != 3) return job;
  for (int r = 0; r < 3; ++r) {
    job.tcp.push_back(tcps[r].get());
    job.shm.push_back(shms[r].get());
    std::vector<std::unique_ptr<Transport>> parts;
    parts.push_back(std::move(tcps[r]));
    std::vector<int> routes = {0, 0, 0};
    if (shms[r]) {
      parts.push_back(std::move(shms[r]));
      routes = {1, 1, 0};
    }
    auto routed = RoutedTransport::Create(std::move(parts), routes);
    EXPECT_TRUE(routed.ok()) << routed.status();
    if (!routed.ok()) return Job{};
    job.ranks.push_back(std::move(*routed));
  }
  return job;
}

void WaitUntilFailed(const Transport& t) {
  for (int i = 0; i < 500 && t.status().ok(); ++i) absl::SleepFor(absl::Milliseconds(10));
}

TEST(RoutedTransport, EachPeerTakesItsPathAndCountersAddUp) {
  Job job = MakeJob();
  ASSERT_EQ(job.ranks.size(), 3u);
  std::vector<char> out(1 << 20, 'a'), from0(1 << 20), from2(1 << 20), self(1 << 20);
  out[12345] = 'b';
  std::vector<RequestPtr> requests = {
      job.ranks[1]->Recv(0, MessageTag{1, 0}, OpDescriptor{}, from0.data(), from0.size()),
      job.ranks[0]->Recv(2, MessageTag{1, 0}, OpDescriptor{}, from2.data(), from2.size()),
      job.ranks[0]->Recv(0, MessageTag{1, 1}, OpDescriptor{}, self.data(), self.size()),
      job.ranks[0]->Send(1, MessageTag{1, 0}, OpDescriptor{}, out.data(), out.size()),
      job.ranks[2]->Send(0, MessageTag{1, 0}, OpDescriptor{}, out.data(), out.size()),
      job.ranks[0]->Send(0, MessageTag{1, 1}, OpDescriptor{}, out.data(), out.size()),
  };
  ASSERT_TRUE(WaitAll(requests, Soon()).ok());
  EXPECT_EQ(from0, out);
  EXPECT_EQ(from2, out);
  EXPECT_EQ(self, out);
  EXPECT_EQ(job.shm[0]->counters(1).bytes_sent, out.size()) << "the local peer is reached by shared memory";
  EXPECT_EQ(job.tcp[0]->counters(1).bytes_sent, 0u) << "and not by TCP";
  EXPECT_EQ(job.tcp[2]->counters(0).bytes_sent, out.size()) << "the remote one by TCP";
  EXPECT_EQ(job.ranks[0]->counters(1).bytes_sent, out.size());
  EXPECT_EQ(job.ranks[0]->counters(2).bytes_received, out.size());
  EXPECT_TRUE(&job.ranks[0]->route(1) == job.shm[0]);
  EXPECT_TRUE(&job.ranks[0]->route(2) == job.tcp[0]);
}

// Rank 1's shared memory fails: rank 0 hears it on shared memory, and its
// receive from rank 2, pending on TCP, fails with the same reason; rank 2,
// which shares nothing with rank 1, hears it over TCP.
TEST(RoutedTransport, SharedMemoryFailureReachesTheOtherNode) {
  Job job = MakeJob();
  ASSERT_EQ(job.ranks.size(), 3u);
  char buffer[8];
  auto over_tcp = job.ranks[0]->Recv(2, MessageTag{5, 0}, OpDescriptor{}, buffer, sizeof(buffer));
  job.shm[1]->Abort(absl::InternalError("local trouble"));
  absl::Status pending = over_tcp->Wait(Soon());
  EXPECT_TRUE(absl::IsInternal(pending)) << pending;
  EXPECT_NE(pending.message().find("local trouble"), std::string::npos) << pending;
  for (int r : {0, 1, 2}) {
    WaitUntilFailed(*job.ranks[r]);
    EXPECT_NE(job.ranks[r]->status().message().find("local trouble"), std::string::npos)
        << "rank " << r << ": " << job.ranks[r]->status();
    // Both paths of a rank fail, with the same reason.
    WaitUntilFailed(*job.tcp[r]);
    EXPECT_NE(job.tcp[r]->status().message().find("local trouble"), std::string::npos) << job.tcp[r]->status();
  }
  WaitUntilFailed(*job.shm[0]);  // the spread reaches it as its other part fails (OnFailure)
  EXPECT_NE(job.shm[0]->status().message().find("local trouble"), std::string::npos) << job.shm[0]->status();
}

// Rank 2 aborts: TCP tells ranks 0 and 1, and their shared memory fails too,
// so a receive pending between the two local ranks ends with the reason.
TEST(RoutedTransport, TcpFailureReachesTheSharedMemoryPath) {
  Job job = MakeJob();
  ASSERT_EQ(job.ranks.size(), 3u);
  char buffer[8];
  auto over_shm = job.ranks[0]->Recv(1, MessageTag{5, 0}, OpDescriptor{}, buffer, sizeof(buffer));
  job.ranks[2]->Abort(absl::ResourceExhaustedError("remote trouble"));
  absl::Status pending = over_shm->Wait(Soon());
  EXPECT_TRUE(absl::IsResourceExhausted(pending)) << pending;
  EXPECT_NE(pending.message().find("remote trouble"), std::string::npos) << pending;
  for (int r : {0, 1}) {
    WaitUntilFailed(*job.shm[r]);
    EXPECT_NE(job.shm[r]->status().message().find("remote trouble"), std::string::npos) << job.shm[r]->status();
  }
  // Sticky: later calls on any path fail at once.
  auto later = job.ranks[1]->Send(0, MessageTag{6, 0}, OpDescriptor{}, buffer, sizeof(buffer));
  EXPECT_TRUE(later->done());
  EXPECT_FALSE(later->status().ok());
}

TEST(RoutedTransport, RejectsRoutesThatDoNotFit) {
  auto shms = shm::JoinShm(1);
  ASSERT_EQ(shms.size(), 1u);
  std::vector<std::unique_ptr<Transport>> parts;
  parts.push_back(std::move(shms[0]));
  EXPECT_FALSE(RoutedTransport::Create(std::move(parts), {1}).ok());
}

}  // namespace
}  // namespace silk::transport
