#include "collectives/algorithms/region_allgather.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "collectives/algorithms/partition.h"
#include "collectives/algorithms/ring.h"
#include "runtime/core/status_macros.h"

namespace silk::algorithms {
namespace {

// The exchange across regions uses message 0 of each pair; each other
// region's payload is then gathered inside the region in a band of its own.
constexpr uint32_t kBand = 1u << 20;
uint32_t GatherBand(int region) { return static_cast<uint32_t>(region + 1) * kBand; }

}  // namespace

absl::Status RegionAllgather(OpContext& ctx, const Topology& topology, const void* input, void* output, size_t bytes,
                             size_t ring_chunk_bytes) {
  const int me = ctx.rank();
  const int regions = topology.num_regions();
  const int mine = topology.region_of(me);
  const std::vector<int>& local = topology.region_members(mine);
  const size_t local_rank = std::find(local.begin(), local.end(), me) - local.begin();
  char* out = static_cast<char*>(output);
  char* own = out + static_cast<size_t>(mine) * bytes;
  if (bytes > 0 && own != input) std::memcpy(own, input, bytes);
  if (regions == 1 || bytes == 0) return absl::OkStatus();

  // Region Q's payload is cut into one part per rank of each receiving region
  // R; part j goes to R's j-th rank from Q's rank j mod |Q|, so every rank of
  // Q sends and every byte crosses once.
  std::vector<transport::RequestPtr> requests;
  for (int q = 0; q < regions; ++q) {
    if (q == mine) continue;
    const std::vector<int>& theirs = topology.region_members(q);
    const Blocks to_them = BalancedBlocks(bytes, theirs.size());
    for (size_t j = local_rank; j < theirs.size(); j += local.size()) {
      if (to_them[j].count == 0) continue;
      requests.push_back(ctx.Send(theirs[j], 0, own + to_them[j].begin, to_them[j].count));
    }
    const Range part = BalancedBlocks(bytes, local.size())[local_rank];
    if (part.count == 0) continue;
    const int sender = theirs[local_rank % theirs.size()];
    requests.push_back(ctx.Recv(sender, 0, out + static_cast<size_t>(q) * bytes + part.begin, part.count));
  }
  SILK_RETURN_IF_ERROR(ctx.WaitAll(requests));
  // Inside the region, every rank holds its part of each other region's payload: gather them.
  for (int q = 0; q < regions; ++q) {
    if (q == mine || local.size() == 1) continue;
    SILK_ASSIGN_OR_RETURN(OpContext region, ctx.Group(local, GatherBand(q)));
    SILK_RETURN_IF_ERROR(RingAllgather(region, out + static_cast<size_t>(q) * bytes,
                                       BalancedBlocks(bytes, local.size()), 1, ring_chunk_bytes, 0));
  }
  return absl::OkStatus();
}

}  // namespace silk::algorithms
