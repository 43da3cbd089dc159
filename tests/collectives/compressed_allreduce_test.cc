// The compressed hierarchical all-reduce (AllreduceOptions::wan_compression)
// on in-process ranks in different regions over loopback TCP: bit-identical
// results on every rank for every setting and layout (2 and 3 regions, unequal
// regions, two-stage regions), the error against a float64 reference, the
// bytes that cross regions, error feedback's telescoping sum, and the calls
// that must fail cleanly.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <ostream>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "collectives/algorithms/hierarchical.h"
#include "collectives/algorithms/wan_codec.h"
#include "collectives/collectives.h"
#include "gtest/gtest.h"
#include "runtime/core/status_macros.h"
#include "runtime/topology.h"
#include "tests/support/ranks.h"

namespace silk {
namespace {

struct Layout {
  std::vector<int> region_sizes;  // ranks per region, in rank order
  int per_node = 0;               // ranks per node inside each region; 0: one node for all
  std::string Name() const {
    return absl::StrJoin(region_sizes, "_") + (per_node > 0 ? absl::StrFormat("_nodes_of_%d", per_node) : "");
  }
};
void PrintTo(const Layout& layout, std::ostream* os) { *os << layout.Name(); }

std::vector<int> RegionOfRank(const Layout& layout) {
  std::vector<int> regions;
  for (size_t r = 0; r < layout.region_sizes.size(); ++r) regions.insert(regions.end(), layout.region_sizes[r], r);
  return regions;
}

absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> RegionCommunicators(const Layout& layout) {
  const std::vector<int> region = RegionOfRank(layout);
  return testing::CreateCommunicators(static_cast<int>(region.size()), [&](int rank) {
    Config c = testing::TestConfig();
    c.region = absl::StrFormat("region%d", region[rank]);
    if (layout.per_node > 0) {
      const int index = static_cast<int>(std::count(region.begin(), region.begin() + rank, region[rank]));
      c.node = absl::StrFormat("region%d-node%d", region[rank], index / layout.per_node);
    }
    return c;
  });
}

// Smooth values of mixed sign, different on every rank and step.
float Value(int rank, size_t i, int step = 0) {
  return std::sin(0.01f * static_cast<float>(i) + 0.7f * rank + 1.3f * step) * (1.0f + 0.1f * rank);
}

// The algorithm itself with small pipeline chunks, so that blocks, chunks and
// quantiser groups fall across each other.
absl::Status RunCompressed(Communicator& comm, const float* input, float* output, size_t count, ReduceOp op,
                           Compression compression, ErrorFeedback* feedback) {
  Topology topology = Topology::FromPlacements(comm.placements());
  OpDescriptor d;
  d.kind = CollectiveKind::kAllreduce;
  d.op = op;
  d.count = count;
  auto workspace = std::make_shared<algorithms::Workspace>();
  return comm
      .Submit(d, absl::ZeroDuration(),
              [&, workspace](OpContext& ctx) {
                algorithms::HierarchicalPlan plan;
                plan.pipeline_chunk_bytes = 40 << 10;
                plan.pipeline_depth = 4;
                plan.ring_chunk_bytes = 8 << 10;
                plan.wan_compression = compression;
                plan.error_feedback = feedback;
                return algorithms::HierarchicalAllreduce(ctx, *workspace, topology, input, output, count,
                                                         DataType::kFloat32, op, plan);
              })
      ->Wait();
}

// The largest error the codes allow on element i: each region's partial sum
// is quantised once, to within half a step of its group (or bf16's rounding),
// plus float32 rounding of the sums.
double Allowance(Compression c, const std::vector<int>& region, size_t count, size_t i, int regions) {
  double allowed = 0;
  for (int g = 0; g < regions; ++g) {
    double absmax = 0;  // over the whole buffer: groups lie anywhere
    for (size_t j = 0; j < count; ++j) {
      double p = 0;
      for (size_t r = 0; r < region.size(); ++r) p += region[r] == g ? Value(static_cast<int>(r), j) : 0.0;
      absmax = std::max(absmax, std::fabs(p));
      if (j > 4096) break;  // Value's period is covered
    }
    if (c == Compression::kBf16) allowed += absmax * std::exp2(-8.0);
    if (c == Compression::kInt8) allowed += absmax / 127 / 2;
    if (c == Compression::kInt4) allowed += absmax / 7 / 2;
    if (c == Compression::kTopK) allowed += absmax * (1 + 1.0 / 127 / 2);  // a dropped value is lost whole
  }
  (void)i;
  return allowed * 1.001 + 1e-5;
}

struct Case {
  Layout layout;
  Compression compression;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.layout.Name() << "_" << CompressionName(c.compression); }

class CompressedAllreduce : public ::testing::TestWithParam<Case> {};

TEST_P(CompressedAllreduce, BitIdenticalOnEveryRankAndWithinTheCodesError) {
  const Layout layout = GetParam().layout;
  const Compression compression = GetParam().compression;
  const std::vector<int> region = RegionOfRank(layout);
  const int n = static_cast<int>(region.size()), regions = static_cast<int>(layout.region_sizes.size());
  auto comms = RegionCommunicators(layout);
  ASSERT_TRUE(comms.ok()) << comms.status();
  for (size_t count : {size_t{0}, size_t{1}, size_t{257}, size_t{100003}}) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg}) {
      for (bool in_place : {true, false}) {
        std::vector<std::vector<float>> out(n);
        auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) {
          const int r = comm.rank();
          std::vector<float> input(count);
          for (size_t i = 0; i < count; ++i) input[i] = Value(r, i);
          out[r].assign(count, std::nanf(""));
          if (in_place) out[r] = input;
          return RunCompressed(comm, in_place ? out[r].data() : input.data(), out[r].data(), count, op, compression,
                               nullptr);
        });
        const std::string what = absl::StrFormat("count %d op %s %s", count, ReduceOpName(op),
                                                 in_place ? "in place" : "out of place");
        for (int r = 0; r < n; ++r) ASSERT_TRUE(results[r].ok()) << "rank " << r << " " << what << ": " << results[r];
        for (int r = 1; r < n && count > 0; ++r) {
          ASSERT_EQ(std::memcmp(out[r].data(), out[0].data(), count * sizeof(float)), 0)
              << "rank " << r << " (region " << region[r] << ") differs from rank 0, " << what;
        }
        const double allowed = count > 0 ? Allowance(compression, region, count, 0, regions) : 0;
        for (size_t i = 0; i < count; ++i) {
          double exact = 0;
          for (int r = 0; r < n; ++r) exact += Value(r, i);
          if (op == ReduceOp::kAvg) exact /= n;
          ASSERT_NEAR(out[0][i], exact, op == ReduceOp::kAvg ? allowed / n + 1e-6 : allowed)
              << "element " << i << ", " << what;
        }
      }
    }
  }
}

