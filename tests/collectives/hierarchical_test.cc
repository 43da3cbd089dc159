// The region-aware all-reduce on in-process ranks that claim different
// regions (SILK_REGION per rank), over real loopback TCP: values, bit-identical
// results across regions, and the bytes that cross region boundaries.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "collectives/algorithms/hierarchical.h"
#include "collectives/algorithms/hierarchical_layout.h"
#include "collectives/collectives.h"
#include "collectives/kernels/float16.h"
#include "gtest/gtest.h"
#include "runtime/core/status_macros.h"
#include "runtime/topology.h"
#include "runtime/transport/shm/segment.h"
#include "tests/support/ranks.h"

namespace silk {
namespace {

struct Layout {
  std::vector<int> region_sizes;  // ranks per region, regions laid out in rank order
  int per_node = 0;               // ranks per node inside each region (the last may hold fewer); 0: one node for all
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

// In-process ranks over loopback, rank r claiming region "region<region[r]>";
// chunk_bytes > 0 overrides the ring and pipeline chunk.
absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> RegionCommunicators(const Layout& layout,
                                                                                size_t chunk_bytes = 0) {
  const std::vector<int> region = RegionOfRank(layout);
  return testing::CreateCommunicators(static_cast<int>(region.size()), [&](int rank) {
    Config c = testing::TestConfig();
    c.region = absl::StrFormat("region%d", region[rank]);
    if (layout.per_node > 0) {
      const int index_in_region = static_cast<int>(std::count(region.begin(), region.begin() + rank, region[rank]));
      c.node = absl::StrFormat("region%d-node%d", region[rank], index_in_region / layout.per_node);
    }
    if (chunk_bytes > 0) c.chunk_bytes = chunk_bytes;
    return c;
  });
}

// Values whose float sum depends on the order of additions.
float Value(int rank, size_t i) {
  return static_cast<float>(std::ldexp(1.0 + 0.01 * ((i * 7 + rank * 13) % 97), static_cast<int>((i * 3 + rank) % 30) - 15));
}

// `node_slots`: as the public call plans it (HierarchicalPlan::node_slots);
// `note`, if set, gets what the operation's trace says it ran.
absl::Status RunHierarchical(Communicator& comm, void* buffer, size_t count, DataType type, ReduceOp op,
                             size_t pipeline_chunk_bytes, size_t pipeline_depth = 2, double wan_bytes_per_s = 0,
                             bool node_slots = true, std::string* note = nullptr) {
  Topology topology = Topology::FromPlacements(comm.placements());
  OpDescriptor d;
  d.kind = CollectiveKind::kAllreduce;
  d.type = type;
  d.op = op;
  d.count = count;
  auto workspace = std::make_shared<algorithms::Workspace>();
  return comm
      .Submit(d, absl::ZeroDuration(),
              [&, workspace](OpContext& ctx) {
                algorithms::HierarchicalPlan plan;
                plan.pipeline_chunk_bytes = pipeline_chunk_bytes;
                plan.pipeline_depth = pipeline_depth;
                plan.ring_chunk_bytes = 16 << 10;
                plan.wan_bytes_per_s = wan_bytes_per_s;
                plan.node_slots = node_slots;
                absl::Status status = algorithms::HierarchicalAllreduce(ctx, *workspace, topology, buffer, buffer,
                                                                        count, type, op, plan);
                if (note != nullptr) *note = ctx.note();
                return status;
              })
      ->Wait();
}

// A declared WAN rate paces each rank's cross-region partners for the
// operation (its share: B over the region's ranks), and the cap is lifted when
// it ends; the result is what the unpaced run gives, bit for bit.
TEST(HierarchicalPacing, PacesCrossRegionPartnersOnlyWhileTheOperationRuns) {
  const Layout layout{{2, 2}, 1};  // a node per rank: partners talk TCP
  auto comms = RegionCommunicators(layout);
  ASSERT_TRUE(comms.ok()) << comms.status();
  const size_t count = 300000;
  std::vector<std::vector<float>> paced(4), plain(4);
  std::vector<std::vector<uint64_t>> after(4);
  auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
    const int r = comm.rank();
    for (auto* out : {&paced[r], &plain[r]}) {
      out->resize(count);
      for (size_t i = 0; i < count; ++i) (*out)[i] = Value(r, i);
    }
    SILK_RETURN_IF_ERROR(RunHierarchical(comm, paced[r].data(), count, DataType::kFloat32, ReduceOp::kSum, 64 << 10,
                                         8, 400e6));
    after[r] = testing::LanePacingRates(comm, r ^ 2);  // the partner in the other region, after the operation
    return RunHierarchical(comm, plain[r].data(), count, DataType::kFloat32, ReduceOp::kSum, 64 << 10, 8);
  });
  for (int r = 0; r < 4; ++r) {
    ASSERT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
    ASSERT_EQ(std::memcmp(paced[r].data(), plain[r].data(), count * sizeof(float)), 0) << "rank " << r;
    ASSERT_FALSE(after[r].empty()) << "rank " << r << " reaches its partner over TCP";
    for (uint64_t rate : after[r]) EXPECT_EQ(rate, ~0ul) << "rank " << r << ": pacing not lifted";
  }
}

// SILK_NODE_SLOTS=1: the node phases take the slots whatever each rank
// passes as may_overlap (a per-rank promise: the torch backend derives it from
// what is in flight on that rank), and such calls never overlap, so ranks
// that disagree on it still meet in the slots, call after call. Two regions of
// two ranks on one node, async all-reduces of two sizes (the larger does not
// fit the slots and may overlap), each rank marking different calls.
TEST(HierarchicalNodeSlots, CallsMeetWhateverEachRankPassesAsMayOverlap) {
  constexpr int kRanks = 4, kCalls = 60;
  auto comms = testing::CreateCommunicators(kRanks, [](int rank) {
    Config c = testing::TestConfig(2, absl::Seconds(20));
    c.region = rank < 2 ? "east" : "west";
    c.node_slots = true;
    return c;
  });
  ASSERT_TRUE(comms.ok()) << comms.status();
  auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
    const int r = comm.rank();
    std::vector<std::vector<float>> buffers(kCalls);
    std::vector<WorkPtr> works;
    for (int i = 0; i < kCalls; ++i) {
      buffers[i].assign(i % 3 == 0 ? 300000 : 1000, static_cast<float>(r + i));
      AllreduceOptions o;
      o.input = o.output = buffers[i].data();
      o.count = buffers[i].size();
      o.may_overlap = (i + r) % 2 == 0;
      SILK_ASSIGN_OR_RETURN(WorkPtr work, AllreduceAsync(comm, o));
      works.push_back(std::move(work));
    }
    for (const WorkPtr& w : works) SILK_RETURN_IF_ERROR(w->Wait());
    for (int i = 0; i < kCalls; ++i) {
      const float expected = static_cast<float>(kRanks * i + kRanks * (kRanks - 1) / 2);
      for (float v : buffers[i]) {
        if (v != expected) return absl::InternalError(absl::StrFormat("call %d: %g, not %g", i, v, expected));
      }
    }
    return absl::OkStatus();
  });
  for (int r = 0; r < kRanks; ++r) EXPECT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
}

