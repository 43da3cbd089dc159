// Allgather and its varying-counts form share one body: blocks in rank order.
#include <cstring>
#include <limits>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "collectives/algorithms/halving_doubling.h"
#include "collectives/algorithms/hierarchical.h"
#include "collectives/algorithms/ring.h"
#include "collectives/algorithms/shared_slots.h"
#include "collectives/collectives.h"
#include "collectives/launch.h"
#include "collectives/validation.h"
#include "runtime/core/status_macros.h"

namespace silk {
namespace {

struct Gather {
  const void* input;
  void* output;
  algorithms::Blocks blocks;
  DataType type;
  algorithms::Algorithm algorithm;
  size_t chunk_bytes;
  std::shared_ptr<const Topology> topology;  // for the hierarchical form
  bool node_slots = false;                    // HierarchicalPlan::node_slots
};

absl::Status RunGather(OpContext& ctx, algorithms::Workspace& workspace, const Gather& g) {
  const size_t elem = DataTypeSize(g.type);
  const algorithms::Range mine = g.blocks[ctx.rank()];
  char* at = static_cast<char*>(g.output) + mine.begin * elem;
  if (mine.count > 0 && at != g.input) std::memcpy(at, g.input, mine.count * elem);
  if (g.algorithm == algorithms::Algorithm::kHierarchical) {
    const size_t count = g.blocks.empty() ? 0 : g.blocks[0].count;  // equal blocks
    algorithms::HierarchicalPlan plan = algorithms::PlanFor(count * elem * ctx.size(), g.chunk_bytes);
    plan.node_slots = g.node_slots;
    return algorithms::HierarchicalAllgather(ctx, workspace, *g.topology, g.output, count, elem, plan);
  }
  if (g.algorithm == algorithms::Algorithm::kRing) {
    return algorithms::RingAllgather(ctx, g.output, g.blocks, elem, g.chunk_bytes, 0);
  }
  return algorithms::HalvingDoublingAllgather(ctx, g.output, g.blocks, elem);
}

// Checks shared by both forms; `total` is the output's element count.
absl::Status ValidateGather(Communicator& comm, const void* input, void* output, const algorithms::Blocks& blocks,
                            size_t total, DataType type, const char* what) {
  const size_t elem = DataTypeSize(type);
  const algorithms::Range mine = blocks[comm.rank()];
  SILK_RETURN_IF_ERROR(ValidateBuffer(input, mine.count * elem, absl::StrCat(what, " input").c_str()));
  SILK_RETURN_IF_ERROR(ValidateBuffer(output, total * elem, absl::StrCat(what, " output").c_str()));
  const char* in_place_at = static_cast<const char*>(output) + mine.begin * elem;
  return ValidateBlockPlacement(input, mine.count * elem, output, total * elem, in_place_at,
                                absl::StrCat(what, " input").c_str());
}

}  // namespace

namespace {

absl::StatusOr<WorkPtr> LaunchAllgather(Communicator& comm, const AllgatherOptions& options) {
  SILK_RETURN_IF_ERROR(ValidateType(options.type));
  const int n = comm.size();
  SILK_ASSIGN_OR_RETURN(const size_t output_bytes, BufferBytes(options.count, n, options.type, "allgather"));
  Gather g{options.input,
           options.output,
           algorithms::EqualBlocks(options.count, n),
           options.type,
           algorithms::Algorithm::kRing,
           comm.config().chunk_bytes,
           std::make_shared<const Topology>(Topology::FromPlacements(comm.placements()))};
  SILK_RETURN_IF_ERROR(
      ValidateGather(comm, options.input, options.output, g.blocks, options.count * n, options.type, "allgather"));
  const size_t block_bytes = output_bytes / n;
  if (std::optional<WorkPtr> work = LaunchBlocksOnSlots(comm, CollectiveKind::kAllgather, options, block_bytes,
                                                        algorithms::SlotsAllgather)) {
    return *std::move(work);
  }
  SILK_ASSIGN_OR_RETURN(g.algorithm, algorithms::ChooseAlgorithm(CollectiveKind::kAllgather, options.algorithm,
                                                                 comm.config().algorithm, output_bytes,
                                                                 comm.num_regions()));
  LaunchOptions launch;
  launch.descriptor =
      MakeDescriptor(CollectiveKind::kAllgather, options.type, ReduceOp::kSum, -1, options.count, g.algorithm);
  launch.timeout = options.timeout;
  g.node_slots = NodeSlotsFor(comm, g.algorithm);
  launch.may_overlap = options.may_overlap && !g.node_slots;
  return Launch(comm, std::move(launch),
                [g = std::move(g)](OpContext& ctx, algorithms::Workspace& ws) { return RunGather(ctx, ws, g); });
}

}  // namespace

absl::StatusOr<WorkPtr> AllgatherAsync(Communicator& comm, const AllgatherOptions& options) {
  return RejectOnError(comm, CollectiveKind::kAllgather, LaunchAllgather(comm, options));
}

absl::Status Allgather(Communicator& comm, const AllgatherOptions& options) {
  BlockingCall blocking;
  return WaitFor(AllgatherAsync(comm, options));
}

namespace {

absl::StatusOr<WorkPtr> LaunchAllgatherv(Communicator& comm, const AllgathervOptions& options) {
  SILK_RETURN_IF_ERROR(ValidateType(options.type));
  const int n = comm.size();
  if (options.counts.size() != static_cast<size_t>(n)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("allgatherv needs one count per rank: got %d counts for %d ranks", options.counts.size(), n));
  }
  size_t total = 0;
  for (size_t c : options.counts) {
    if (c > std::numeric_limits<size_t>::max() - total) {
      return absl::InvalidArgumentError("allgatherv: the counts overflow when added");
    }
    total += c;
  }
  SILK_ASSIGN_OR_RETURN(const size_t output_bytes, BufferBytes(total, 1, options.type, "allgatherv"));
  Gather g{options.input,
           options.output,
           algorithms::BlocksFromCounts(options.counts),
           options.type,
           algorithms::Algorithm::kRing,
           comm.config().chunk_bytes,
           nullptr};  // flat only: see below
  SILK_RETURN_IF_ERROR(
      ValidateGather(comm, options.input, options.output, g.blocks, total, options.type, "allgatherv"));
  SILK_ASSIGN_OR_RETURN(g.algorithm, algorithms::ChooseAlgorithm(CollectiveKind::kAllgather, options.algorithm,
                                                                 comm.config().algorithm, output_bytes));
  // The hierarchical all-gather pairs equal blocks across regions; with
  // varying counts the flat algorithms serve.
  if (g.algorithm == algorithms::Algorithm::kHierarchical) g.algorithm = algorithms::Algorithm::kRing;
  LaunchOptions launch;
  // The descriptor carries the total; the counts themselves are checked
  // against every rank this one receives from before any data moves.
  launch.descriptor = MakeDescriptor(CollectiveKind::kAllgather, options.type, ReduceOp::kSum, -1, total, g.algorithm,
                                     kVaryingCountsFlag);
  launch.timeout = options.timeout;
  launch.may_overlap = options.may_overlap;
  launch.agreed_values.assign(options.counts.begin(), options.counts.end());
  launch.agreed_name = "counts";
  if (g.algorithm == algorithms::Algorithm::kHalvingDoubling) {
    launch.agreement_peers = algorithms::HalvingDoublingPeers(n, comm.rank());
  }
  return Launch(comm, std::move(launch),
                [g = std::move(g)](OpContext& ctx, algorithms::Workspace& ws) { return RunGather(ctx, ws, g); });
}

}  // namespace

absl::StatusOr<WorkPtr> AllgathervAsync(Communicator& comm, const AllgathervOptions& options) {
  return RejectOnError(comm, CollectiveKind::kAllgather, LaunchAllgatherv(comm, options));
}

absl::Status Allgatherv(Communicator& comm, const AllgathervOptions& options) {
  return WaitFor(AllgathervAsync(comm, options));
}

}  // namespace silk
