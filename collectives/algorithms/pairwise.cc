#include "collectives/algorithms/pairwise.h"

#include <cstring>
#include <vector>

namespace silk::algorithms {

absl::Status PairwiseAlltoall(OpContext& ctx, Workspace& workspace, const void* input, void* output,
                              size_t block_bytes) {
  const int n = ctx.size(), rank = ctx.rank();
  if (block_bytes == 0) return absl::OkStatus();
  const char* in = static_cast<const char*>(input);
  char* out = static_cast<char*>(output);
  if (in == out) {
    if (n == 1) return absl::OkStatus();
    // In place, blocks arriving would overwrite blocks not yet sent.
    char* copy = workspace.Allocate(n * block_bytes);
    std::memcpy(copy, in, n * block_bytes);
    in = copy;
  }
  std::memcpy(out + rank * block_bytes, in + rank * block_bytes, block_bytes);
  std::vector<transport::RequestPtr> requests;
  for (int k = 1; k < n; ++k) {
    const int from = (rank - k + n) % n;
    requests.push_back(ctx.Recv(from, 0, out + from * block_bytes, block_bytes));
  }
  for (int k = 1; k < n; ++k) {
    const int to = (rank + k) % n;
    requests.push_back(ctx.Send(to, 0, in + to * block_bytes, block_bytes));
  }
  return ctx.WaitAll(requests);
}

}  // namespace silk::algorithms
