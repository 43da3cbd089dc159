#include <cstring>
#include <optional>
#include <vector>

#include "collectives/algorithms/hierarchical.h"
#include "collectives/algorithms/hierarchical_layout.h"
#include "collectives/algorithms/partition.h"
#include "collectives/algorithms/ring.h"
#include "collectives/algorithms/shared_slots.h"
#include "collectives/kernels/reduce.h"
#include "runtime/core/status_macros.h"

namespace silk::algorithms {

absl::Status HierarchicalReduceScatter(OpContext& ctx, Workspace& workspace, const Topology& topology,
                                       const void* input, void* output, size_t count, DataType type, ReduceOp op,
                                       const HierarchicalPlan& plan) {
  const size_t elem = DataTypeSize(type), block_bytes = count * elem;
  const char* in = static_cast<const char*>(input);
  const int me = ctx.rank(), my_region = topology.region_of(me), regions = topology.num_regions();
  const std::vector<int>& local = topology.region_members(my_region);
  const int position = PositionIn(local, me);
  const ReduceOp phase_op = op == ReduceOp::kAvg ? ReduceOp::kSum : op;
  if (block_bytes == 0) return absl::OkStatus();

  // 1. Inside the region: member j gathers the region's partials of its own
  //    block and of the foreign blocks it forwards. Pack the input so each
  //    member's blocks are contiguous, then one ring reduce-scatter.
  const PackedLayout layout = PackForRegion(topology, my_region, count);
  const auto& held = layout.held;
  const Blocks& blocks = layout.blocks;
  char* packed = workspace.Allocate(layout.total * elem);
  for (size_t j = 0; j < local.size(); ++j) {
    for (size_t i = 0; i < held[j].size(); ++i) {
      std::memcpy(packed + (blocks[j].begin + i * count) * elem, in + held[j][i] * block_bytes, block_bytes);
    }
  }
  char* partials = workspace.Allocate(blocks[position].count * elem);  // [own block][forwarded blocks...]
  SILK_ASSIGN_OR_RETURN(OpContext region, ctx.Group(local, 1u << 20));
  // A region on one node reduces in one step through the node's slots, where they serve.
  std::optional<transport::SlotsSubset> slots =
      plan.node_slots && OnOneNode(topology, local) ? SlotsAmong(ctx.transport(), local, blocks, elem, 1)
                                                    : std::nullopt;
  if (slots) ctx.Annotate(ctx.note() + " node-slots");
  SILK_RETURN_IF_ERROR(slots ? SlotsReduceScatterStep(region, *slots, 0, packed, blocks, partials, type, phase_op)
                             : RingReduceScatter(region, workspace, packed, blocks, partials, type, phase_op,
                                                 plan.ring_chunk_bytes, 0));

  // 2. Across the WAN: forwarded partials to their owners; this block's
  //    partials from the member of each other region that holds them.
  std::vector<char*> by_region(regions, nullptr);
  by_region[my_region] = partials;
  std::vector<transport::RequestPtr> wan;
  for (size_t i = 1; i < held[position].size(); ++i) {
    wan.push_back(ctx.Send(held[position][i], 0, partials + i * block_bytes, block_bytes));
  }
  for (int r = 0; r < regions; ++r) {
    if (r == my_region) continue;
    by_region[r] = workspace.Allocate(block_bytes);
    wan.push_back(ctx.Recv(ReceiverOf(topology, me, r), 0, by_region[r], block_bytes));
  }
  SILK_RETURN_IF_ERROR(ctx.WaitAll(wan));

  // 3. Fold the regions' partials in region order (the same everywhere).
  char* out = static_cast<char*>(output);
  std::memcpy(out, by_region[0], block_bytes);
  for (int r = 1; r < regions; ++r) kernels::ReduceInto(type, phase_op, out, by_region[r], count);
  if (op == ReduceOp::kAvg) kernels::Scale(type, out, count, topology.size());
  return absl::OkStatus();
}

}  // namespace silk::algorithms