class Hierarchical : public ::testing::TestWithParam<Layout> {};

TEST_P(Hierarchical, Float32SumIsCorrectAndBitIdenticalAcrossRegions) {
  const Layout layout = GetParam();
  const std::vector<int> region = RegionOfRank(layout);
  const int n = static_cast<int>(region.size());
  auto comms = RegionCommunicators(layout);
  ASSERT_TRUE(comms.ok()) << comms.status();
  for (size_t count : {size_t{0}, size_t{1}, size_t(n - 1), size_t(n + 1), size_t{1000}, size_t{200003}}) {
    std::vector<std::vector<float>> out(n);
    auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) {
      std::vector<float>& data = out[comm.rank()];
      data.resize(count);
      for (size_t i = 0; i < count; ++i) data[i] = Value(comm.rank(), i);
      // Small pipeline chunks: many chunks in flight at once (up to 8 exchanges on the WAN, as the cost model plans).
      return RunHierarchical(comm, data.data(), count, DataType::kFloat32, ReduceOp::kSum, 64 << 10,
                             count < 1000 ? 2 : 8);
    });
    for (int r = 0; r < n; ++r) ASSERT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
    for (size_t i = 0; i < count; ++i) {
      double expected = 0;
      for (int r = 0; r < n; ++r) expected += Value(r, i);
      ASSERT_NEAR(out[0][i], expected, std::abs(expected) * 1e-5) << "element " << i;
    }
    for (int r = 1; r < n && count > 0; ++r) {
      ASSERT_EQ(std::memcmp(out[r].data(), out[0].data(), count * sizeof(float)), 0)
          << "rank " << r << " (region " << region[r] << ") differs from rank 0, count " << count;
    }
  }
}

