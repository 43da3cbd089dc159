// The region-aware all-reduce's pace from what is measured (issue 23), on
// in-process ranks that claim two regions, over real loopback TCP: a large
// call measures the WAN with the start-up probe on and no cluster spec, and
// one call measures as it runs and re-paces its lanes.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "collectives/algorithms/hierarchical.h"
#include "collectives/collectives.h"
#include "gtest/gtest.h"
#include "runtime/communicator.h"
#include "runtime/core/status_macros.h"
#include "runtime/rate_estimator.h"
#include "runtime/topology.h"
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

// One call feeds the estimator chunk by chunk (here a sample per delivery)
// and re-paces its partners' lanes as the pace moves (here, too, in and out
// of probe slots of 5 ms in every 10 above a declared rate): each re-pace
// holds a partner once, so the cap is lifted when the call ends, and the
// result is the unpaced one, bit for bit.
TEST(HierarchicalPacing, OneCallMeasuresAsItRunsAndRepacesItsLanes) {
  auto comms = testing::CreateCommunicators(4, [](int rank) {
    Config c = testing::TestConfig();
    c.region = rank < 2 ? "a" : "b";
    c.node = absl::StrFormat("n%d", rank);  // a node per rank: partners talk TCP
    return c;
  });
  ASSERT_TRUE(comms.ok()) << comms.status();
  constexpr size_t kCount = 300000, kChunkBytes = 64 << 10;
  constexpr double kDeclared = 400e6;
  RateEstimator::Options options;
  options.sample_interval = absl::Nanoseconds(1);
  options.probe_every = absl::Milliseconds(10);
  options.probe_for = absl::Milliseconds(5);
  std::vector<std::shared_ptr<RateEstimator>> estimators(4);
  std::vector<std::vector<float>> paced(4), plain(4);
  std::vector<std::vector<uint64_t>> after(4);
  auto run = [](Communicator& comm, float* data, std::shared_ptr<RateEstimator> rate) {
    Topology topology = Topology::FromPlacements(comm.placements());
    OpDescriptor d;
    d.kind = CollectiveKind::kAllreduce;
    d.type = DataType::kFloat32;
    d.op = ReduceOp::kSum;
    d.count = kCount;
    auto workspace = std::make_shared<algorithms::Workspace>();
    return comm
        .Submit(d, absl::ZeroDuration(),
                [&, workspace](OpContext& ctx) {
                  algorithms::HierarchicalPlan plan;
                  plan.pipeline_chunk_bytes = kChunkBytes;
                  plan.pipeline_depth = 4;
                  plan.ring_chunk_bytes = 16 << 10;
                  if (rate != nullptr) {
                    plan.wan_bytes_per_s = kDeclared;
                    plan.wan_rate = rate;
                    plan.wan_sample_bytes = kCount * sizeof(float);
                    plan.wan_declared_bytes_per_s = kDeclared;
                  }
                  return algorithms::HierarchicalAllreduce(ctx, *workspace, topology, data, data, kCount,
                                                           DataType::kFloat32, ReduceOp::kSum, plan);
                })
        ->Wait();
  };
  auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
    const int r = comm.rank();
    for (auto* out : {&paced[r], &plain[r]}) {
      out->resize(kCount);
      // Values whose float sum depends on the order of additions.
      for (size_t i = 0; i < kCount; ++i) (*out)[i] = std::ldexp(1.0f + 0.01f * ((i * 7 + r * 13) % 97), (i + r) % 30 - 15);
    }
    estimators[r] = std::make_shared<RateEstimator>(options);
    SILK_RETURN_IF_ERROR(run(comm, paced[r].data(), estimators[r]));
    after[r] = testing::LanePacingRates(comm, r ^ 2);  // the partner in the other region
    return run(comm, plain[r].data(), nullptr);
  });
  const size_t chunks = kCount * sizeof(float) / kChunkBytes;
  for (int r = 0; r < 4; ++r) {
    ASSERT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
    ASSERT_EQ(std::memcmp(paced[r].data(), plain[r].data(), kCount * sizeof(float)), 0) << "rank " << r;
    // A sample per delivery after the first (two arriving in the same instant make one), and the whole call's.
    EXPECT_GE(estimators[r]->samples(), 3) << "rank " << r << " of " << chunks << " chunks";
    ASSERT_FALSE(after[r].empty()) << "rank " << r << " reaches its partner over TCP";
    for (uint64_t rate : after[r]) EXPECT_EQ(rate, ~0ul) << "rank " << r << ": pacing not lifted";
  }
}

}  // namespace
}  // namespace silk
