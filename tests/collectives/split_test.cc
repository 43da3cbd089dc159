// Split (collectives/split.h): membership and order, regions kept, split
// groups running collectives and send/recv beside their parent and each
// other, nested splits, no color, and a failure shared with the parent; on
// in-process ranks over TCP and shared memory.
#include <memory>
#include <vector>

#include "absl/strings/str_format.h"
#include "collectives/collectives.h"
#include "collectives/point_to_point.h"
#include "collectives/split.h"
#include "gtest/gtest.h"
#include "runtime/core/error.h"
#include "tests/support/ranks.h"

namespace silk {
namespace {

constexpr int kRanks = 5;

absl::Status Sum(Communicator& comm, float* value) {
  AllreduceOptions o;
  o.input = o.output = value;
  o.count = 1;
  return Allreduce(comm, o);
}

class SplitTest : public ::testing::TestWithParam<bool> {};
INSTANTIATE_TEST_SUITE_P(Transports, SplitTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "shm" : "tcp"; });

// Two regions (ranks 0-2 and 3-4); colors split them across: even and odd
// ranks, ordered by descending rank; rank 4 takes no part.
TEST_P(SplitTest, MembersOrderRegionsAndTrafficBesideTheParent) {
  auto comms = testing::CreateCommunicators(kRanks, [this](int rank) {
    Config config = testing::TestConfig(2, absl::Seconds(20));
    config.shm = GetParam();
    config.region = rank < 3 ? "xinjiang" : "chongqing";
    return config;
  });
  ASSERT_TRUE(comms.ok()) << comms.status();
  auto results = testing::RunOnRanks(*comms, [](Communicator& comm) -> absl::Status {
    const int me = comm.rank();
    const int color = me == 4 ? kSplitNoColor : me % 2;
    absl::StatusOr<std::unique_ptr<Communicator>> half = Split(comm, color, -me);
    if (!half.ok()) return half.status();
    if (me == 4) {  // no part in a half, but in the parent's all-reduce below
      if (*half != nullptr) return absl::InternalError("no color, yet a communicator");
      float whole = 4;
      if (absl::Status s = Sum(comm, &whole); !s.ok()) return s;
      return whole == 10.0f ? absl::OkStatus() : absl::InternalError("wrong parent sum");
    }
    // Even: 2, 0 (descending). Odd: 3, 1.
    const std::vector<int> expected = me % 2 == 0 ? std::vector<int>{2, 0} : std::vector<int>{3, 1};
    Communicator& h = **half;
    if (h.size() != 2 || expected[h.rank()] != me) {
      return absl::InternalError(absl::StrFormat("rank %d is %d of %d in its half", me, h.rank(), h.size()));
    }
    const int regions = me % 2 == 0 ? 1 : 2;  // {2, 0}: xinjiang only; {3, 1}: both
    if (h.num_regions() != regions || h.region() != comm.region()) {
      return absl::InternalError(absl::StrFormat("rank %d: %d regions in its half", me, h.num_regions()));
    }
    // The half's all-reduce, async, beside the parent's (rank 4 joins that one only: below).
    float part = static_cast<float>(me), whole = static_cast<float>(me);
    AllreduceOptions o;
    o.input = o.output = &part;
    o.count = 1;
    auto w = AllreduceAsync(h, o);
    if (!w.ok()) return w.status();
    if (absl::Status s = Sum(comm, &whole); !s.ok()) return s;
    if (absl::Status s = (*w)->Wait(); !s.ok()) return s;
    if (part != (me % 2 == 0 ? 2.0f : 4.0f) || whole != 10.0f) return absl::InternalError("wrong sums");
    // Send/recv inside the half (its ranks), and a nested split of one rank each.
    int32_t out = 100 + me, in = 0;
    PointToPointBatch batch;
    batch.sends = {{&out, 1, DataType::kInt32, 1 - h.rank(), 0}};
    batch.recvs = {{&in, 1, DataType::kInt32, 1 - h.rank(), 0}};
    auto b = SendRecvAsync(h, batch);
    if (!b.ok()) return b.status();
    if (absl::Status s = (*b)->Wait(); !s.ok()) return s;
    if (in != 100 + expected[1 - h.rank()]) return absl::InternalError("wrong message in the half");
    // Stats: the odd half's peer is in the other region, the even half's in this one (same node here).
    const CommStats stats = h.Stats();
    const CommStats::Tier& used = me % 2 == 1 ? stats.wan : stats.node;
    const CommStats::Tier& unused = me % 2 == 1 ? stats.node : stats.wan;
    if (used.bytes_sent < 4 || used.bytes_received < 4 || unused.bytes_sent != 0 || stats.collectives < 1 ||
        stats.point_to_point != 1) {
      return absl::InternalError(absl::StrFormat("rank %d: stats %d/%d bytes on the used tier, %d on the other, "
                                                 "%d collectives, %d point-to-point", me, used.bytes_sent,
                                                 used.bytes_received, unused.bytes_sent, stats.collectives,
                                                 stats.point_to_point));
    }
    auto single = Split(h, h.rank(), 0);
    if (!single.ok()) return single.status();
    float one = 7;
    if (absl::Status s = Sum(**single, &one); !s.ok() || one != 7) return absl::InternalError("nested split");
    return absl::OkStatus();
  });
  for (int r = 0; r < kRanks; ++r) EXPECT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
}

TEST_P(SplitTest, SplitsShareTheParentsFate) {
  Config config = testing::TestConfig(2, absl::Seconds(20));
  config.shm = GetParam();
  auto comms = testing::CreateCommunicators(3, config);
  ASSERT_TRUE(comms.ok()) << comms.status();
  auto results = testing::RunOnRanks(*comms, [](Communicator& comm) -> absl::Status {
    auto all = Split(comm, 0, comm.rank());
    float x = 1;
    if (!all.ok()) {
      // A faster rank may have failed the shared connections with the mismatch
      // below while this rank's Split was still exchanging: the same fate.
      if (KindOf(all.status()) != ErrorKind::kMismatch) return all.status();
      return Sum(comm, &x).ok() ? absl::InternalError("the parent is still healthy") : absl::OkStatus();
    }
    // Mismatched counts in the split communicator: it fails, and so does the parent.
    std::vector<float> v(4, 1);
    AllreduceOptions o;
    o.input = o.output = v.data();
    o.count = comm.rank() == 1 ? 3 : 4;
    absl::Status split = Allreduce(**all, o);
    if (split.ok()) return absl::InternalError("mismatched split all-reduce succeeded");
    absl::Status parent = Sum(comm, &x);
    return parent.ok() ? absl::InternalError("the parent is still healthy") : absl::OkStatus();
  });
  for (int r = 0; r < 3; ++r) EXPECT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
}

}  // namespace
}  // namespace silk