// The node phase through the node's shared-memory slots (one step each way)
// where a region's ranks share a node, or in each node's stage of a two-stage
// region; the rings where the slots do not serve (uneven nodes, a rank alone,
// blocks larger than a slot). Either way the sums are right and every rank
// holds the same bits.
TEST_P(Hierarchical, NodePhaseThroughSharedMemorySlots) {
  const Layout layout = GetParam();
  const std::vector<int> region = RegionOfRank(layout);
  const int n = static_cast<int>(region.size());
  auto comms = RegionCommunicators(layout);
  ASSERT_TRUE(comms.ok()) << comms.status();
  const Topology topology = Topology::FromPlacements((*comms)[0]->placements());
  // Whether rank r's node phase can use the slots: two or more of its region's ranks on its node, and every
  // node of the region holding as many (two stages) or the region on one node.
  auto expects_slots = [&](int r) {
    const std::vector<int>& members = topology.region_members(topology.region_of(r));
    std::map<int, int> per_node;
    for (int m : members) per_node[topology.node_of(m)]++;
    bool even = true;
    for (const auto& [node, ranks] : per_node) even = even && ranks == per_node.begin()->second;
    return per_node[topology.node_of(r)] >= 2 && (per_node.size() == 1 || even);
  };
  struct Case {
    size_t count, chunk_bytes;
    bool fits;  // every block of a chunk fits a slot
  };
  for (const Case& c : {Case{1, 64 << 10, true}, Case{size_t(n + 1), 64 << 10, true}, Case{200003, 64 << 10, true},
                        Case{300001, 4 << 20, false}}) {
    SCOPED_TRACE(absl::StrFormat("count %d, chunks of %d bytes", c.count, c.chunk_bytes));
    std::vector<std::vector<float>> out(n), rings(n);
    std::vector<std::string> notes(n);
    auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
      const int r = comm.rank();
      for (auto* v : {&out[r], &rings[r]}) {
        v->resize(c.count);
        for (size_t i = 0; i < c.count; ++i) (*v)[i] = Value(r, i);
      }
      SILK_RETURN_IF_ERROR(RunHierarchical(comm, out[r].data(), c.count, DataType::kFloat32, ReduceOp::kSum,
                                           c.chunk_bytes, 2, 0, /*node_slots=*/true, &notes[r]));
      return RunHierarchical(comm, rings[r].data(), c.count, DataType::kFloat32, ReduceOp::kSum, c.chunk_bytes, 2, 0,
                             /*node_slots=*/false);
    });
    for (int r = 0; r < n; ++r) ASSERT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
    for (int r = 0; r < n; ++r) {
      const bool slots = c.fits && expects_slots(r);
      EXPECT_EQ(absl::StrContains(notes[r], "node-slots"), slots) << "rank " << r << " ran \"" << notes[r] << "\"";
      ASSERT_EQ(std::memcmp(out[r].data(), out[0].data(), c.count * sizeof(float)), 0) << "rank " << r;
      ASSERT_EQ(std::memcmp(rings[r].data(), rings[0].data(), c.count * sizeof(float)), 0) << "rank " << r;
    }
    for (size_t i = 0; i < c.count; ++i) {
      double expected = 0;
      for (int r = 0; r < n; ++r) expected += Value(r, i);
      ASSERT_NEAR(out[0][i], expected, std::abs(expected) * 1e-5) << "element " << i;
      ASSERT_NEAR(rings[0][i], expected, std::abs(expected) * 1e-5) << "element " << i;
    }
  }
}

