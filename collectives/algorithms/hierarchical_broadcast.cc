#include <algorithm>
#include <vector>

#include "collectives/algorithms/chain.h"
#include "collectives/algorithms/hierarchical.h"
#include "collectives/algorithms/hierarchical_layout.h"
#include "collectives/algorithms/partition.h"
#include "runtime/core/status_macros.h"

namespace silk::algorithms {

absl::Status HierarchicalBroadcast(OpContext& ctx, const Topology& topology, const void* input, void* output,
                                   size_t bytes, int root, const HierarchicalPlan& plan) {
  const int me = ctx.rank(), my_region = topology.region_of(me), root_region = topology.region_of(root);
  const std::vector<int>& local = topology.region_members(my_region);
  char* out = static_cast<char*>(output);
  // Each region's entry: the root, or the root's counterpart there.
  const int entry = my_region == root_region ? root : ReceiverOf(topology, root, my_region);
  const size_t chunk = std::max<size_t>(1, plan.pipeline_chunk_bytes);
  const size_t chunks = ChunksFor(bytes, chunk);

  std::vector<transport::RequestPtr> wan(chunks);
  if (me == root) {
    for (int r = 0; r < topology.num_regions(); ++r) {
      if (r == root_region) continue;
      for (size_t k = 0; k < chunks; ++k) {
        Range piece = Chunk(Range{0, bytes}, chunk, k);
        wan.push_back(ctx.Send(ReceiverOf(topology, root, r), static_cast<uint32_t>(k),
                               static_cast<const char*>(input) + piece.begin, piece.count));
      }
    }
  } else if (me == entry) {
    for (size_t k = 0; k < chunks; ++k) {
      Range piece = Chunk(Range{0, bytes}, chunk, k);
      wan[k] = ctx.Recv(root, static_cast<uint32_t>(k), out + piece.begin, piece.count);
    }
  }
  // Inside the region, chunk by chunk as they arrive: the WAN keeps streaming
  // chunk k + 1 while the region passes chunk k along its chain.
  const int entry_position = PositionIn(local, entry);
  for (size_t k = 0; k < chunks; ++k) {
    Range piece = Chunk(Range{0, bytes}, chunk, k);
    if (me == entry && me != root) SILK_RETURN_IF_ERROR(ctx.Wait(wan[k]));
    SILK_ASSIGN_OR_RETURN(OpContext region, ctx.Group(local, static_cast<uint32_t>(k + 1) << 20));
    const char* source = me == root ? static_cast<const char*>(input) + piece.begin : out + piece.begin;
    SILK_RETURN_IF_ERROR(
        ChainBroadcast(region, source, out + piece.begin, piece.count, entry_position, plan.ring_chunk_bytes));
  }
  std::vector<transport::RequestPtr> sent;
  for (auto& r : wan) {
    if (r) sent.push_back(r);
  }
  return ctx.WaitAll(sent);
}

}  // namespace silk::algorithms
