// Pipelined chains for rooted operations on large messages: the ranks form a
// line from (or to) the root and the buffer flows along it in chunks, so each
// link carries the buffer once and all links are busy at the same time.
#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "collectives/algorithms/workspace.h"
#include "runtime/core/types.h"
#include "runtime/engine/engine.h"

namespace silk::algorithms {

// root -> root+1 -> ... -> root-1. `input` is read on the root only.
absl::Status ChainBroadcast(OpContext& ctx, const void* input, void* output, size_t bytes, int root,
                            size_t chunk_bytes);

// root+1 -> root+2 -> ... -> root: each rank adds its input to the partial it
// receives and forwards it, so every element is reduced in the same order.
absl::Status ChainReduce(OpContext& ctx, Workspace& workspace, const void* input, void* output, size_t count,
                         DataType type, ReduceOp op, int root, size_t chunk_bytes);

}  // namespace silk::algorithms