TEST_P(Hierarchical, OtherTypesAndReductions) {
  const Layout layout = GetParam();
  const std::vector<int> region = RegionOfRank(layout);
  const int n = static_cast<int>(region.size());
  auto comms = RegionCommunicators(layout);
  ASSERT_TRUE(comms.ok()) << comms.status();
  const size_t count = 5003;
  // int32 max, int64 sum, and float avg.
  std::vector<std::vector<int32_t>> maxes(n);
  std::vector<std::vector<int64_t>> sums(n);
  std::vector<std::vector<double>> avgs(n);
  auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
    const int r = comm.rank();
    maxes[r].resize(count);
    sums[r].resize(count);
    avgs[r].resize(count);
    for (size_t i = 0; i < count; ++i) {
      maxes[r][i] = static_cast<int32_t>((i * 31 + r * 17) % 1000) - 500;
      sums[r][i] = static_cast<int64_t>(i) * (r + 1);
      avgs[r][i] = static_cast<double>(r) + 0.5 * i;
    }
    absl::Status s = RunHierarchical(comm, maxes[r].data(), count, DataType::kInt32, ReduceOp::kMax, 4 << 10);
    if (s.ok()) s = RunHierarchical(comm, sums[r].data(), count, DataType::kInt64, ReduceOp::kSum, 4 << 10);
    if (s.ok()) s = RunHierarchical(comm, avgs[r].data(), count, DataType::kFloat64, ReduceOp::kAvg, 4 << 10);
    return s;
  });
  for (int r = 0; r < n; ++r) ASSERT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
  for (size_t i = 0; i < count; ++i) {
    int32_t max = -1000;
    int64_t sum = 0;
    double avg = 0;
    for (int r = 0; r < n; ++r) {
      max = std::max<int32_t>(max, static_cast<int32_t>((i * 31 + r * 17) % 1000) - 500);
      sum += static_cast<int64_t>(i) * (r + 1);
      avg += static_cast<double>(r) + 0.5 * i;
    }
    avg /= n;
    for (int r = 0; r < n; ++r) {
      ASSERT_EQ(maxes[r][i], max) << "rank " << r << " element " << i;
      ASSERT_EQ(sums[r][i], sum) << "rank " << r << " element " << i;
      ASSERT_NEAR(avgs[r][i], avg, 1e-9 * std::max(1.0, std::abs(avg))) << "rank " << r << " element " << i;
    }
  }
}

TEST_P(Hierarchical, EachDirectionOfTheWanCarriesTheBufferOnce) {
  const Layout layout = GetParam();
  const std::vector<int> region = RegionOfRank(layout);
  const int n = static_cast<int>(region.size());
  if (layout.region_sizes.size() != 2) GTEST_SKIP() << "the one-S-per-direction promise is for two regions";
  auto comms = RegionCommunicators(layout);
  ASSERT_TRUE(comms.ok()) << comms.status();
  const size_t count = 1 << 18;
  auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) {
    std::vector<float> data(count, 1.0f);
    return RunHierarchical(comm, data.data(), count, DataType::kFloat32, ReduceOp::kSum, 128 << 10);
  });
  for (int r = 0; r < n; ++r) ASSERT_TRUE(results[r].ok()) << results[r];
  // Count, per direction, the payload bytes every rank sent across the boundary.
  uint64_t crossing[2] = {0, 0};
  for (int r = 0; r < n; ++r) {
    for (int p = 0; p < n; ++p) {
      if (region[p] != region[r]) crossing[region[r]] += (*comms)[r]->transport().counters(p).bytes_sent;
    }
  }
  const uint64_t s = count * sizeof(float);
  for (int dir = 0; dir < 2; ++dir) {
    EXPECT_EQ(crossing[dir], s) << "direction " << dir << " carried " << crossing[dir] << " bytes for S = " << s;
  }
}

// Inside a region whose nodes hold equal numbers of its ranks, the all-reduce
// reduces within each node, then across nodes: the node boundaries carry
// 2 (N - 1) S in all for N nodes, where one ring over the region would put
// 2 (m - 1) / m S on each of its N boundary links (3 S instead of 2 S for
// 2 nodes of 2 ranks). A region on one node sends nothing between nodes.
TEST_P(Hierarchical, RegionsOfEqualNodesCarryTwoNMinusOneSAcrossTheirNodes) {
  const Layout layout = GetParam();
  if (layout.per_node == 0) GTEST_SKIP() << "all ranks on one node";
  const std::vector<int> region = RegionOfRank(layout);
  const int n = static_cast<int>(region.size());
  auto comms = RegionCommunicators(layout);
  ASSERT_TRUE(comms.ok()) << comms.status();
  const size_t count = (1 << 18) + 5;  // blocks that do not divide evenly
  auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) {
    std::vector<float> data(count, 1.0f);
    return RunHierarchical(comm, data.data(), count, DataType::kFloat32, ReduceOp::kSum, 128 << 10);
  });
  for (int r = 0; r < n; ++r) ASSERT_TRUE(results[r].ok()) << results[r];
  const Topology topology = Topology::FromPlacements((*comms)[0]->placements());
  for (int g = 0; g < topology.num_regions(); ++g) {
    const std::vector<int>& members = topology.region_members(g);
    uint64_t across_nodes = 0;
    std::vector<int> nodes;
    for (int r : members) {
      if (std::find(nodes.begin(), nodes.end(), topology.node_of(r)) == nodes.end()) nodes.push_back(topology.node_of(r));
      for (int p : members) {
        if (topology.node_of(p) != topology.node_of(r)) across_nodes += (*comms)[r]->transport().counters(p).bytes_sent;
      }
    }
    const int size = static_cast<int>(members.size()), num_nodes = static_cast<int>(nodes.size());
    if (num_nodes > 1 && size % layout.per_node != 0) continue;  // uneven nodes: one ring, not checked here
    const uint64_t s = count * sizeof(float);
    EXPECT_EQ(across_nodes, 2 * static_cast<uint64_t>(num_nodes - 1) * s)
        << "region " << g << " (" << size << " ranks on " << num_nodes << " nodes) carried " << across_nodes
        << " bytes between its nodes for S = " << s;
  }
}

