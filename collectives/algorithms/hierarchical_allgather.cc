#include <cstring>
#include <optional>
#include <vector>

#include "collectives/algorithms/hierarchical.h"
#include "collectives/algorithms/hierarchical_layout.h"
#include "collectives/algorithms/partition.h"
#include "collectives/algorithms/ring.h"
#include "collectives/algorithms/shared_slots.h"
#include "runtime/core/status_macros.h"

namespace silk::algorithms {

absl::Status HierarchicalAllgather(OpContext& ctx, Workspace& workspace, const Topology& topology, void* output,
                                   size_t count, size_t element_size, const HierarchicalPlan& plan) {
  const size_t block_bytes = count * element_size;
  char* out = static_cast<char*>(output);
  const int me = ctx.rank(), my_region = topology.region_of(me);
  const std::vector<int>& local = topology.region_members(my_region);
  const int position = PositionIn(local, me);
  if (block_bytes == 0) return absl::OkStatus();

  // 1. Across the WAN: this rank's block to its receiver in every other region;
  //    the blocks this rank receives for its region, straight into place.
  std::vector<transport::RequestPtr> wan;
  for (int r = 0; r < topology.num_regions(); ++r) {
    if (r == my_region) continue;
    wan.push_back(ctx.Send(ReceiverOf(topology, me, r), 0, out + me * block_bytes, block_bytes));
  }
  const std::vector<int> mine = ForeignRanksAssignedTo(topology, my_region, position);
  for (int q : mine) wan.push_back(ctx.Recv(q, 0, out + q * block_bytes, block_bytes));
  SILK_RETURN_IF_ERROR(ctx.WaitAll(wan));

  // 2. Inside the region: every member contributes its own block and the
  //    foreign blocks it received, packed contiguously, in one ring all-gather.
  const PackedLayout layout = PackForRegion(topology, my_region, count);
  const auto& held = layout.held;
  const Blocks& blocks = layout.blocks;
  char* stage = workspace.Allocate(layout.total * element_size);
  for (size_t i = 0; i < held[position].size(); ++i) {
    std::memcpy(stage + (blocks[position].begin + i * count) * element_size, out + held[position][i] * block_bytes,
                block_bytes);
  }
  SILK_ASSIGN_OR_RETURN(OpContext region, ctx.Group(local, 1u << 20));
  // A region on one node gathers in one step through the node's slots, where they serve.
  std::optional<transport::SlotsSubset> slots =
      plan.node_slots && OnOneNode(topology, local) ? SlotsAmong(ctx.transport(), local, blocks, element_size, 1)
                                                    : std::nullopt;
  if (slots) ctx.Annotate(ctx.note() + " node-slots");
  SILK_RETURN_IF_ERROR(slots ? SlotsAllgatherStep(region, *slots, 0, stage, blocks, element_size)
                             : RingAllgather(region, stage, blocks, element_size, plan.ring_chunk_bytes, 0));
  for (size_t j = 0; j < local.size(); ++j) {
    if (static_cast<int>(j) == position) continue;
    for (size_t i = 0; i < held[j].size(); ++i) {
      std::memcpy(out + held[j][i] * block_bytes, stage + (blocks[j].begin + i * count) * element_size, block_bytes);
    }
  }
  return absl::OkStatus();
}

}  // namespace silk::algorithms
