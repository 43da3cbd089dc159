// Recursive halving and doubling (Rabenseifner): the latency-optimal family,
// 2*log2(n) steps instead of the ring's 2(n-1), with the same bytes sent.
//
// Reduce-scatter by recursive halving: at distance d = p/2, p/4, ..., 1 a rank
// swaps half of the range it still holds with the rank d away and reduces the
// half it keeps. All-gather by recursive doubling reverses it. Every element is
// reduced by exactly one rank (its final owner), then copied as bytes, so the
// results are bit-identical on every rank.
//
// A world of n ranks that is not a power of two folds onto p = 2^floor(log2 n):
// among the first 2(n-p) ranks, each even rank hands its data to the odd rank
// above it (which reduces the two) and sits out until that rank sends it the
// result; the p remaining ranks run the algorithm (the standard MPICH scheme).
#pragma once

#include <cstddef>
#include <vector>

#include "absl/status/status.h"
#include "collectives/algorithms/partition.h"
#include "collectives/algorithms/workspace.h"
#include "runtime/core/types.h"
#include "runtime/engine/engine.h"

namespace silk::algorithms {

// `input` may equal `output`.
absl::Status HalvingDoublingAllreduce(OpContext& ctx, Workspace& workspace, const void* input, void* output,
                                      size_t count, DataType type, ReduceOp op);

// Same contract as RingReduceScatter.
absl::Status HalvingDoublingReduceScatter(OpContext& ctx, Workspace& workspace, const void* input, const Blocks& blocks,
                                          void* out_block, DataType type, ReduceOp op);

// The ranks this rank exchanges messages with (its fold partner and its
// partner at every distance), for argument checks before data moves.
std::vector<int> HalvingDoublingPeers(int n, int rank);

// Same contract as RingAllgather.
absl::Status HalvingDoublingAllgather(OpContext& ctx, void* buffer, const Blocks& blocks, size_t element_size);

}  // namespace silk::algorithms
