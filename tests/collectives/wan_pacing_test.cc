// The region-aware all-reduce's pace from what is measured (issue 23), on
// in-process ranks that claim two regions, over real loopback TCP with the
// start-up probe on and no cluster spec.
#include <algorithm>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "collectives/collectives.h"
#include "gtest/gtest.h"
#include "runtime/communicator.h"
#include "runtime/core/status_macros.h"
#include "tests/support/ranks.h"

namespace silk {
namespace {

// Without a cluster spec nothing declares the WAN's rate: an all-reduce larger
// than the link holds in flight measures it for the next ones' pace (the
// rank's own estimate, runtime/rate_estimator.h), a small one does not.
TEST(HierarchicalPacing, ALargeAllreduceMeasuresTheWanWithoutASpec) {
  auto comms = testing::CreateCommunicators(4, [](int rank) {
    Config c = testing::TestConfig();
    c.region = rank < 2 ? "a" : "b";
    c.node = absl::StrFormat("n%d", rank);  // a node per rank: partners talk TCP
    c.probe_tiers = true;
    c.probe_bytes = 64 << 10;
    return c;
  });
  ASSERT_TRUE(comms.ok()) << comms.status();
  // Calls above what the path holds in flight (its probed rate times its round
  // trip; the same table on every rank) measure it. On a loaded machine the
  // probe may read loopback as a long path: the large call grows to match.
  const TierCost wan = (*comms)[0]->tiers().SlowestWan();
  const double in_flight = wan.bytes_per_s * wan.rtt_s;
  ASSERT_GT(in_flight, 64) << (*comms)[0]->tiers().ToString();
  const size_t large = std::max<size_t>(4 << 20, static_cast<size_t>(2 * in_flight / sizeof(float)));  // floats
  if (large > (size_t{16} << 20)) GTEST_SKIP() << "the probe read loopback as " << (*comms)[0]->tiers().ToString();
  std::vector<double> after_small(4), after_large(4), lower_bound(4);
  auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
    const int r = comm.rank();
    if (!comm.tiers().measured || comm.tiers().SlowestWan().rate_declared()) {
      return absl::InternalError("expected measured tiers and no declared rate: " + comm.tiers().ToString());
    }
    std::vector<float> data(large, 1.0f);
    AllreduceOptions options;
    options.input = options.output = data.data();
    options.count = 16;
    options.algorithm = "hierarchical";
    SILK_RETURN_IF_ERROR(Allreduce(comm, options));
    after_small[r] = comm.wan_rate()->Estimate();
    std::fill(data.begin(), data.end(), 1.0f);
    options.count = large;
    const absl::Time start = absl::Now();
    SILK_RETURN_IF_ERROR(Allreduce(comm, options));
    // The exchange is part of the call, so it went at least as fast as the whole call.
    lower_bound[r] = large * sizeof(float) / absl::ToDoubleSeconds(absl::Now() - start);
    after_large[r] = comm.wan_rate()->Estimate();
    if (data[0] != 4.0f || data[large - 1] != 4.0f) return absl::InternalError("wrong sum");
    return absl::OkStatus();
  });
  for (int r = 0; r < 4; ++r) {
    ASSERT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
    EXPECT_EQ(after_small[r], 0) << "rank " << r << ": a 64-byte call measured the WAN";
    EXPECT_GE(after_large[r], lower_bound[r]) << "rank " << r << ", " << (*comms)[0]->tiers().ToString();
  }
}

}  // namespace
}  // namespace silk