// Runs `body` as one operation on every rank; `note`, if set, gets what its trace says it ran.
absl::Status RunOp(Communicator& comm, CollectiveKind kind, uint64_t count,
                   const std::function<absl::Status(OpContext&, algorithms::Workspace&, const Topology&)>& body,
                   std::string* note = nullptr) {
  Topology topology = Topology::FromPlacements(comm.placements());
  OpDescriptor d;
  d.kind = kind;
  d.count = count;
  auto workspace = std::make_shared<algorithms::Workspace>();
  return comm
      .Submit(d, absl::ZeroDuration(),
              [&, workspace](OpContext& ctx) {
                absl::Status status = body(ctx, *workspace, topology);
                if (note != nullptr) *note = ctx.note();
                return status;
              })
      ->Wait();
}

algorithms::HierarchicalPlan SmallPlan(bool node_slots = false) {
  algorithms::HierarchicalPlan plan;
  plan.pipeline_chunk_bytes = 8 << 10;
  plan.ring_chunk_bytes = 4 << 10;
  plan.node_slots = node_slots;
  return plan;
}

// Whether rank r's region has two or more ranks, all on one node.
bool RegionOnOneNode(const Topology& topology, int r) {
  const std::vector<int>& members = topology.region_members(topology.region_of(r));
  return members.size() >= 2 && std::all_of(members.begin(), members.end(), [&](int m) {
           return topology.node_of(m) == topology.node_of(members.front());
         });
}

