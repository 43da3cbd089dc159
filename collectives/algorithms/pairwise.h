// All-to-all by direct exchange: every rank sends block j straight to rank j.
// Sends go out in the order rank+1, rank+2, ... so that at any moment the
// ranks are mostly sending to different peers.
#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "collectives/algorithms/workspace.h"
#include "runtime/engine/engine.h"

namespace silk::algorithms {

// `input` and `output` hold size() blocks of `block_bytes`; they may be the same buffer.
absl::Status PairwiseAlltoall(OpContext& ctx, Workspace& workspace, const void* input, void* output,
                              size_t block_bytes);

}  // namespace silk::algorithms
