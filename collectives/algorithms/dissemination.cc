#include "collectives/algorithms/dissemination.h"

#include <cstdint>
#include <vector>

#include "runtime/core/status_macros.h"

namespace silk::algorithms {
namespace {
char nothing;  // 0-byte messages still need an address
}  // namespace

absl::Status DisseminationBarrier(OpContext& ctx) {
  const int n = ctx.size(), rank = ctx.rank();
  std::vector<transport::RequestPtr> sends;
  uint32_t round = 0;
  for (int d = 1; d < n; d *= 2, ++round) {
    transport::RequestPtr recv = ctx.Recv((rank - d + n) % n, round, &nothing, 0);
    sends.push_back(ctx.Send((rank + d) % n, round, &nothing, 0));
    SILK_RETURN_IF_ERROR(ctx.Wait(recv));
  }
  return ctx.WaitAll(sends);
}

absl::Status HierarchicalBarrier(OpContext& ctx, const Topology& topology) {
  // Sequence bands: the two region barriers and the signal never share a number.
  constexpr uint32_t kBand = 1u << 20;
  const int me = ctx.rank();
  const int my_region = topology.region_of(me);
  const std::vector<int>& local = topology.region_members(my_region);
  {
    SILK_ASSIGN_OR_RETURN(OpContext region, ctx.Group(local, 0));
    SILK_RETURN_IF_ERROR(DisseminationBarrier(region));
  }
  if (me == local.front()) {
    std::vector<transport::RequestPtr> requests;
    for (int r = 0; r < topology.num_regions(); ++r) {
      if (r == my_region) continue;
      const int leader = topology.region_members(r).front();
      requests.push_back(ctx.Recv(leader, kBand, &nothing, 0));
      requests.push_back(ctx.Send(leader, kBand, &nothing, 0));
    }
    SILK_RETURN_IF_ERROR(ctx.WaitAll(requests));
  }
  SILK_ASSIGN_OR_RETURN(OpContext region, ctx.Group(local, 2 * kBand));
  return DisseminationBarrier(region);
}

}  // namespace silk::algorithms