// Over T calls with the same error feedback, the sum of the results misses
// the exact sum by no more than one call's quantisation error; without it,
// the same inputs every step make the miss grow with T.
TEST_P(CompressedAllreduce, ErrorFeedbackTelescopes) {
  const Layout layout = GetParam().layout;
  const Compression compression = GetParam().compression;
  if (compression == Compression::kTopK) {
    GTEST_SKIP() << "topk's carried error is not one call's (a dropped value waits its turn); quantizer_test "
                    "checks its telescoping sum and the carried error's bound";
  }
  const std::vector<int> region = RegionOfRank(layout);
  const int n = static_cast<int>(region.size()), regions = static_cast<int>(layout.region_sizes.size());
  auto comms = RegionCommunicators(layout);
  ASSERT_TRUE(comms.ok()) << comms.status();
  const size_t count = 30011;
  const int steps = 12;
  std::vector<std::vector<double>> with(n, std::vector<double>(count)), without(n, std::vector<double>(count));
  auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
    const int r = comm.rank();
    ErrorFeedback feedback;
    for (int t = 0; t < steps; ++t) {
      for (bool use : {true, false}) {
        std::vector<float> data(count);
        for (size_t i = 0; i < count; ++i) data[i] = Value(r, i);  // the same every step
        SILK_RETURN_IF_ERROR(RunCompressed(comm, data.data(), data.data(), count, ReduceOp::kSum, compression,
                                           use ? &feedback : nullptr));
        for (size_t i = 0; i < count; ++i) (use ? with : without)[r][i] += data[i];
      }
    }
    if (feedback.residual().empty()) return absl::InternalError("no error was carried");
    return absl::OkStatus();
  });
  for (int r = 0; r < n; ++r) ASSERT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
  // The carried error (at most half a step) joins the next values, so their
  // groups' steps may be larger by 1 / (2 qmax): int4's 7 gives the most.
  const double one_step = Allowance(compression, region, count, 0, regions) * (1 + 1.0 / 14);
  double worst_with = 0, worst_without = 0;
  for (size_t i = 0; i < count; ++i) {
    double exact = 0;
    for (int r = 0; r < n; ++r) exact += Value(r, i);
    exact *= steps;
    worst_with = std::max(worst_with, std::fabs(with[0][i] - exact));
    worst_without = std::max(worst_without, std::fabs(without[0][i] - exact));
    for (int r = 1; r < n; ++r) ASSERT_EQ(with[r][i], with[0][i]) << "rank " << r << " element " << i;
  }
  EXPECT_LE(worst_with, one_step + 1e-5 * steps * n) << "without feedback: " << worst_without;
  EXPECT_GT(worst_without, 2 * worst_with) << "the inputs should make the plain error accumulate";
}

