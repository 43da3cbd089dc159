#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include "collectives/algorithms/chain.h"
#include "collectives/algorithms/hierarchical.h"
#include "collectives/algorithms/hierarchical_layout.h"
#include "collectives/algorithms/partition.h"
#include "collectives/algorithms/ring.h"
#include "collectives/algorithms/shared_slots.h"
#include "runtime/core/status_macros.h"

namespace silk::algorithms {

namespace {

// Message numbers: chunk k's scatter is k, its WAN transfer kWanBand + k, its
// all-gather runs in group band (k + 1) << 20.
constexpr uint32_t kWanBand = 1u << 19;
constexpr size_t kMaxPairwiseChunks = 1024;

bool RegionsEqualInSize(const Topology& topology) {
  for (int r = 1; r < topology.num_regions(); ++r) {
    if (topology.region_members(r).size() != topology.region_members(0).size()) return false;
  }
  return topology.region_members(0).size() > 1;
}

// Regions of equal size m: the root scatters each chunk over its region
// (block j to member j), member j sends its block to member j of every other
// region, and every region all-gathers the chunk. Each pair of counterparts
// carries 1/m of the buffer, so all of them share the WAN, as in the
// all-reduce, and no single pair's window limits the broadcast.
absl::Status PairwiseBroadcast(OpContext& ctx, const Topology& topology, const void* input, char* out, size_t bytes,
                               int root, const HierarchicalPlan& plan) {
  const int me = ctx.rank(), my_region = topology.region_of(me), root_region = topology.region_of(root);
  const std::vector<int>& local = topology.region_members(my_region);
  const std::vector<int>& root_members = topology.region_members(root_region);
  const int position = PositionIn(local, me);
  const size_t members = local.size();
  const size_t chunk = std::max({size_t{1}, plan.pipeline_chunk_bytes, (bytes + kMaxPairwiseChunks - 1) / kMaxPairwiseChunks});
  const size_t chunks = ChunksFor(bytes, chunk);
  if (me == root && out != input && bytes > 0) std::memcpy(out, input, bytes);
  auto block_of = [&](size_t k, size_t j) {
    Range piece = Chunk(Range{0, bytes}, chunk, k);
    Range block = Part(piece.count, members, j);
    return Range{piece.begin + block.begin, block.count};
  };
  auto send_across = [&](size_t k, std::vector<transport::RequestPtr>& sent) {
    Range block = block_of(k, position);
    for (int r = 0; r < topology.num_regions(); ++r) {
      if (r == root_region) continue;
      sent.push_back(ctx.Send(topology.region_members(r)[position], kWanBand + static_cast<uint32_t>(k),
                              out + block.begin, block.count));
    }
  };

  std::vector<transport::RequestPtr> sent, mine(chunks);
  if (my_region == root_region) {
    if (me == root) {
      for (size_t k = 0; k < chunks; ++k) {
        for (size_t j = 0; j < members; ++j) {
          if (root_members[j] == root) continue;
          Range block = block_of(k, j);
          sent.push_back(ctx.Send(root_members[j], static_cast<uint32_t>(k), out + block.begin, block.count));
        }
        send_across(k, sent);
      }
    } else {
      for (size_t k = 0; k < chunks; ++k) {
        Range block = block_of(k, position);
        mine[k] = ctx.Recv(root, static_cast<uint32_t>(k), out + block.begin, block.count);
      }
      for (size_t k = 0; k < chunks; ++k) {
        SILK_RETURN_IF_ERROR(ctx.Wait(mine[k]));
        mine[k] = nullptr;
        send_across(k, sent);
      }
    }
  } else {
    for (size_t k = 0; k < chunks; ++k) {
      Range block = block_of(k, position);
      mine[k] = ctx.Recv(root_members[position], kWanBand + static_cast<uint32_t>(k), out + block.begin, block.count);
    }
  }
  // Each chunk's all-gather starts as soon as this rank holds its block of it:
  // on a region's one node through its slots (chunk k in step k), where they serve.
  std::optional<transport::SlotsSubset> slots =
      plan.node_slots && chunks > 0 && OnOneNode(topology, local)
          ? SlotsAmong(ctx.transport(), local, BalancedBlocks(Chunk(Range{0, bytes}, chunk, 0).count, members), 1,
                       chunks)
          : std::nullopt;
  if (slots) ctx.Annotate(ctx.note() + " node-slots");
  for (size_t k = 0; k < chunks; ++k) {
    if (mine[k]) SILK_RETURN_IF_ERROR(ctx.Wait(mine[k]));
    Range piece = Chunk(Range{0, bytes}, chunk, k);
    SILK_ASSIGN_OR_RETURN(OpContext region, ctx.Group(local, static_cast<uint32_t>(k + 1) << 20));
    const Blocks blocks = BalancedBlocks(piece.count, members);
    SILK_RETURN_IF_ERROR(slots ? SlotsAllgatherStep(region, *slots, static_cast<int>(k), out + piece.begin, blocks, 1)
                               : RingAllgather(region, out + piece.begin, blocks, 1, plan.ring_chunk_bytes, 0));
  }
  return ctx.WaitAll(sent);
}

}  // namespace

absl::Status HierarchicalBroadcast(OpContext& ctx, const Topology& topology, const void* input, void* output,
                                   size_t bytes, int root, const HierarchicalPlan& plan) {
  if (RegionsEqualInSize(topology)) {
    return PairwiseBroadcast(ctx, topology, input, static_cast<char*>(output), bytes, root, plan);
  }
  // Otherwise the root sends the whole buffer to one entry rank per region,
  // which passes it along a chain inside its region.
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
