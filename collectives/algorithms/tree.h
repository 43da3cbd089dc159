// Binomial trees rooted at `root`: ceil(log2 n) steps, for small messages.
// With ranks renumbered so that the root is 0, rank v's parent is v without
// its lowest set bit and its children are v + 2^k for 2^k below that bit.
#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "collectives/algorithms/workspace.h"
#include "runtime/core/types.h"
#include "runtime/engine/engine.h"

namespace silk::algorithms {

// `input` is read on the root only; every rank's `output` receives it.
absl::Status BinomialBroadcast(OpContext& ctx, const void* input, void* output, size_t bytes, int root);

// The root's `output` receives the reduction, combined in a fixed order
// (a rank's own input, then its children's partials, nearest child first).
absl::Status BinomialReduce(OpContext& ctx, Workspace& workspace, const void* input, void* output, size_t count,
                            DataType type, ReduceOp op, int root);

}  // namespace silk::algorithms