// Two regions of equal size: each direction carries the code of the buffer
// once, S * bits / 32 plus a scale per group of each block.
TEST_P(CompressedAllreduce, EachDirectionCarriesTheCodeOnce) {
  const Layout layout = GetParam().layout;
  const Compression compression = GetParam().compression;
  if (layout.region_sizes.size() != 2) GTEST_SKIP() << "two regions";
  const std::vector<int> region = RegionOfRank(layout);
  const int n = static_cast<int>(region.size());
  auto comms = RegionCommunicators(layout);
  ASSERT_TRUE(comms.ok()) << comms.status();
  const size_t count = 1 << 18;
  auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) {
    std::vector<float> data(count, 1.0f);
    return RunCompressed(comm, data.data(), data.data(), count, ReduceOp::kSum, compression, nullptr);
  });
  for (int r = 0; r < n; ++r) ASSERT_TRUE(results[r].ok()) << results[r];
  uint64_t crossing[2] = {0, 0};
  for (int r = 0; r < n; ++r) {
    for (int p = 0; p < n; ++p) {
      if (region[p] != region[r]) crossing[region[r]] += (*comms)[r]->transport().counters(p).bytes_sent;
    }
  }
  const BlockQuantizer q(compression, algorithms::kWanCompressionGroup);
  const double ideal = count * q.BitsPerValue() / 8;
  for (int dir = 0; dir < 2; ++dir) {
    EXPECT_GE(crossing[dir], static_cast<uint64_t>(count * (q.BitsPerValue() - 32.0 / q.group()) / 8));
    // Short last groups of each block and chunk, and whole groups sent to each
    // overlapping rank (a short group still holds its scale and one kept value
    // in topk, a larger share of its small code).
    EXPECT_LE(crossing[dir], ideal * (compression == Compression::kTopK ? 1.1 : 1.06)) << "direction " << dir;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, CompressedAllreduce,
    ::testing::ValuesIn([] {
      std::vector<Case> cases;
      for (const Layout& l : {Layout{{2, 2}}, Layout{{1, 1}}, Layout{{3, 1}}, Layout{{2, 3}}, Layout{{2, 1, 2}},
                              Layout{{4, 4}, 2}, Layout{{4, 3}, 2}}) {
        for (Compression c : {Compression::kBf16, Compression::kInt8, Compression::kInt4, Compression::kTopK}) {
          cases.push_back({l, c});
        }
      }
      return cases;
    }()),
    [](const auto& info) {
      return "regions_" + info.param.layout.Name() + "_" + CompressionName(info.param.compression);
    });