// With the node phases through the rings and (a region on one node) through
// the node's slots.
TEST_P(Hierarchical, AllgatherReduceScatterAndBroadcast) {
  const Layout layout = GetParam();
  const std::vector<int> region = RegionOfRank(layout);
  const int n = static_cast<int>(region.size());
  auto comms = RegionCommunicators(layout);
  ASSERT_TRUE(comms.ok()) << comms.status();
  const Topology topology = Topology::FromPlacements((*comms)[0]->placements());
  const bool equal_regions = std::all_of(layout.region_sizes.begin(), layout.region_sizes.end(),
                                         [&](int size) { return size == layout.region_sizes.front(); });
  for (const auto& [count, node_slots] : std::vector<std::pair<size_t, bool>>{
           {0, false}, {1, false}, {777, false}, {20000, false}, {1, true}, {777, true}, {20000, true}}) {
    std::vector<std::string> gather_notes(n), scatter_notes(n), broadcast_notes(n);
    auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
      const int me = comm.rank();
      // All-gather: block r holds r * 1000 + i.
      std::vector<int32_t> gathered(n * count, -1);
      for (size_t i = 0; i < count; ++i) gathered[me * count + i] = me * 1000 + static_cast<int32_t>(i);
      absl::Status s = RunOp(comm, CollectiveKind::kAllgather, count, [&](OpContext& ctx, auto& ws, const Topology& t) {
        return algorithms::HierarchicalAllgather(ctx, ws, t, gathered.data(), count, sizeof(int32_t),
                                                 SmallPlan(node_slots));
      }, &gather_notes[me]);
      if (!s.ok()) return s;
      for (int r = 0; r < n; ++r) {
        for (size_t i = 0; i < count; ++i) {
          if (gathered[r * count + i] != r * 1000 + static_cast<int32_t>(i)) {
            return absl::InternalError(absl::StrFormat("allgather: block %d element %d is %d", r, i, gathered[r * count + i]));
          }
        }
      }
      // Reduce-scatter (int64 sum): input block b element i = (me + 1) * (b + i).
      std::vector<int64_t> input(n * count), mine(count, -1);
      for (int b = 0; b < n; ++b) {
        for (size_t i = 0; i < count; ++i) input[b * count + i] = (me + 1) * static_cast<int64_t>(b + i);
      }
      s = RunOp(comm, CollectiveKind::kReduceScatter, count, [&](OpContext& ctx, auto& ws, const Topology& t) {
        return algorithms::HierarchicalReduceScatter(ctx, ws, t, input.data(), mine.data(), count, DataType::kInt64,
                                                     ReduceOp::kSum, SmallPlan(node_slots));
      }, &scatter_notes[me]);
      if (!s.ok()) return s;
      const int64_t ranks_sum = static_cast<int64_t>(n) * (n + 1) / 2;
      for (size_t i = 0; i < count; ++i) {
        if (mine[i] != ranks_sum * static_cast<int64_t>(me + i)) {
          return absl::InternalError(absl::StrFormat("reduce_scatter: element %d is %d", i, mine[i]));
        }
      }
      // Broadcast from the last rank (in the last region).
      const int root = n - 1;
      std::vector<uint8_t> data(count * 3, 0);
      if (me == root) {
        for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7 + 1);
      }
      s = RunOp(comm, CollectiveKind::kBroadcast, data.size(), [&](OpContext& ctx, auto&, const Topology& t) {
        return algorithms::HierarchicalBroadcast(ctx, t, data.data(), data.data(), data.size(), root,
                                                 SmallPlan(node_slots));
      }, &broadcast_notes[me]);
      if (!s.ok()) return s;
      for (size_t i = 0; i < data.size(); ++i) {
        if (data[i] != static_cast<uint8_t>(i * 7 + 1)) return absl::InternalError(absl::StrFormat("broadcast: byte %d", i));
      }
      return absl::OkStatus();
    });
    for (int r = 0; r < n; ++r) {
      ASSERT_TRUE(results[r].ok()) << "rank " << r << " count " << count << ": " << results[r];
      const bool slots = node_slots && RegionOnOneNode(topology, r);
      // The all-gather's and reduce-scatter's steps carry each member's own block and the other regions' it
      // forwards: do they all fit a slot?
      const int g = topology.region_of(r);
      auto fits = [&](size_t element_size) {
        for (size_t p = 0; p < topology.region_members(g).size(); ++p) {
          const size_t blocks = 1 + algorithms::ForeignRanksAssignedTo(topology, g, static_cast<int>(p)).size();
          if (blocks * count * element_size > transport::shm::kSlotBytes) return false;
        }
        return true;
      };
      EXPECT_EQ(absl::StrContains(gather_notes[r], "node-slots"), slots && fits(sizeof(int32_t)))
          << "rank " << r << " count " << count;
      EXPECT_EQ(absl::StrContains(scatter_notes[r], "node-slots"), slots && fits(sizeof(int64_t)))
          << "rank " << r << " count " << count;
      EXPECT_EQ(absl::StrContains(broadcast_notes[r], "node-slots"), slots && equal_regions && n > 1)
          << "rank " << r << " count " << count;
    }
  }
}

// Out of place through the public API: the input is left alone and every
// element of the output is written (it starts as garbage).
TEST_P(Hierarchical, OutOfPlaceAllreduceLeavesTheInputAndFillsTheOutput) {
  const Layout layout = GetParam();
  const std::vector<int> region = RegionOfRank(layout);
  const int n = static_cast<int>(region.size());
  auto comms = RegionCommunicators(layout);
  ASSERT_TRUE(comms.ok()) << comms.status();
  const size_t count = 300007;
  std::vector<std::vector<float>> out(n);
  auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
    const int r = comm.rank();
    std::vector<float> input(count);
    for (size_t i = 0; i < count; ++i) input[i] = Value(r, i);
    const std::vector<float> original = input;
    out[r].assign(count, std::nanf(""));
    AllreduceOptions o;
    o.input = input.data();
    o.output = out[r].data();
    o.count = count;
    o.algorithm = "hierarchical";
    SILK_RETURN_IF_ERROR(Allreduce(comm, o));
    if (input != original) return absl::InternalError("the input changed");
    return absl::OkStatus();
  });
  for (int r = 0; r < n; ++r) ASSERT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
  for (size_t i = 0; i < count; ++i) {
    double expected = 0;
    for (int q = 0; q < n; ++q) expected += Value(q, i);
    ASSERT_NEAR(out[0][i], expected, std::abs(expected) * 1e-5) << "element " << i;
  }
  for (int r = 1; r < n; ++r) {
    ASSERT_EQ(std::memcmp(out[r].data(), out[0].data(), count * sizeof(float)), 0) << "rank " << r;
  }
}

