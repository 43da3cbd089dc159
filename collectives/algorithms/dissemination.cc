#include "collectives/algorithms/dissemination.h"

#include <cstdint>
#include <vector>

#include "runtime/core/status_macros.h"

namespace silk::algorithms {

absl::Status DisseminationBarrier(OpContext& ctx) {
  const int n = ctx.size(), rank = ctx.rank();
  static char nothing;  // 0-byte messages still need an address
  std::vector<transport::RequestPtr> sends;
  uint32_t round = 0;
  for (int d = 1; d < n; d *= 2, ++round) {
    transport::RequestPtr recv = ctx.Recv((rank - d + n) % n, round, &nothing, 0);
    sends.push_back(ctx.Send((rank + d) % n, round, &nothing, 0));
    SILK_RETURN_IF_ERROR(ctx.Wait(recv));
  }
  return ctx.WaitAll(sends);
}

}  // namespace silk::algorithms