// Through the public call: arguments that cannot be compressed fail before
// anything is sent and leave the communicator healthy; a rank that compresses
// while another does not fails every rank, never hangs or corrupts; inside one
// region the call is exact.
TEST(CompressedAllreduceCalls, BadArgumentsMismatchAndOneRegion) {
  auto comms = RegionCommunicators(Layout{{2, 2}});
  ASSERT_TRUE(comms.ok()) << comms.status();
  const size_t count = 1000;
  auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
    std::vector<double> d(count, 1.0);
    std::vector<float> f(count, 1.0f);
    ErrorFeedback feedback;
    AllreduceOptions o;
    o.input = o.output = f.data();
    o.count = count;
    o.wan_compression = Compression::kInt8;
    o.error_feedback = &feedback;
    auto expect_invalid = [&](AllreduceOptions bad, const char* what) -> absl::Status {
      absl::Status s = Allreduce(comm, bad);
      if (!absl::IsInvalidArgument(s)) return absl::InternalError(absl::StrFormat("%s gave: %s", what, s.ToString()));
      return absl::OkStatus();
    };
    AllreduceOptions bad = o;
    bad.type = DataType::kFloat64;
    bad.input = bad.output = d.data();
    SILK_RETURN_IF_ERROR(expect_invalid(bad, "float64"));
    bad = o;
    bad.op = ReduceOp::kMax;
    SILK_RETURN_IF_ERROR(expect_invalid(bad, "max"));
    bad = o;
    bad.algorithm = "ring";
    SILK_RETURN_IF_ERROR(expect_invalid(bad, "ring"));
    bad = o;
    bad.wan_compression = Compression::kNone;
    SILK_RETURN_IF_ERROR(expect_invalid(bad, "feedback without compression"));
    SILK_RETURN_IF_ERROR(Allreduce(comm, o));  // binds the feedback
    bad = o;
    bad.count = count - 1;
    SILK_RETURN_IF_ERROR(expect_invalid(bad, "feedback bound to another count"));
    // Still healthy: one more good call, and its result.
    std::fill(f.begin(), f.end(), 1.0f);
    SILK_RETURN_IF_ERROR(Allreduce(comm, o));
    for (float v : f) {
      if (v != 4.0f) return absl::InternalError(absl::StrFormat("sum of ones is %g", v));
    }
    return absl::OkStatus();
  });
  for (int r = 0; r < 4; ++r) ASSERT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];

  // Rank 0 compresses, the others do not: every rank fails, none hangs.
  results = testing::RunOnRanks(*comms, [&](Communicator& comm) {
    std::vector<float> f(count, 1.0f);
    AllreduceOptions o;
    o.input = o.output = f.data();
    o.count = count;
    o.wan_compression = comm.rank() == 0 ? Compression::kInt4 : Compression::kNone;
    return Allreduce(comm, o);
  });
  for (int r = 0; r < 4; ++r) EXPECT_FALSE(results[r].ok()) << "rank " << r << " did not notice the mismatch";
}

TEST(CompressedAllreduceCalls, OneRegionIsExact) {
  auto comms = RegionCommunicators(Layout{{3}});
  ASSERT_TRUE(comms.ok()) << comms.status();
  const size_t count = 5000;
  std::vector<std::vector<float>> plain(3), compressed(3);
  auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
    const int r = comm.rank();
    for (auto* v : {&plain[r], &compressed[r]}) {
      v->resize(count);
      for (size_t i = 0; i < count; ++i) (*v)[i] = Value(r, i);
    }
    AllreduceOptions o;
    o.input = o.output = plain[r].data();
    o.count = count;
    SILK_RETURN_IF_ERROR(Allreduce(comm, o));
    o.input = o.output = compressed[r].data();
    o.wan_compression = Compression::kInt4;
    return Allreduce(comm, o);
  });
  for (int r = 0; r < 3; ++r) {
    ASSERT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
    EXPECT_EQ(plain[r], compressed[r]) << "rank " << r;
  }
}

}  // namespace
}  // namespace silk