// AllreduceOptions::within_region: each region reduces among its own ranks,
// and not one byte crosses a region boundary; also when the hierarchical
// algorithm is asked for (as SILK_ALGO=hierarchical asks for it everywhere).
void CheckWithinRegionAllreduce(const Layout& layout, const std::string& algorithm) {
  const std::vector<int> region = RegionOfRank(layout);
  const int n = static_cast<int>(region.size());
  auto comms = RegionCommunicators(layout);
  ASSERT_TRUE(comms.ok()) << comms.status();
  const size_t count = 70001;
  std::vector<std::vector<float>> out(n);
  auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) {
    std::vector<float>& data = out[comm.rank()];
    data.resize(count);
    for (size_t i = 0; i < count; ++i) data[i] = Value(comm.rank(), i);
    AllreduceOptions o;
    o.input = o.output = data.data();
    o.count = count;
    o.within_region = true;
    o.algorithm = algorithm;
    return Allreduce(comm, o);
  });
  for (int r = 0; r < n; ++r) ASSERT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
  for (int r = 0; r < n; ++r) {
    for (size_t i = 0; i < count; i += 97) {
      double expected = 0;
      for (int q = 0; q < n; ++q) expected += region[q] == region[r] ? Value(q, i) : 0.0;
      ASSERT_NEAR(out[r][i], expected, std::abs(expected) * 1e-5) << "rank " << r << " element " << i;
    }
    for (int q = 0; q < n; ++q) {
      if (region[q] == region[r]) {
        ASSERT_EQ(std::memcmp(out[q].data(), out[r].data(), count * sizeof(float)), 0) << "ranks " << q << ", " << r;
      } else {
        EXPECT_EQ((*comms)[r]->transport().counters(q).bytes_sent, 0u) << "rank " << r << " sent to rank " << q;
      }
    }
  }
}

TEST_P(Hierarchical, WithinRegionAllreduceStaysInsideEachRegion) {
  for (const char* algorithm : {"", "hierarchical"}) {
    SCOPED_TRACE(absl::StrFormat("algorithm \"%s\"", algorithm));
    CheckWithinRegionAllreduce(GetParam(), algorithm);
    if (HasFatalFailure()) return;
  }
}

// Broadcast across regions through the public call, from a rank of each
// region, out of place, at sizes that do not divide evenly: every rank ends
// with the root's bytes, and the input of a non-root is never read.
TEST_P(Hierarchical, BroadcastFromEveryRegionOutOfPlace) {
  const Layout layout = GetParam();
  const std::vector<int> region = RegionOfRank(layout);
  const int n = static_cast<int>(region.size());
  auto comms = RegionCommunicators(layout, /*chunk_bytes=*/4096);  // many pipeline chunks
  ASSERT_TRUE(comms.ok()) << comms.status();
  std::vector<int> roots = {0, n / 2, n - 1};
  for (int root : roots) {
    for (size_t count : {size_t{0}, size_t{1}, size_t{5}, size_t{100003}}) {
      std::vector<std::vector<float>> out(n);
      auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) {
        const int me = comm.rank();
        std::vector<float> input(count);
        for (size_t i = 0; i < count; ++i) input[i] = me == root ? Value(root, i) : -1.0f;
        out[me].assign(count, -2.0f);
        BroadcastOptions o;
        o.input = input.data();
        o.output = out[me].data();
        o.count = count;
        o.root = root;
        return Broadcast(comm, o);
      });
      for (int r = 0; r < n; ++r) {
        ASSERT_TRUE(results[r].ok()) << "root " << root << " count " << count << " rank " << r << ": " << results[r];
        for (size_t i = 0; i < count; ++i) {
          ASSERT_EQ(out[r][i], Value(root, i)) << "root " << root << " count " << count << " rank " << r << " element " << i;
        }
      }
    }
  }
}

// The region-aware barrier: whichever rank is late, in whichever region, no
// rank of any region leaves before it arrived.
TEST_P(Hierarchical, BarrierHoldsEveryRankUntilTheLastArrives) {
  const Layout layout = GetParam();
  const std::vector<int> region = RegionOfRank(layout);
  const int n = static_cast<int>(region.size());
  auto comms = RegionCommunicators(layout);
  ASSERT_TRUE(comms.ok()) << comms.status();
  std::atomic<int> arrived{0};
  auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
    for (int late = 0; late < n; ++late) {
      if (comm.rank() == late) absl::SleepFor(absl::Milliseconds(30));
      arrived.fetch_add(1);
      SILK_RETURN_IF_ERROR(Barrier(comm));
      if (arrived.load() < (late + 1) * n) {
        return absl::InternalError(absl::StrFormat("rank %d left the barrier while rank %d (late) had not arrived",
                                                   comm.rank(), late));
      }
      // A second barrier keeps the next round's arrivals out of this round's count.
      SILK_RETURN_IF_ERROR(Barrier(comm));
    }
    return absl::OkStatus();
  });
  for (int r = 0; r < n; ++r) EXPECT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
}

// RegionAllgather: every rank ends with every region's payload, each region's
// payload crossing to each other region exactly once.
TEST_P(Hierarchical, RegionAllgatherDeliversEveryRegionsPayloadOnce) {
  const Layout layout = GetParam();
  const std::vector<int> region = RegionOfRank(layout);
  const int n = static_cast<int>(region.size());
  const int regions = static_cast<int>(layout.region_sizes.size());
  auto comms = RegionCommunicators(layout);
  ASSERT_TRUE(comms.ok()) << comms.status();
  auto payload = [](int r, size_t i) { return static_cast<char>(i * 131 + r * 17 + 3); };
  for (size_t bytes : {size_t{0}, size_t{1}, size_t{5}, size_t{100003}}) {
    for (bool in_place : {false, true}) {
      std::vector<std::vector<char>> out(n);
      std::vector<uint64_t> sent_before(n, 0);
      auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) {
        const int r = comm.rank();
        out[r].assign(bytes * regions, '?');
        std::vector<char> input(bytes);
        for (size_t i = 0; i < bytes; ++i) input[i] = payload(region[r], i);
        RegionAllgatherOptions o;
        o.bytes = bytes;
        o.output = out[r].data();
        if (in_place) {
          std::copy(input.begin(), input.end(), out[r].begin() + region[r] * bytes);
          o.input = out[r].data() + region[r] * bytes;
        } else {
          o.input = input.data();
        }
        return RegionAllgather(comm, o);
      });
      for (int r = 0; r < n; ++r) {
        ASSERT_TRUE(results[r].ok()) << "rank " << r << " bytes " << bytes << ": " << results[r];
        for (int q = 0; q < regions; ++q) {
          for (size_t i = 0; i < bytes; ++i) {
            ASSERT_EQ(out[r][q * bytes + i], payload(q, i)) << "rank " << r << ", region " << q << "'s byte " << i;
          }
        }
      }
    }
  }
  // Over all the calls above, each region sent each other region its payloads once.
  const uint64_t total = 2 * (0 + 1 + 5 + 100003);
  for (int q = 0; q < regions; ++q) {
    for (int p = 0; p < regions; ++p) {
      if (p == q) continue;
      uint64_t crossing = 0;
      for (int r = 0; r < n; ++r) {
        for (int s = 0; s < n; ++s) {
          if (region[r] == q && region[s] == p) crossing += (*comms)[r]->transport().counters(s).bytes_sent;
        }
      }
      EXPECT_EQ(crossing, total) << "region " << q << " -> region " << p;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, Hierarchical,
                         ::testing::Values(Layout{{1}}, Layout{{2, 2}}, Layout{{1, 1}}, Layout{{3, 1}},
                                           Layout{{2, 3}}, Layout{{2, 1, 2}}, Layout{{3, 3}},
                                           // Nodes: two-stage regions (the virtual cluster's 2 x 2), one
                                           // beside a single-node region, one beside an uneven one.
                                           Layout{{4, 4}, 2}, Layout{{6, 2}, 2}, Layout{{4, 3}, 2}),
                         [](const auto& info) { return "regions_" + info.param.Name(); });

}  // namespace
}  // namespace silk
